"""The client SDK: typed audit events from application code to the collector, never lost silently.

Services emit security events (logins, admin actions, key and flag changes, account
recovery) from request handlers, where a slow or unreachable collector must neither slow
the request down nor lose the event. So `AuditClient` validates an event on the caller's
thread (a bad event is a bug and fails loudly, at once), queues it in memory, and a
background thread ships batches to `POST /v1/events`. Whatever cannot be delivered yet is
written to an on-disk spool and resent later, by this process or the next one.

Delivery guarantees
-------------------
* **Ids first.** Every event gets a UUIDv7 id on the client before it is queued. The id
  travels with the event through every retry and every round trip through the spool, so a
  resent event is the same event.
* **At least once from the SDK.** An event leaves the client in exactly one of these ways:
  acknowledged by the collector (`202`, which means durable in its write-ahead log);
  written to the spool (temp file, fsync, atomic rename, fsync of the directory) and
  resent later; refused by the collector as invalid or forbidden (`400`/`403`: counted in
  `rejected` and logged, never retried); or refused on arrival because the memory queue
  *and* the spool are full (counted in `dropped`). Nothing else loses an event, and both
  losses are counted in `stats()`.
* **Exactly once in the lake.** The lake skips events whose (tenant, id) it already holds,
  so a batch resent after a lost acknowledgement, or a spool file sent twice, does not
  duplicate anything.
* **Not covered:** events still in the memory queue when the process dies without
  `close()` (at most `max_queue`; an `atexit` hook closes clients on a normal exit), and
  order: the lake numbers events in arrival order, which after an outage is spool order.
  Call `flush()` where an event must be safe before you go on.

How each answer of the collector is handled
-------------------------------------------
* `202`: done; counted in `sent`.
* `400`/`403`: a client error that no retry can fix. The collector names the offending
  events by index (the request is all or nothing), so only those are dropped, counted in
  `rejected` and logged; the rest of the batch is resent at once. Local validation makes
  `400` rare (a duplicate id within one batch is one way to get it).
* `413`, or a `400` about the request as a whole (too many events): the batch is split in
  halves and each half sent; a single event that is still too large is rejected.
* `401`: the token is wrong or revoked. The events are *kept* in the spool and retried with
  backoff, because the fix (a rotated token, see `set_token`) is operational and the
  events are still good; each `401` answer is counted in `unauthorised`.
* Network errors, timeouts, `408`, `429`, `5xx` and any other status (a `404` from a
  mistyped URL must not destroy events either): retried with exponential backoff and
  full jitter, never sooner than `Retry-After`. While the collector is unreachable, due
  batches go to the spool instead of waiting in memory. `flush()` makes one attempt at
  once, even during a backoff.

The spool
---------
One NDJSON file per batch in `spool_dir` (a 0700 directory, 0600 files), named so that
names sort oldest first. Files are drained oldest first when the client starts and
whenever the collector answers again, and each is deleted only after its `202`. The spool
is bounded by `max_spool_bytes`: when it is full, new events are refused (counted in
`dropped`) rather than older ones deleted, because the oldest unsent events are the ones
an investigator is most likely to need. Two clients may share a spool directory; an event
sent twice is stored once.

The hot path
------------
`log()` and the typed helpers never raise for transport reasons and never wait longer
than `block_s` for room in the queue. When the queue is full, the caller's thread moves
the oldest batch to the spool itself (one file write with fsync, no network).

Events are validated with `lake.contract.validate`, the collector's own validator, so an event
the SDK accepts is one the collector accepts.

A client created before `os.fork()` (a pre-forking web server) restarts its sender in
the child; events queued before the fork stay the parent's to deliver.

For batch jobs that run next to the lake, `DirectWriter` and `write_direct` validate and
append straight into a lake with `lake.write.append`, with no collector.
"""

from __future__ import annotations

import atexit
import bisect
import functools
import hashlib
import http.client
import itertools
import logging
import os
import random
import threading
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import monotonic, time_ns
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import orjson

