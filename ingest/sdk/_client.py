"""`AuditClient`: ships audit events to a collector in the background, spooling when it can't.

The delivery guarantees and the handling of each answer are in the `ingest.sdk` docstring.
Standard library and orjson only.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import random
import threading
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

from ingest.batching import Backoff
from ingest.sdk._events import EventHelpers, prepare
from ingest.sdk._http import Connection, TransportError, check_token, error_summary
from ingest.sdk._spool import Spool

__all__ = ["AuditClient", "ClientStats"]

logger = logging.getLogger("ingest.sdk")

GiB = 1024**3
# The collector refuses requests of more than this many events (CollectorConfig.max_events).
MAX_BATCH = 10_000
BACKOFF_BASE_S = 0.2


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of a client's counters.

    Attributes:
        sent: events acknowledged by the collector (202).
        rejected: events the collector refused as invalid or forbidden (400/403/413);
            dropped, never retried.
        retries: delivery attempts that failed and will be retried.
        spooled_files, spooled_bytes: what waits in the spool now.
        dropped: events refused because the queue and the spool were both full (or the
            spool could not be written).
        unauthorised: `401` answers; their events stay spooled.
        last_error: the most recent delivery error, if any.
        queued: events waiting in memory now.
    """

    sent: int
    rejected: int
    retries: int
    spooled_files: int
    spooled_bytes: int
    dropped: int
    unauthorised: int
    last_error: str | None
    queued: int


@dataclass
class _Delivery:
    """What `_deliver` did: done, or the events still to send and when to try again."""

    retry: bool
    remaining: list[bytes]


def _restart_in_child(ref: weakref.ref[AuditClient]) -> None:
    client = ref()
    if client is not None:
        client._restart_after_fork()


def _close_at_exit(ref: weakref.ref[AuditClient]) -> None:
    client = ref()
    if client is not None:
        client.close(timeout_s=5.0)


