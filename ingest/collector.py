"""The HTTP collector: validate, make durable in a WAL, acknowledge, then batch into the lake.

A request is all or nothing. Its events are validated by `lake.wire` (every error named),
checked against the token's tenants, written to the write-ahead log as one Arrow IPC
record and fsync'd (group commit across requests), and only then answered `202`. A batcher
thread seals and commits pending records to the lake by size or age, and trims the WAL
only after the lake commit. On start-up the WAL is replayed; the lake's id-based
deduplication makes replaying a record that was already committed harmless.

Requests finish their WAL appends out of order, so the batcher commits only up to the
highest *contiguous* WAL sequence it holds: a trim can never remove a record whose
request is still on its way to the batcher.

What can go wrong at the edges, and what the collector does then:

- A commit fails for a reason of the environment (storage, the WAL: `OSError`,
  `StorageError`, Delta errors): health turns failing, requests get 503 + Retry-After,
  and the same batch is retried with backoff until it commits. Nothing is dropped.
- A commit fails for anything else, which is about the data (a record an older
  collector let through, a payload that no longer decodes): after `POISON_ATTEMPTS`
  tries the batch is bisected, by records then rows, and what the lake refuses on its
  own goes to the quarantine (ingest/quarantine.py) while the rest commits. Health stays
  failing while the quarantine holds anything; requests are served meanwhile.
- The batcher itself breaks (a bug): health turns failing with the reason, requests get
  503, and shutdown says events are pending instead of pretending.
- The WAL's disk fills: the WAL refuses further writes (ingest/wal.py, point 6), so
  requests get 503 + Retry-After; the log is reopened (recovering as after a crash) at
  most once a second until a write succeeds again, with no restart.
- Shutdown commits what it can within `drain_timeout_s`; what is left stays in the WAL,
  replays on the next start, and `serve` returns its count (the CLI exits 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import DeltaError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.connections import ConnectionGuard, RateLimitedLog, descriptor_budget, guarded_protocol
from ingest.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from ingest.quarantine import CONFLICT, REFUSED, Quarantine
from ingest.tokens import TokenGrant, TokenStore, lookup
from ingest.wal import WalError, WalStats, WriteAheadLog
from lake.append import append, seal, stamp_received
from lake.config import KeyStore
from lake.errors import Issue, LakeError, StorageError, UsageError, ValidationError
from lake.storage import Lake
from lake.unique import ID_TAKEN
from lake.wire import parse_json_array, validate, validate_jsonl
from lake.witness import load_witnesses, request_cosignatures

__all__ = ["Collector", "CollectorConfig", "Metrics", "create_app", "log", "serve"]

NDJSON = "application/x-ndjson"
POISON_ATTEMPTS = 3
"""Tries of a batch that fails for a data reason before its records are isolated."""
WAL_RETRY_S = 1.0
"""How often a failed WAL (e.g. a full disk) is reopened, at most."""
ROUTES = frozenset({"/v1/events", "/v1/health", "/metrics"})


@dataclass
class CollectorConfig:
    """Limits and batching; defaults sized for one 2-core machine."""

    lake_path: str
    home: Path
    wal_dir: Path
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 10_000
    batch_events: int = 50_000
    batch_age_s: float = 1.0
    max_pending_events: int = 500_000  # beyond this: 503 + Retry-After (bounded memory)
    body_timeout_s: float = 10.0
    fsync: bool = True
    # Validation is CPU-bound Python: processes, not threads, use both cores (0 = in-process).
    validate_workers: int = 0
    # Publish to this NATS JetStream instead of the WAL and lake (ingest/jetstream.py).
    forward_nats: str | None = None
    forward_stream: str = "AUDIT"
    # Open connections at most (below the descriptor limit), and how long a connection may
    # take to send a request's headers (ingest/connections.py).
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    # How long shutdown keeps trying to commit what is pending before it gives up (the
    # rest stays in the WAL and replays on the next start).
    drain_timeout_s: float = 30.0


class WalUnavailable(StorageError):
    """The WAL cannot take events now (e.g. its disk is full): 503, nothing accepted."""


def _transient(exc: BaseException) -> bool:
    """Whether a failed commit is the environment's doing (retry), not the data's."""
    if isinstance(exc, UsageError):  # e.g. ValidationError: the lake refuses these events
        return False
    return isinstance(exc, OSError | WalError | LakeError | DeltaError)


def log(**fields: Any) -> None:
    """One JSON line on stderr. Callers never pass event contents or tokens."""
    fields["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(orjson.dumps(fields).decode() + "\n")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.BufferReader(payload)).read_all()


class Collector:
    """The collector's state: WAL, pending records, batcher thread, metrics."""

    # Defaults for subclasses that keep no WAL (the forwarding collector).
    quarantine: Quarantine | None = None
    _wal_problem: str | None = None

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.lake = Lake.open(config.lake_path)
        self.signer = KeyStore(config.home).active()
        self.grants = TokenStore(config.home).grants()
        config.wal_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.wal = WriteAheadLog(config.wal_dir, fsync=config.fsync)
        except WalError as exc:  # e.g. another collector holds it, or it is damaged
            raise StorageError(f"write-ahead log {config.wal_dir}: {exc}") from None
        self.quarantine = Quarantine(config.wal_dir / "quarantine", fsync=config.fsync)
        self.metrics = Metrics()
        self._pending: dict[int, tuple[float, pa.Table]] = {}
        self._pending_events = 0
        self._committed = -1  # highest WAL seq committed to the lake
        self._cond = threading.Condition()
        self._stopping = False
        self._drain_until = float("inf")
        self.failed: str | None = None
        self._wal_lock = threading.Lock()
        self._wal_retry_at = 0.0
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        # Witnesses are asked off the batching path: a slow or absent witness never
        # holds up commits (verify --min-witnesses reports heads left uncosigned).
        self.witnesses = load_witnesses(config.home)
        self._to_witness: set[str] = set()
        self._witness_wake = threading.Event()
        self._witness_thread = threading.Thread(
            target=self._witness_loop, name="witness", daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------

    def _witness_loop(self) -> None:
        while True:
            self._witness_wake.wait(timeout=5.0)
            self._witness_wake.clear()
            with self._cond:
                tenants, self._to_witness = sorted(self._to_witness), set()
            for tenant in tenants:
                try:
                    results = request_cosignatures(self.lake, tenant, self.witnesses)
                except (LakeError, OSError) as exc:
                    log(event="witness_failed", tenant=tenant, error=str(exc))
                    continue
                for r in results:
                    log(event="witness", tenant=tenant, witness=r.witness, size=r.size,
                        ok=r.ok, message=r.message)  # fmt: skip
                    self.metrics.add("auditlake_witness_cosignatures_total" if r.ok
                                     else "auditlake_witness_failures_total")  # fmt: skip

    def start(self) -> None:
        """Seal what a crash left unsealed, replay the WAL, then start batching."""
        sealed = seal(self.lake, self.signer, self.lake.tenants())
        if sealed:
            log(event="sealed_on_start", tenants=[r.tenant for r in sealed])
        replayed = self._take_over(self.wal, after=-1)
        # Commits resume at the first record replayed, or after the last one ever written.
        self._committed = min(self._pending, default=self.wal.stats().next_seq) - 1
        log(event="start", replayed_events=replayed, lake=self.lake.root)
        if self.quarantine is not None and (files := self.quarantine.files()):
            log(event="quarantine_not_empty", files=files, directory=str(self.quarantine.directory))
        if not self.grants:
            log(
                event="warning",
                message="no collector tokens: every request will get 401; "
                "create one with `auditlake token create --tenant T`",
            )
        self._thread.start()
        self._witness_thread.start()

    def _take_over(self, wal: WriteAheadLog, after: int) -> int:
        """Make the WAL's records after `after` pending (those not pending yet); their events.

        A payload that does not decode goes to the quarantine at once (it could never be
        committed) and stays pending as an empty record, so the WAL is trimmed past it.
        """
        events = 0
        for seq, payload in wal.replay(after=after):
            with self._cond:
                if seq in self._pending:
                    continue
            try:
                table = _from_ipc(payload)
            except pa.ArrowException as exc:
                assert self.quarantine is not None
                kept = self.quarantine.put(seq, payload, exc)
                log(event="quarantined", file=kept.path.name, wal_seq=seq, error=type(exc).__name__)
                table = pa.table({})
            with self._cond:
                self._pending[seq] = (time.monotonic(), table)
                self._pending_events += table.num_rows
                self._cond.notify_all()
            events += table.num_rows
        return events

    def shutdown(self) -> None:
        """Stop batching after committing what is pending (within `drain_timeout_s`)."""
        with self._cond:
            self._stopping = True
            self._drain_until = time.monotonic() + self.config.drain_timeout_s
            self._cond.notify_all()
        self._thread.join()
        try:
            self.wal.close()
        except WalError as exc:
            log(event="wal_close_failed", error=str(exc))
        if self._pending_events:
            log(
                event="stopped_with_pending",
                pending_events=self._pending_events,
                message="these events are in the write-ahead log and replay on the next start",
            )
        else:
            log(event="stopped", pending_events=0)

    @property
    def pending_events(self) -> int:
        """Events acknowledged and not yet committed to the lake."""
        return self._pending_events

    # -- requests -------------------------------------------------------------------------

    def overloaded(self) -> bool:
        return self._pending_events >= self.config.max_pending_events

    def wal_stats(self) -> WalStats:
        return self.wal.stats()

    def problem(self) -> str | None:
        """Why health is failing, or None: a commit, the WAL, the batcher or the quarantine."""
        if self.failed or self._wal_problem:
            return self.failed or self._wal_problem
        if self.quarantine is not None and (files := self.quarantine.files(REFUSED)):
            return (
                f"{files} quarantined part(s) in {self.quarantine.directory}: events the lake "
                "refused (the log names them); the collector commits everything else"
            )
        return None

    def accept(self, table: pa.Table) -> int:
        """Make a validated table durable, then hand it to the batcher. Blocks on fsync.

        The receipt time is stamped here and kept in the WAL record, so an event replayed
        after a crash keeps the time it actually arrived.

        Raises:
            WalUnavailable: the WAL cannot write now (e.g. a full disk); nothing was kept.
        """
        started = time.perf_counter()
        table = stamp_received(table)
        payload = _ipc(table)
        wal = self._usable_wal()
        try:
            seq = wal.append(payload)
        except WalError as exc:
            raise WalUnavailable(self._wal_failed(wal, exc)) from None
        self.metrics.add("auditlake_wal_fsync_seconds_total", time.perf_counter() - started)
        with self._cond:
            self._pending[seq] = (time.monotonic(), table)
            self._pending_events += table.num_rows
            self.metrics.set("auditlake_pending_events", self._pending_events)
            if self._pending_events >= self.config.batch_events:
                self._cond.notify_all()
        return seq

    # -- the WAL after a failed write -----------------------------------------------------

    def _wal_failed(self, wal: WriteAheadLog, exc: BaseException) -> str:
        """Note that `wal` failed (unless it was replaced meanwhile); the reason to give."""
        with self._wal_lock:
            if wal is self.wal and self._wal_problem is None:
                log(event="wal_failed", error=str(exc))
                self._wal_problem = f"write-ahead log unavailable: {_wal_reason(exc)}"
            return self._wal_problem or "write-ahead log unavailable: reopened; retry"

    def _usable_wal(self) -> WriteAheadLog:
        """The WAL, reopened first if a write failed (at most every WAL_RETRY_S).

        Reopening recovers like a start after a crash (ingest/wal.py, point 4). Records the
        failed instance wrote but never acknowledged may have survived it: they become
        pending too (the lake's id check keeps a client's retry of them harmless).

        Raises:
            WalUnavailable: still failed, or reopening failed.
        """
        if self._wal_problem is None:
            return self.wal
        with self._wal_lock:
            if self._wal_problem is None:
                return self.wal
            if time.monotonic() < self._wal_retry_at:
                raise WalUnavailable(self._wal_problem)
            self._wal_retry_at = time.monotonic() + WAL_RETRY_S
            # A failed log does not fsync on close; it is being replaced anyway.
            with contextlib.suppress(WalError):
                self.wal.close()
            try:
                wal = WriteAheadLog(self.config.wal_dir, fsync=self.config.fsync)
            except WalError as exc:
                self._wal_problem = f"write-ahead log unavailable: {_wal_reason(exc)}"
                raise WalUnavailable(self._wal_problem) from None
            self.wal = wal
            with self._cond:
                after = self._committed
            try:
                self._take_over(wal, after)
            except (WalError, OSError) as exc:  # a damaged log, or no room to quarantine
                self._wal_problem = f"write-ahead log unavailable: {exc}"
                raise WalUnavailable(self._wal_problem) from None
            self._wal_problem = None
            log(event="wal_reopened")
            return wal

    def _trim(self, upto: int) -> None:
        """Trim the WAL after a commit; a failure only leaves committed records in it."""
        wal = self.wal
        try:
            wal = self._usable_wal()
            wal.trim(upto)
        except (WalError, WalUnavailable) as exc:
            if isinstance(exc, WalError):
                self._wal_failed(wal, exc)
            # Already in the lake: replaying them after a restart adds nothing.
            log(event="trim_failed", error=str(exc))

    # -- batcher --------------------------------------------------------------------------

    def _ready(self) -> list[int]:
        """Contiguous pending seqs after the last commit (a gap = a request in flight)."""
        seqs = []
        nxt = self._committed + 1
        while nxt in self._pending:
            seqs.append(nxt)
            nxt += 1
        return seqs

    def _due(self, seqs: list[int]) -> bool:
        if not seqs:
            return False
        if self._stopping:
            return True
        events = sum(self._pending[s][1].num_rows for s in seqs)
        oldest = self._pending[seqs[0]][0]
        return (
            events >= self.config.batch_events
            or time.monotonic() - oldest >= self.config.batch_age_s
        )

    def _sleep_s(self, seqs: list[int]) -> float:
        """How long the batcher may wait: until the oldest ready record is due by age, and
        at most a quarter of batch_age_s (a request's WAL append may close a gap)."""
        poll = self.config.batch_age_s / 4
        if not seqs:
            return poll
        due_in = self._pending[seqs[0]][0] + self.config.batch_age_s - time.monotonic()
        return min(poll, max(due_in, 0.0))

    def _run(self) -> None:
        try:
            self._batch_loop()
        except BaseException as exc:  # noqa: BLE001 - a bug of ours: say so, never stop silently
            self.failed = f"the batcher stopped: {type(exc).__name__}: {str(exc)[:500]}"
            log(event="batcher_stopped", error=type(exc).__name__, message=str(exc)[:500])

    def _batch_loop(self) -> None:
        backoff = 0.1
        poisoned = 0  # failed tries of the current batch for a reason in its data
        while True:
            with self._cond:
                seqs = self._ready()
                while not self._due(seqs):
                    if self._stopping and (not self._pending or self._drained()):
                        return
                    if self._wal_problem is not None and not self._stopping:
                        self._cond.release()
                        try:
                            self._usable_wal()  # recover without waiting for a request
                        except WalUnavailable:
                            pass  # health says so; tried again on the next wake
                        finally:
                            self._cond.acquire()
                    # A request may be between its WAL append and us: wait for it.
                    self._cond.wait(0.05 if self._stopping else self._sleep_s(seqs))
                    seqs = self._ready()
                records = [(s, self._pending[s][1]) for s in seqs]
                oldest = min(self._pending[s][0] for s in seqs)
            started = time.perf_counter()
            try:
                if poisoned >= POISON_ATTEMPTS:
                    appended, duplicates, tenants = self._isolate(records)
                else:
                    appended, duplicates, tenants = self._append(records)
                # delta-rs does not fsync its files: flush the lake's data, log and tiles to
                # disk before the WAL forgets these events, so even a power cut loses nothing.
                os.sync()
            except Exception as exc:  # noqa: BLE001 - classified: retried, or isolated
                # Nothing is dropped: the records stay pending and in the WAL.
                transient = _transient(exc)
                poisoned = poisoned if transient else poisoned + 1
                self.failed = f"lake commit failed: {type(exc).__name__}: {str(exc)[:500]}"
                self.metrics.add("auditlake_commit_failures_total")
                log(event="commit_failed", error=type(exc).__name__, message=str(exc)[:500],
                    retry_in_s=backoff, transient=transient, attempt=poisoned)  # fmt: skip
                with self._cond:
                    if self._stopping and self._drained():
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._trim(seqs[-1])
            backoff, poisoned = 0.1, 0
            self.failed = None
            with self._cond:
                for s in seqs:
                    _, table = self._pending.pop(s)
                    self._pending_events -= table.num_rows
                self._committed = seqs[-1]
                self.metrics.set("auditlake_pending_events", self._pending_events)
            elapsed = time.perf_counter() - started
            self.metrics.set("auditlake_batch_oldest_event_age_seconds", time.monotonic() - oldest)
            if self.witnesses and tenants:
                with self._cond:
                    self._to_witness.update(tenants)
                self._witness_wake.set()
            self.metrics.add("auditlake_batches_total")
            self.metrics.add("auditlake_events_committed_total", appended)
            self.metrics.add("auditlake_events_duplicate_total", duplicates)
            self.metrics.add("auditlake_commit_seconds_total", elapsed)
            log(event="commit", events=appended, duplicates=duplicates, records=len(seqs),
                seconds=round(elapsed, 4))  # fmt: skip

    def _drained(self) -> bool:
        """Shutdown has waited long enough: leave the rest in the WAL."""
        return time.monotonic() >= self._drain_until

    def _append(self, records: list[tuple[int, pa.Table]]) -> tuple[int, int, set[str]]:
        """One lake commit of these records' events: (appended, duplicates, tenants)."""
        tables = [t for _, t in records if t.num_rows]
        if not tables:
            return 0, 0, set()
        batch = pa.concat_tables(tables)
        conflicts: list[Issue] = []
        result = append(self.lake, batch, self.signer, on_conflict=conflicts.extend)
        if conflicts:
            self._keep_conflicts(records, batch, conflicts)
        return result.appended, result.duplicates, {t.tenant for t in result.tenants}

    def _keep_conflicts(
        self, records: list[tuple[int, pa.Table]], batch: pa.Table, issues: list[Issue]
    ) -> None:
        """Quarantine the events append left out for reusing a tenant's id, by WAL record.

        Acknowledged events under an id another event of their tenant already has are left
        out of the lake (an id is used once per tenant) and never retried (they would block
        the WAL), but kept (kind `id-conflict`): nothing acknowledged is dropped. After a
        crash before this, the replayed batch hands them over again.
        """
        assert self.quarantine is not None
        row_seqs = np.repeat(
            np.array([s for s, t in records if t.num_rows], dtype=np.int64),
            [t.num_rows for _, t in records if t.num_rows],
        )
        rows = np.array([i.index for i in issues], dtype=np.int64)
        for seq in np.unique(row_seqs[rows]).tolist():
            mine = rows[row_seqs[rows] == seq]
            part = batch.take(pa.array(mine))
            error = ValidationError([i for i in issues if row_seqs[i.index] == seq], source="batch")
            kept = self.quarantine.put(seq, _ipc(part), error, part, kind=CONFLICT)
            self.metrics.add("auditlake_events_quarantined_total", kept.events)
            log(event="id_conflict", tenants=kept.tenants, events=kept.events, reason=ID_TAKEN,
                file=kept.path.name)  # fmt: skip

    def _isolate(self, records: list[tuple[int, pa.Table]]) -> tuple[int, int, set[str]]:
        """Commit what the lake takes, bisecting by records then rows; quarantine the rest.

        A part the lake refuses for a reason of its data is halved until the refused
        events stand alone, and those go to the quarantine. An environmental failure
        (`_transient`) is raised: the whole batch is tried again later, and the parts
        already committed are then duplicates the lake skips.
        """
        try:
            return self._append(records)
        except Exception as exc:  # classified below
            if _transient(exc):
                raise
            error = exc
        if len(records) > 1:
            half = len(records) // 2
            a, b = self._isolate(records[:half]), self._isolate(records[half:])
            return a[0] + b[0], a[1] + b[1], a[2] | b[2]
        seq, table = records[0]
        if table.num_rows > 1:
            half = table.num_rows // 2
            a = self._isolate([(seq, table.slice(0, half))])
            b = self._isolate([(seq, table.slice(half))])
            return a[0] + b[0], a[1] + b[1], a[2] | b[2]
        assert self.quarantine is not None
        kept = self.quarantine.put(seq, _ipc(table), error, table)
        self.metrics.add("auditlake_events_quarantined_total", kept.events)
        log(event="quarantined", file=kept.path.name, wal_seq=seq, events=kept.events,
            tenants=kept.tenants, error=type(error).__name__)  # fmt: skip
        return 0, 0, set()


def _wal_reason(exc: BaseException) -> str:
    """Why the WAL refused a write, for a client: the system's reason, without paths."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.errno is not None:
        return os.strerror(cause.errno).lower()
    return "it refused a write"


def _error(
    status: int,
    message: str,
    errors: list[Issue] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = [e.as_dict() for e in errors]
    return JSONResponse(body, status_code=status, headers=headers)


def _authorise(collector: Collector, request: Request) -> TokenGrant | Response:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    grant = lookup(collector.grants, token.strip())
    if grant is None:
        return _error(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return grant


async def _read_body(request: Request, limit: int, timeout: float) -> bytes | Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _error(413, f"body of {declared} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return _error(413, f"body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        return _error(408, f"body not received within {timeout:g} s")
    return b"".join(chunks)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _keep_heap() -> None:
    """Start-up of a validation worker: keep freed heap memory for the next request.

    A request's lines, lists and body are glibc allocations. By default glibc gives the
    heap top back to the kernel after each request and the next one faults it in again:
    about one page fault per event (measured under `benchmarks.collector`: 16 → 13 µs of
    worker CPU per event without them). Keeping up to 64 MiB, and serving blocks under
    16 MiB (a whole body) from the heap rather than from mmap, takes that cost off every
    request. Elsewhere than glibc this does nothing.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:  # no loadable C library under that name: keep the defaults
        return
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 16 * 1024 * 1024)
        mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024)