from lake.contract import Issue, check_event, validate
from lake.log import NoteSigner
from lake.secrets import KeyStore, config_home
from lake.storage import Lake
from lake.write import AppendResult, append

__all__ = [
    "AuditClient",
    "ClientStats",
    "DirectWriter",
    "InvalidEventError",
    "format_time",
    "uuid7",
    "write_direct",
]

logger = logging.getLogger(__name__)

Outcome = Literal["success", "failure", "unknown"]
Severity = Literal["info", "low", "medium", "high", "critical"]
ActorType = Literal["user", "admin", "service", "system"]
TimeLike = datetime | str | None

EVENTS_PATH = "/v1/events"
NDJSON = "application/x-ndjson"
USER_AGENT = "auditlake-sdk/0.1"
GiB = 1024**3
# The collector refuses requests of more than this many events (CollectorConfig.max_events).
MAX_BATCH = 10_000
SPOOL_SUFFIX = ".ndjson"
BACKOFF_BASE_S = 0.2
MAX_RETRY_AFTER_S = 600.0
# Namespace for validating one event at a time: ids are always set before validation, so
# the validator never assigns one from it.
_CHECK_NAMESPACE = b"auditlake-sdk"


class InvalidEventError(ValueError):
    """An event that the wire format refuses; a programming error, raised at `log` time.

    Attributes:
        issues: every problem found, each naming the event index, field and reason.
    """

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__(
            "invalid audit event: " + "; ".join(f"{i.field}: {i.message}" for i in self.issues)
        )


def uuid7() -> str:
    """A new UUIDv7 string (RFC 9562): 48-bit Unix milliseconds, then 74 random bits."""
    ms = time_ns() // 1_000_000
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant (0b10)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_time(value: TimeLike = None) -> str:
    """RFC 3339 UTC with microseconds and "Z"; now when `value` is None.

    A string is passed through for the validator to judge; a naive datetime is refused,
    since guessing its zone would put the event at the wrong instant.
    """
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError([Issue(0, "time", "a naive datetime has no time zone")])
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check(records: Sequence[Mapping[str, Any]], namespace: bytes = _CHECK_NAMESPACE) -> None:
    if len(records) == 1:
        # One event (every log() call): the scalar twin of the validator, held to the same
        # verdicts by a property test, costs microseconds instead of ~1 ms.
        issues = check_event(dict(records[0]))
        if issues:
            raise InvalidEventError(issues)
        return
    result = validate(records, namespace=namespace)
    if result.rejected:
        raise InvalidEventError(result.issues)


def _prepare(event: Mapping[str, Any], source: str | None) -> tuple[str, bytes]:
    """Copy, complete (id, source), validate and serialise one event; returns (id, line)."""
    if not isinstance(event, Mapping):
        raise InvalidEventError([Issue(0, "(event)", f"expected a mapping, got {type(event)}")])
    out = dict(event)
    if out.get("id") is None:
        out["id"] = uuid7()
    if source is not None and out.get("source") is None:
        out["source"] = source
    _check([out])
    try:
        line = orjson.dumps(out)
    except TypeError as exc:  # the validator reads fields; this guards what it ignores
        raise InvalidEventError([Issue(0, "(event)", f"cannot be serialised ({exc})")]) from None
    return str(out["id"]), line