class AuditClient(EventHelpers):
    """Ships audit events to a collector in the background, spooling to disk when it can't.

    See the module docstring for the delivery guarantees and the handling of each
    answer. Thread-safe: one client per process is meant to be shared by all threads.

    Args:
        url: the collector's base URL (`http://host:port`); `/v1/events` is appended.
        token: a collector token whose tenants cover the events sent.
        spool_dir: a directory for this client's spool (created 0700 when missing).
        batch_size: events per request (at most 10,000, the collector's limit).
        flush_interval_s: how long an event may wait in memory for a batch to fill.
        max_queue: events held in memory; beyond it, batches spill to the spool.
        max_spool_bytes: bound of the spool; beyond it, new events are dropped (counted).
        timeout_s: socket timeout of each request.
        block_s: how long `log` may wait for room in a full queue before spilling.
        source: `source` of every event that names none (e.g. "auth-service").
        max_backoff_s: the cap of the exponential backoff between retries.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        spool_dir: Path,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        max_spool_bytes: int = GiB,
        timeout_s: float = 5.0,
        block_s: float = 0.0,
        source: str | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}")
        if max_queue < 1 or max_spool_bytes < 0 or timeout_s <= 0 or block_s < 0:
            raise ValueError("max_queue ≥ 1, max_spool_bytes ≥ 0, timeout_s > 0, block_s ≥ 0")
        self._connection = Connection(url, timeout_s)
        self._token = check_token(token)
        self._source = source
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.block_s = block_s
        self._backoff = Backoff(min(BACKOFF_BASE_S, max_backoff_s), max_backoff_s)
        self._spool = Spool(Path(spool_dir), max_spool_bytes)

        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque()
        self._oldest = 0.0  # monotonic time the oldest queued event arrived
        self._next_attempt = 0.0  # no delivery attempt before this (backoff)
        self._failures = 0  # consecutive failed attempts
        self._spool_refused = False  # the last spill failed: don't spin on it
        self._flush_gen = 0
        self._flush_done = 0
        self._flush_ok = True
        self._stopping = False
        self._closed = False
        # Counters, guarded by _cond.
        self._sent = 0
        self._rejected = 0
        self._retries = 0
        self._dropped = 0
        self._unauthorised = 0
        self._last_error: str | None = None

        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._atexit)
        # A client made before a fork (a pre-forking web server) must work in the workers.
        os.register_at_fork(after_in_child=functools.partial(_restart_in_child, weakref.ref(self)))
        self._thread = self._start_sender()

    # -- public API -------------------------------------------------------------------------

    def log(self, event: Mapping[str, Any]) -> str:
        """Validate one wire event and queue it; returns its id (assigned when absent).

        Raises `InvalidEventError` (a `ValueError`) for an invalid event, which is then not
        queued. Never raises for transport reasons; never waits longer than `block_s`.
        After `close()`, events go straight to the spool for the next client to deliver.
        """
        event_id, line = prepare(event, self._source)
        self._enqueue(line)
        return event_id

    def flush(self, timeout_s: float | None = None) -> bool:
        """Deliver what is queued now, and try the spool once even during a backoff.

        Returns True when every event queued before the call is acknowledged, rejected or
        safely in the spool; False on timeout, or when some could not be spooled (full).
        Events still in the spool afterwards are counted in `stats().spooled_files`.
        """
        deadline = None if timeout_s is None else monotonic() + timeout_s
        with self._cond:
            if self._closed:
                return not self._queue
            self._flush_gen += 1
            gen = self._flush_gen
            self._cond.notify_all()
            while self._flush_done < gen:
                if not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 1.0)
            return self._flush_ok

    def close(self, timeout_s: float = 10.0) -> bool:
        """Flush, stop the sender, and spool whatever is left; returns `flush`'s verdict.

        Nothing is lost by closing while the collector is down: undelivered events stay
        in the spool, and the next client on the same `spool_dir` delivers them.
        """
        if self._closed:
            return True
        deadline = monotonic() + timeout_s
        ok = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - monotonic()))
        with self._cond:
            self._closed = True
            leftover = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if leftover:
            ok = self._spill(leftover) and ok
        if not self._thread.is_alive():
            self._connection.close()
        atexit.unregister(self._atexit)
        return ok

    def set_token(self, token: str) -> None:
        """Use a new (rotated) token from the next request on; spooled events follow."""
        token = check_token(token)
        with self._cond:
            self._token = token
            self._next_attempt = 0.0
            self._cond.notify_all()

    def stats(self) -> ClientStats:
        """A consistent snapshot of the counters."""
        with self._cond:
            return ClientStats(
                sent=self._sent,
                rejected=self._rejected,
                retries=self._retries,
                spooled_files=self._spool.count,
                spooled_bytes=self._spool.size,
                dropped=self._dropped,
                unauthorised=self._unauthorised,
                last_error=self._last_error,
                queued=len(self._queue),
            )

    @property
    def max_backoff_s(self) -> float:
        """The cap of the exponential backoff between retries."""
        return self._backoff.most_s

    @max_backoff_s.setter
    def max_backoff_s(self, value: float) -> None:
        self._backoff.most_s = value

    @property
    def timeout_s(self) -> float:
        """The socket timeout of each request (takes effect on the next connection)."""
        return self._connection.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._connection.timeout_s = value

    def _start_sender(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="auditlake-sdk", daemon=True)
        thread.start()
        return thread

    def _restart_after_fork(self) -> None:
        """In a forked child: fresh locks and sender; the parent's queue stays the parent's.

        Events queued before the fork are the parent's to deliver (the child's copy would
        only be a duplicate); the spool is shared, which the ids make harmless.
        """
        self._cond = threading.Condition()
        self._spool.after_fork()
        self._queue = deque()
        self._connection.forget()
        self._flush_gen = self._flush_done = 0
        self._stopping = False
        if not self._closed:
            self._thread = self._start_sender()

    # -- the hot path -----------------------------------------------------------------------

    def _enqueue(self, line: bytes) -> None:
        with self._cond:
            if not self._closed:
                if len(self._queue) >= self.max_queue and self.block_s > 0:
                    deadline = monotonic() + self.block_s
                    while len(self._queue) >= self.max_queue and not self._closed:
                        remaining = deadline - monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                if len(self._queue) < self.max_queue and not self._closed:
                    self._append(line)
                    return
            closed = self._closed
            # Full: move the oldest batch to disk on the caller's thread, no network.
            n = 0 if closed else min(self.batch_size, len(self._queue))
            spill = [self._queue.popleft() for _ in range(n)]
        if closed:
            self._spill([line])  # no sender any more: straight to the spool
            return
        if self._spool.write(spill):
            with self._cond:
                closed = self._closed
                if not closed:
                    self._append(line)
            if closed:
                self._spill([line])
            return
        with self._cond:
            closed = self._closed
            if not closed:
                # The spool is full too: keep the older events, refuse the new one.
                self._requeue_front(spill)
                self._dropped += 1
                dropped = self._dropped
        if closed:  # closed meanwhile: the spool is the only place left (or counted dropped)
            self._spill([*spill, line])
            return
        if dropped & (dropped - 1) == 0:  # 1, 2, 4, 8, ...: loud, but no log flood
            logger.warning("%d audit event(s) dropped: the queue and the spool are full", dropped)

    def _requeue_front(self, lines: Sequence[bytes]) -> None:
        """Put older lines back at the head (caller holds the lock), keeping max_queue.

        Callers may have queued new events meanwhile; if the bound would be exceeded, the
        newest events are the ones dropped (counted), never the older ones.
        """
        self._queue.extendleft(reversed(lines))
        while len(self._queue) > self.max_queue:
            self._queue.pop()
            self._dropped += 1

    def _append(self, line: bytes) -> None:
        """Queue one line (caller holds the lock) and wake the sender when it has work."""
        if not self._queue:
            self._oldest = monotonic()
            self._cond.notify_all()
        self._queue.append(line)
        if len(self._queue) == self.batch_size:
            self._cond.notify_all()

    def _spill(self, lines: list[bytes]) -> bool:
        """Spool lines in batch-sized files; count what does not fit as dropped."""
        ok = True
        for start in range(0, len(lines), self.batch_size):
            chunk = lines[start : start + self.batch_size]
            if not self._spool.write(chunk):
                ok = False
                with self._cond:
                    self._dropped += len(chunk)
                logger.warning("%d audit events dropped: the spool is full", len(chunk))
        return ok

    # -- the sender thread ------------------------------------------------------------------

    def _queue_due(self, now: float) -> bool:
        if not self._queue:
            return False
        if self._spool_refused and now < self._next_attempt:
            return False  # offline with a full spool: nothing to do until the next try
        return len(self._queue) >= self.batch_size or now - self._oldest >= self.flush_interval_s

    def _backlog_due(self, now: float) -> bool:
        return self._spool.count > 0 and now >= self._next_attempt

    def _wait_time(self, now: float) -> float | None:
        waits = []
        if self._queue:
            age_due = self._oldest + self.flush_interval_s
            waits.append(max(age_due, self._next_attempt) if self._spool_refused else age_due)
        if self._spool.count:
            waits.append(self._next_attempt)
        return max(0.001, min(waits) - now) if waits else None

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = monotonic()
                    gen = self._flush_gen
                    forced = gen > self._flush_done
                    if forced or self._stopping:
                        break
                    if self._queue_due(now) or self._backlog_due(now):
                        break
                    self._cond.wait(self._wait_time(now))
                if self._stopping and not forced:
                    return
            try:
                ok = self._pass(forced)
            except Exception as exc:  # a bug here must not silently stop delivery
                logger.exception("audit sender pass failed; retrying in 1 s")
                with self._cond:
                    self._last_error = f"sender error: {exc!r}"
                    if not self._stopping:
                        self._cond.wait(1.0)  # don't spin on a persistent failure
                ok = False
            if forced:
                with self._cond:
                    self._flush_done = gen
                    self._flush_ok = ok
                    self._cond.notify_all()

    def _pass(self, forced: bool) -> bool:
        """Drain the spool when it is time, then send (or spool) what is due in the queue.

        Returns True when everything taken from the queue was delivered or spooled.
        """
        if forced:
            self._spool.scan()
        online = forced or monotonic() >= self._next_attempt
        if online and self._spool.count:
            online = self._drain_spool()
        with self._cond:
            budget = len(self._queue) if forced else 0
        while True:
            with self._cond:
                if not self._queue or not (budget > 0 or self._queue_due(monotonic())):
                    return True
                n = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                budget -= n
                self._cond.notify_all()  # callers blocked on a full queue
            if online:
                result = self._deliver(batch)
                if not result.retry:
                    continue
                online = False
                batch = result.remaining
            # Offline: a due batch waits on disk, not in memory.
            if self._spool.write(batch):
                with self._cond:
                    self._spool_refused = False
                continue
            with self._cond:
                self._requeue_front(batch)
                self._spool_refused = True
            return False

    def _drain_spool(self) -> bool:
        """Send spooled files oldest first, each deleted after its 202; False on failure."""
        while (name := self._spool.oldest()) is not None:
            lines = self._spool.read(name)
            if lines is None:
                continue
            result = self._deliver(lines) if lines else _Delivery(False, [])
            if result.retry:
                if len(result.remaining) != len(lines):
                    # Part of it landed or was rejected: keep only what is still to send.
                    self._spool.write(result.remaining, name=name)
                return False
            self._spool.delete(name)
            with self._cond:
                self._spool_refused = False
        return True

    def _deliver(self, lines: list[bytes]) -> _Delivery:
        """POST a batch; split on 413, drop what the collector names on 400/403, else retry."""
        pending: list[list[bytes]] = [lines]
        while pending:
            chunk = pending.pop(0)
            try:
                status, retry_after, body = self._post(chunk)
            except TransportError as exc:
                self._failed(str(exc), None)
                return _Delivery(True, [line for c in [chunk, *pending] for line in c])
            if status == 202:
                with self._cond:
                    self._sent += len(chunk)
                self._answered()
                continue
            message, errors = error_summary(body)
            whole = any(e.get("field") == "(request)" for e in errors)
            if (status == 413 or (status == 400 and whole)) and len(chunk) > 1:
                half = len(chunk) // 2
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            if status in (400, 403, 413):
                self._answered()
                rest = self._reject(status, message, errors, chunk)
                if rest:
                    pending.insert(0, rest)
                continue
            if status == 401:
                with self._cond:
                    self._unauthorised += 1
            self._failed(f"HTTP {status}: {message}", retry_after)
            return _Delivery(True, [line for c in [chunk, *pending] for line in c])
        return _Delivery(False, [])

    def _reject(
        self, status: int, message: str, errors: list[dict[str, Any]], chunk: list[bytes]
    ) -> list[bytes]:
        """Drop the events the collector named (all, if it named none); return the rest."""
        named = {e["index"] for e in errors if isinstance(e.get("index"), int)}
        bad = {i for i in named if 0 <= i < len(chunk)} or set(range(len(chunk)))
        with self._cond:
            self._rejected += len(bad)
            self._last_error = f"HTTP {status}: {message}"
        shown = "; ".join(
            f"event {e.get('index')}: {e.get('field')}: {e.get('message')}" for e in errors[:5]
        )
        logger.warning(
            "collector refused %d audit event(s) with HTTP %d (%s)%s; dropped, not retried",
            len(bad),
            status,
            message,
            f": {shown}" if shown else "",
        )
        return [line for i, line in enumerate(chunk) if i not in bad]

    def _answered(self) -> None:
        """The collector answered: leave backoff (and say so once)."""
        with self._cond:
            was_down = self._failures > 0
            self._failures = 0
            self._backoff.reset()
            self._next_attempt = 0.0
            files = self._spool.count
        if was_down:
            logger.info("collector answers again; %d spooled batch(es) to resend", files)

    def _failed(self, error: str, retry_after: float | None) -> None:
        """Back off: exponential with full jitter, and never sooner than Retry-After."""
        with self._cond:
            self._failures += 1
            self._retries += 1
            self._last_error = error
            delay = random.uniform(0, self._backoff.wait_s())  # full jitter
            if retry_after is not None:
                delay = max(delay, retry_after)
            self._next_attempt = monotonic() + delay
            first = self._failures == 1
        if first:
            logger.warning("audit events not delivered (%s); spooling and retrying", error)

    def _post(self, lines: list[bytes]) -> tuple[int, float | None, bytes]:
        """One POST with the current token: (status, Retry-After seconds, body)."""
        with self._cond:
            token = self._token
        return self._connection.post(lines, token)