def _ndjson_events(body: bytes) -> int:
    """Events in an NDJSON body, unparsed: its non-blank lines, as `parse_jsonl` counts them."""
    return sum(1 for line in body.split(b"\n") if line.strip())


def _more_events_than(body: bytes, limit: int) -> bool:
    """Whether an NDJSON body holds more than `limit` events (blank lines are none), unparsed.

    Counting newlines is enough for almost every body; only one with at least `limit`
    newlines is split and its non-blank lines counted.
    """
    if body.count(b"\n") < limit:  # at most `limit` lines, so at most `limit` events
        return False
    return _ndjson_events(body) > limit


def _validate_body(body: bytes, content_type: str, max_events: int) -> tuple[pa.Table, list[Issue]]:
    """(valid events, issues) of a request body."""
    table, issues, _ = _validate_counting(body, content_type, max_events)
    return table, issues


def _validate_counting(
    body: bytes, content_type: str, max_events: int
) -> tuple[pa.Table, list[Issue], int]:
    """(valid events, issues, how many events the body held)."""
    # Ids assigned to events sent without one are seeded by SHA-256 of the body, so a
    # resent body gets the same ids (for NDJSON, hashed only if some event needs one).
    if content_type.startswith(NDJSON):
        # Refused before any parsing: a body past the limit costs a newline count.
        if _more_events_than(body, max_events):
            issue = Issue(max_events, "(request)", f"more than {max_events} events")
            return pa.table({}), [issue], _ndjson_events(body)
        # The file ingestor's block-wise path; equal to parse_jsonl+validate (tested).
        result = validate_jsonl(body)
    else:
        records = parse_json_array(body)
        if len(records) > max_events:
            issue = Issue(max_events, "(request)", f"more than {max_events} events")
            return pa.table({}), [issue], len(records)
        result = validate(records, namespace=hashlib.sha256(body).digest())
    issues = result.issues
    # A rejected body's events: each valid row, and each rejected event once.
    return result.table, issues, result.table.num_rows + (len(result.rejected) if issues else 0)