class EventHelpers(ABC):
    """The typed helpers for the five kinds of event, on top of one `log` method.

    Every helper builds a wire event with the wire format's fields only, hands it to
    `log` (which validates it) and returns its id. Common keyword arguments:

    Args:
        ip, user_agent: the actor's network origin.
        actor_type: `user`, `admin`, `service` or `system`.
        details: any JSON object (at most 16 KiB once serialised).
        time: when it happened (aware datetime or RFC 3339 string); defaults to now.
        severity: `info` (the collector's default when None) to `critical`.
        source: the emitting service; defaults to the client's `source`.
        event_id: your own id, e.g. to make an application-level retry idempotent.
    """

    @abstractmethod
    def log(self, event: Mapping[str, Any]) -> str:
        """Validate and record one wire event; returns its id."""

    def login(
        self,
        tenant: str,
        actor_id: str,
        *,
        outcome: Outcome,
        action: str = "login",
        ip: str | None = None,
        user_agent: str | None = None,
        mfa: str | bool | None = None,
        actor_type: ActorType | None = "user",
        details: Mapping[str, Any] | None = None,
        time: TimeLike = None,
        severity: Severity | None = None,
        source: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """An authentication event (`login`, `logout`, `mfa.challenge`, ...).

        `mfa` (a method name or a flag) is recorded as `details.mfa`.
        """
        extra = dict(details or {})
        if mfa is not None:
            extra["mfa"] = mfa
        return self.log(
            build_event(
                tenant,
                "authentication",
                action,
                actor_id,
                outcome=outcome,
                actor_type=actor_type,
                ip=ip,
                user_agent=user_agent,
                details=extra,
                time=time,
                severity=severity,
                source=source,
                event_id=event_id,
            )
        )

    def admin_action(
        self,
        tenant: str,
        actor_id: str,
        action: str,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        outcome: Outcome = "success",
        ip: str | None = None,
        user_agent: str | None = None,
        actor_type: ActorType | None = "admin",
        details: Mapping[str, Any] | None = None,
        time: TimeLike = None,
        severity: Severity | None = None,
        source: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """An administrative action (`role.grant`, `user.delete`, ...) on a target."""
        return self.log(
            build_event(
                tenant,
                "admin_action",
                action,
                actor_id,
                outcome=outcome,
                actor_type=actor_type,
                ip=ip,
                user_agent=user_agent,
                target_type=target_type,
                target_id=target_id,
                details=details,
                time=time,
                severity=severity,
                source=source,
                event_id=event_id,
            )
        )

    def key_change(
        self,
        tenant: str,
        actor_id: str,
        action: str,
        key_id: str,
        *,
        outcome: Outcome = "success",
        key_type: str = "key",
        ip: str | None = None,
        user_agent: str | None = None,
        actor_type: ActorType | None = None,
        details: Mapping[str, Any] | None = None,
        time: TimeLike = None,
        severity: Severity | None = None,
        source: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """A key lifecycle event (`key.create`, `key.rotate`, `key.revoke`); target = the key."""
        return self.log(
            build_event(
                tenant,
                "key_change",
                action,
                actor_id,
                outcome=outcome,
                actor_type=actor_type,
                ip=ip,
                user_agent=user_agent,
                target_type=key_type,
                target_id=key_id,
                details=details,
                time=time,
                severity=severity,
                source=source,
                event_id=event_id,
            )
        )

    def flag_change(
        self,
        tenant: str,
        actor_id: str,
        flag: str,
        *,
        old: Any = None,
        new: Any = None,
        action: str = "flag.update",
        outcome: Outcome = "success",
        ip: str | None = None,
        user_agent: str | None = None,
        actor_type: ActorType | None = None,
        details: Mapping[str, Any] | None = None,
        time: TimeLike = None,
        severity: Severity | None = None,
        source: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """A feature-flag change; target = the flag, `details.old`/`details.new` its values."""
        extra = dict(details or {})
        extra["old"] = old
        extra["new"] = new
        return self.log(
            build_event(
                tenant,
                "flag_change",
                action,
                actor_id,
                outcome=outcome,
                actor_type=actor_type,
                ip=ip,
                user_agent=user_agent,
                target_type="flag",
                target_id=flag,
                details=extra,
                time=time,
                severity=severity,
                source=source,
                event_id=event_id,
            )
        )

    def recovery_attempt(
        self,
        tenant: str,
        actor_id: str,
        action: str = "recovery.request",
        *,
        outcome: Outcome = "success",
        target_type: str | None = None,
        target_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        actor_type: ActorType | None = "user",
        details: Mapping[str, Any] | None = None,
        time: TimeLike = None,
        severity: Severity | None = None,
        source: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """An account-recovery step (`recovery.request`, `recovery.complete`, ...)."""
        return self.log(
            build_event(
                tenant,
                "account_recovery",
                action,
                actor_id,
                outcome=outcome,
                actor_type=actor_type,
                ip=ip,
                user_agent=user_agent,
                target_type=target_type,
                target_id=target_id,
                details=details,
                time=time,
                severity=severity,
                source=source,
                event_id=event_id,
            )
        )


def build_event(
    tenant: str,
    category: str,
    action: str,
    actor_id: str,
    *,
    outcome: str,
    actor_type: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    time: TimeLike = None,
    severity: str | None = None,
    source: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A wire event from its parts; absent optional fields are left out, not sent as null."""
    actor: dict[str, Any] = {"id": actor_id}
    for key, value in (("type", actor_type), ("ip", ip), ("user_agent", user_agent)):
        if value is not None:
            actor[key] = value
    event: dict[str, Any] = {
        "tenant": tenant,
        "id": event_id or uuid7(),
        "time": format_time(time),
        "category": category,
        "action": action,
        "outcome": outcome,
        "actor": actor,
    }
    if severity is not None:
        event["severity"] = severity
    if target_type is not None or target_id is not None:
        target = {"type": target_type, "id": target_id}
        event["target"] = {k: v for k, v in target.items() if v is not None}
    if source is not None:
        event["source"] = source
    if details:
        event["details"] = dict(details)
    return event


# -- the client ------------------------------------------------------------------------------


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


class _TransportError(Exception):
    """The request got no HTTP answer (connection refused, reset, timeout, ...)."""


@dataclass
class _Delivery:
    """What `_deliver` did: done, or the events still to send and when to try again."""

    retry: bool
    remaining: list[bytes]


class _Spool:
    """One NDJSON file per batch; atomic, durable writes; names sort oldest first.

    The index (names in order, sizes, total) lives in memory so that the hot path and a
    drain of many files never list the directory; `scan` re-reads it on start and flush.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._order: list[str] = []  # sorted names: oldest first
        self._total = 0
        self._reserved = 0  # bytes being written right now
        self._counter = itertools.count()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            # Audit events carry IPs and user agents: the spool is for this user only.
            logger.warning("spool dir %s had mode %o; tightening it to 700", path, mode)
            path.chmod(0o700)
        self.scan(remove_stale=True)

    def scan(self, *, remove_stale: bool = False) -> None:
        """Re-read the directory (another client or an earlier run may have written it)."""
        found: dict[str, int] = {}
        now = time_ns()
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:  # removed under us: start again, empty
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            entries = []
        for entry in entries:
            if entry.name.startswith("."):
                # A temp file of a writer that died mid-write; never renamed, so never
                # acknowledged to anyone: safe to remove once clearly abandoned.
                if remove_stale and entry.name.endswith(".tmp"):
                    try:
                        if now - entry.stat().st_mtime_ns > 60 * 10**9:
                            Path(entry.path).unlink()
                    except FileNotFoundError:
                        pass
                continue
            if entry.name.endswith(SPOOL_SUFFIX) and entry.is_file(follow_symlinks=False):
                try:
                    found[entry.name] = entry.stat().st_size
                except FileNotFoundError:
                    continue
        with self._lock:
            # Keep files written while the directory was being listed.
            for name, size in self._sizes.items():
                if name not in found and (self.path / name).exists():
                    found[name] = size
            self._sizes = found
            self._order = sorted(found)
            self._total = sum(found.values())

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._reserved = 0

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._order)

    @property
    def size(self) -> int:
        with self._lock:
            return self._total

    def oldest(self) -> str | None:
        with self._lock:
            return self._order[0] if self._order else None

    def write(self, lines: Sequence[bytes], name: str | None = None) -> bool:
        """Write a batch durably (or replace file `name`); False when it does not fit or fails."""
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            old = self._sizes.get(name, 0) if name else 0
            if self._total + self._reserved - old + len(data) > self.max_bytes:
                return False
            self._reserved += len(data)
        if name is None:
            name = f"{time_ns():020d}-{os.getpid()}-{next(self._counter):08d}{SPOOL_SUFFIX}"
        tmp = self.path / f".{name}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(self.path / name)
            self._fsync_dir()
        except OSError as exc:
            logger.warning("could not write to the spool %s: %s", self.path, exc)
            with self._lock:
                self._reserved -= len(data)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                logger.warning("could not remove %s", tmp)
            return False
        with self._lock:
            self._reserved -= len(data)
            if name in self._sizes:
                self._total -= self._sizes[name]
            else:
                bisect.insort(self._order, name)  # almost always at the end: O(log n)
            self._sizes[name] = len(data)
            self._total += len(data)
        return True

    def read(self, name: str) -> list[bytes] | None:
        """The events of one file; None when it vanished or cannot be read (set aside)."""
        try:
            data = (self.path / name).read_bytes()
        except FileNotFoundError:
            self._forget(name)  # another client sharing the directory delivered it
            return None
        except OSError as exc:
            logger.error("cannot read spool file %s (%s); setting it aside", name, exc)
            try:
                (self.path / name).replace(self.path / (name + ".unreadable"))
            except OSError as again:
                logger.error("cannot set aside spool file %s: %s", name, again)
            self._forget(name)
            return None
        return [line for line in data.split(b"\n") if line.strip()]

    def delete(self, name: str) -> None:
        """Remove a delivered file. If that fails it is resent later, which is harmless."""
        try:
            (self.path / name).unlink(missing_ok=True)
        except OSError as exc:
            logger.error("cannot delete delivered spool file %s: %s", name, exc)
        self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            size = self._sizes.pop(name, None)
            if size is None:
                return
            self._total -= size
            at = bisect.bisect_left(self._order, name)
            if at < len(self._order) and self._order[at] == name:
                del self._order[at]

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _error_summary(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The collector's error message and per-event errors, from a JSON error body."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace"), []
    if not isinstance(doc, dict):
        return str(doc)[:200], []
    errors = doc.get("errors")
    listed = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return str(doc.get("error", "")), listed


def _check_token(token: str) -> str:
    """A bearer token is printable ASCII without spaces; anything else is a setup mistake."""
    if not token or not all(0x21 <= ord(ch) <= 0x7E for ch in token):
        raise ValueError("the collector token must be non-empty printable ASCII without spaces")
    return token


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
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the collector URL must be http(s)://host[:port], got {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        base = parts.path.rstrip("/")
        self._path = base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH
        self._token = _check_token(token)
        self._source = source
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.block_s = block_s
        self.max_backoff_s = max_backoff_s
        self._spool = _Spool(Path(spool_dir), max_spool_bytes)

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
        self._conn: http.client.HTTPConnection | None = None
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
        event_id, line = _prepare(event, self._source)
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
        if not self._thread.is_alive() and self._conn is not None:
            self._conn.close()
            self._conn = None
        atexit.unregister(self._atexit)
        return ok

    def set_token(self, token: str) -> None:
        """Use a new (rotated) token from the next request on; spooled events follow."""
        token = _check_token(token)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
        self._conn = None
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
            except _TransportError as exc:
                self._failed(str(exc), None)
                return _Delivery(True, [line for c in [chunk, *pending] for line in c])
            if status == 202:
                with self._cond:
                    self._sent += len(chunk)
                self._answered()
                continue
            message, errors = _error_summary(body)
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
            cap = min(self.max_backoff_s, BACKOFF_BASE_S * 2 ** min(self._failures - 1, 30))
            delay = random.uniform(0, cap)
            if retry_after is not None:
                delay = max(delay, retry_after)
            self._next_attempt = monotonic() + delay
            first = self._failures == 1
        if first:
            logger.warning("audit events not delivered (%s); spooling and retrying", error)

    def _post(self, lines: list[bytes]) -> tuple[int, float | None, bytes]:
        """One POST on a kept-alive connection: (status, Retry-After seconds, body)."""
        body = b"\n".join(lines) + b"\n"
        with self._cond:
            token = self._token
        headers = {
            "Content-Type": NDJSON,
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
        }
        for attempt in range(2):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                self._conn = None
                stale = isinstance(exc, ConnectionError | http.client.BadStatusLine)
                if reused and stale and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: redial once
                raise _TransportError(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                conn.close()
                self._conn = None
            return response.status, _retry_after(response.getheader("Retry-After")), data
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)


# -- direct mode -----------------------------------------------------------------------------


def write_direct(
    lake_path: str | os.PathLike[str],
    events: Iterable[Mapping[str, Any]],
    signer: NoteSigner | None = None,
) -> AppendResult:
    """Validate wire events and append them to a lake as one signed batch, no collector.

    Events without an id get one derived from the input (as `auditlake ingest` does), so
    running the same job twice stores each event once. All or nothing: any invalid event
    raises `InvalidEventError` naming every event, field and reason, and nothing is written.
    `signer` defaults to the active key of the config home (`AUDITLAKE_HOME`).
    """
    records = [dict(e) for e in events]
    try:
        text = orjson.dumps(
            records, default=repr, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
    except TypeError:  # e.g. integers beyond 64 bits, which the validator names below
        text = repr(records).encode()
    result = validate(records, namespace=hashlib.sha256(text).digest())
    if result.rejected:
        raise InvalidEventError(result.issues)
    lake = Lake.open(lake_path)
    return append(lake, result.table, signer or KeyStore(config_home()).active())


class DirectWriter(EventHelpers):
    """The typed helpers of the client, appending straight to a lake (batch jobs).

    Events are validated at `log` time (invalid ones raise `InvalidEventError`), buffered,
    and appended as one signed batch per `batch_size` events, on `flush()` and on
    `close()`. Unlike `AuditClient`, lake errors raise from `flush` (the buffer is kept,
    so a retried `flush` resends the same ids and the lake stores them once). Ids are
    fresh UUIDv7s: for a job that may be re-run, pass `event_id` (or use `write_direct`,
    whose ids derive from the input) so that a re-run does not store events twice.

    Args:
        lake_path: the lake to append to.
        signer: the signing key; defaults to the active key of the config home.
        batch_size: events per appended batch.
        source: `source` of every event that names none.
    """

    def __init__(
        self,
        lake_path: str | os.PathLike[str],
        signer: NoteSigner | None = None,
        *,
        batch_size: int = 50_000,
        source: str | None = None,
    ) -> None:
        self.lake = Lake.open(lake_path)
        self.signer = signer or KeyStore(config_home()).active()
        self.batch_size = batch_size
        self.results: list[AppendResult] = []
        self._source = source
        self._lines: list[bytes] = []

    def log(self, event: Mapping[str, Any]) -> str:
        """Validate and buffer one wire event; returns its id."""
        event_id, line = _prepare(event, self._source)
        self._lines.append(line)
        if len(self._lines) >= self.batch_size:
            self.flush()
        return event_id

    def flush(self) -> AppendResult | None:
        """Append the buffered events as one batch; None when there were none."""
        if not self._lines:
            return None
        records = [orjson.loads(line) for line in self._lines]
        result = validate(records, namespace=_CHECK_NAMESPACE)
        if result.rejected:  # only a duplicate id within the buffer gets here
            raise InvalidEventError(result.issues)
        appended = append(self.lake, result.table, self.signer)
        self._lines.clear()
        self.results.append(appended)
        return appended

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Events logged before an exception describe things that happened: keep them.
        self.close()