def _denied(table: pa.Table, tenants: frozenset[str]) -> list[Issue]:
    """An issue for each event whose tenant is not one of `tenants`, the token's.

    Columnar: the distinct tenants of a request are few, so the common case (all allowed)
    is one `unique`; only a request with a denied tenant looks for its rows.
    """
    column = table.column("tenant").combine_chunks()
    if set(pc.unique(column).to_pylist()) <= tenants:
        return []
    allowed = pa.array(sorted(tenants), pa.string())
    rows = np.flatnonzero(
        pc.invert(pc.is_in(column, value_set=allowed)).to_numpy(zero_copy_only=False)
    )
    names = column.take(pa.array(rows, pa.int64())).to_pylist()
    return [
        Issue(row, "tenant", f"this token may not write tenant {name!r}")
        for row, name in zip(rows.tolist(), names, strict=True)
    ]


def _check_body(
    body: bytes, content_type: str, max_events: int, tenants: frozenset[str]
) -> tuple[pa.Table, list[Issue], list[Issue]]:
    """Validate a body, then check its events' tenants: (table, issues, denied)."""
    table, issues, denied, _ = _screen_body(body, content_type, max_events, tenants)
    return table, issues, denied


def _screen_body(
    body: bytes, content_type: str, max_events: int, tenants: frozenset[str]
) -> tuple[pa.Table, list[Issue], list[Issue], int]:
    """Validate a body, then check its events' tenants: (table, issues, denied, events).

    Both run where validation runs (a worker process, when there are workers), so the
    event loop's thread calls no Arrow kernel: each releases and retakes the GIL, which
    the batcher thread may hold for milliseconds. Denied is only looked for in a body
    without issues, as a 400 comes before a 403. `events` counts the body's events,
    valid or not (what a refusal refuses).
    """
    table, issues, events = _validate_counting(body, content_type, max_events)
    denied = _denied(table, tenants) if not issues and table.num_rows else []
    return table, issues, denied, events


def create_app(collector: Collector, guard: ConnectionGuard | None = None) -> RequestMetrics:
    """The ASGI app: /v1/events, /v1/health, /metrics, each request counted and timed.

    `guard`, when given, handles the event loop's out-of-descriptor errors (see
    ingest/connections.py).
    """

    async def events(request: Request) -> Response:
        started = time.perf_counter()
        auth = _authorise(collector, request)
        if isinstance(auth, Response):
            return auth
        if collector.failed or collector.overloaded():
            reason = collector.failed or "the collector is behind; retry later"
            return _error(503, reason, headers={"Retry-After": "1"})
        body = await _read_body(
            request, collector.config.max_body_bytes, collector.config.body_timeout_s
        )
        if isinstance(body, Response):
            return body
        content_type = request.headers.get("content-type", "application/json")
        args = (body, content_type, collector.config.max_events, auth.tenants)
        try:
            if pool is not None:
                table, issues, denied, n = await asyncio.wrap_future(
                    pool.submit(_screen_body, *args)
                )
            else:
                table, issues, denied, n = await anyio.to_thread.run_sync(_screen_body, *args)
        except LakeError as exc:  # a body that is not JSON at all: no events to count
            issues = getattr(exc, "issues", [Issue(0, "(request)", str(exc))])
            table, denied, n = pa.table({}), [], 0
        if issues or denied:
            collector.metrics.add("auditlake_events_rejected_total", n)
        if issues:
            log(event="rejected", token=auth.name, issues=len(issues), status=400)
            return _error(400, "invalid events; nothing was kept", issues)
        if denied:
            log(event="forbidden", token=auth.name, status=403)
            return _error(403, "token not allowed for these tenants; nothing was kept", denied)
        if table.num_rows:
            try:
                await anyio.to_thread.run_sync(collector.accept, table)
            except StorageError as exc:  # a full disk under the WAL; a broker that refused
                log(event="unavailable", token=auth.name, error=str(exc), status=503)
                return _error(503, f"{exc}; nothing was accepted", headers={"Retry-After": "1"})
        collector.metrics.add("auditlake_events_accepted_total", table.num_rows)
        ms = (time.perf_counter() - started) * 1000
        log(event="accepted", token=auth.name, events=table.num_rows, ms=round(ms, 2))
        return JSONResponse({"accepted": table.num_rows}, status_code=202)

    async def health(request: Request) -> Response:
        stats = collector.wal_stats()
        problem = await anyio.to_thread.run_sync(collector.problem)
        quarantine = collector.quarantine
        return JSONResponse(
            {
                "status": "failing" if problem else "ok",
                "error": problem,
                "wal": {"records": stats.records, "bytes": stats.bytes},
                "pending_events": collector.pending_events,
                "quarantine": {
                    "files": quarantine.files() if quarantine is not None else 0,
                    "directory": str(quarantine.directory) if quarantine is not None else None,
                },
            },
            status_code=503 if problem else 200,
        )

    async def metrics(request: Request) -> Response:
        stats = collector.wal_stats()
        collector.metrics.set("auditlake_wal_records", stats.records)
        collector.metrics.set("auditlake_wal_bytes", stats.bytes)
        collector.metrics.set("auditlake_pending_events", collector.pending_events)
        if collector.quarantine is not None:
            collector.metrics.set("auditlake_quarantine_files", collector.quarantine.files())
        return Response(collector.metrics.render(), media_type=CONTENT_TYPE)

    pool: ProcessPoolExecutor | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        if collector.config.validate_workers > 0:
            pool = ProcessPoolExecutor(
                collector.config.validate_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_keep_heap,
            )
            # Start the workers (and their imports) now, not on the first request.
            await asyncio.gather(
                *(
                    asyncio.wrap_future(
                        pool.submit(_check_body, b"[]", "application/json", 1, frozenset())
                    )
                    for _ in range(collector.config.validate_workers)
                )
            )
        if guard is not None:
            asyncio.get_running_loop().set_exception_handler(guard.exception_handler)
        collector.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(collector.shutdown)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/v1/events", events, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return RequestMetrics(app, collector.metrics, ROUTES)


def serve(config: CollectorConfig, host: str, port: int) -> int:
    """Run the collector until SIGTERM/SIGINT, then flush, seal, commit and return.

    Returns how many acknowledged events are still pending (0 after a clean drain): they
    stay in the WAL and are committed on the next start.
    """
    import uvicorn
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise for counters that live as long as we do
    if config.forward_nats:
        from ingest.jetstream import ForwardingCollector

        collector: Collector = ForwardingCollector(config)
    else:
        collector = Collector(config)
    limit = descriptor_budget(config.max_connections)
    guard = ConnectionGuard(
        limit, config.header_timeout_s, RateLimitedLog(log), collector.metrics.add
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(collector, guard),
            host=host,
            port=port,
            http=guarded_protocol(guard),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=30,
        )
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then restores the previous handlers
    # and re-raises the signal. With these no-op handlers in place that re-raise is
    # harmless, so after the final flush the process returns rather than dies by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    log(event="listening", url=f"http://{host}:{port}", max_connections=limit)
    server.run()
    log(event="exit", pending_events=collector.pending_events)
    return collector.pending_events
