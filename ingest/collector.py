"""The HTTP collector: validate, make durable in a WAL, acknowledge, then batch into the lake.

A request is all or nothing. Its events are validated by `lake.contract` (every error named),
checked against the token's tenants, written to the write-ahead log as one Arrow IPC
record and fsync'd (group commit across requests), and only then answered `202`. A batcher
thread seals and commits pending records to the lake by size or age, and trims the WAL
only after the lake commit. On start-up the WAL is replayed; the lake's id-based
deduplication makes replaying a record that was already committed harmless.

Requests finish their WAL appends out of order, so the batcher commits only up to the
highest *contiguous* WAL sequence it holds: a trim can never remove a record whose
request is still on its way to the batcher.

The HTTP side (routes, statuses, connection limits, `serve`) is ingest/collector_app.py;
a request body's checks are ingest/request_body.py.

What can go wrong at the edges, and what the collector does then:

- A commit fails for a reason of the environment (storage, the WAL: `OSError`,
  `StorageError`, Delta errors): health turns failing, requests get 503 + Retry-After,
  and the same batch is retried with backoff until it commits. Nothing is dropped.
- A commit fails for anything else, which is about the data (a record an older
  collector let through, a payload that no longer decodes): after `POISON_ATTEMPTS`
  tries the batch is bisected, by records then rows, and what the lake refuses on its
  own goes to the quarantine (ingest/quarantine.py) while the rest commits. Health stays
  failing while the quarantine holds such parts; requests are served meanwhile. (Events
  append leaves out for reusing a tenant's id are kept there too, without failing health.)
- The batcher itself breaks (a bug): health turns failing with the reason, requests get
  503, and shutdown says events are pending instead of pretending.
- The WAL's disk fills: the WAL refuses further writes (ingest/wal.py, point 6), so
  requests get 503 + Retry-After; the log is reopened (recovering as after a crash) at
  most once a second until a write succeeds again, with no restart.
- Shutdown commits what it can within `drain_timeout_s`; what is left stays in the WAL,
  replays on the next start, and `serve` returns its count (the CLI exits 1).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake.exceptions import DeltaError

from ingest.acceptor import BEHIND, Backlog, CollectorConfig
from ingest.batching import Backoff
from ingest.ipc import from_ipc, to_ipc
from ingest.jsonlog import log
from ingest.metrics import Metrics
from ingest.quarantine import CONFLICT, REFUSED, Quarantine
from ingest.tokens import TokenStore
from ingest.wal import WalError, WriteAheadLog
from lake.contract import (
    Issue,
    LakeError,
    LakeNotFoundError,
    StorageError,
    UsageError,
    ValidationError,
)
from lake.secrets import KeyStore
from lake.storage import Lake
from lake.witness import load_witnesses, request_cosignatures
from lake.write import ID_TAKEN, append, seal, stamp_received

__all__ = ["Collector", "CollectorConfig", "WalUnavailable"]

POISON_ATTEMPTS = 3
"""Tries of a batch that fails for a data reason before its records are isolated."""
WAL_RETRY_S = 1.0
"""How often a failed WAL (e.g. a full disk) is reopened, at most."""
WAL_MIN_FREE = 1 << 20
"""Free bytes a failed WAL's filesystem needs before the log is reopened."""


def _free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on `directory`'s filesystem (a directory
    that cannot be examined counts as having room: reopening then says what is wrong)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return WAL_MIN_FREE
    return st.f_bavail * st.f_frsize


class WalUnavailable(StorageError):
    """The WAL cannot take events now (e.g. its disk is full): 503, nothing accepted."""


def _transient(exc: BaseException) -> bool:
    """Whether a failed commit is the environment's doing (retry), not the data's."""
    if isinstance(exc, LakeNotFoundError):  # the lake's volume is away, say: not the data
        return True
    if isinstance(exc, UsageError):  # e.g. ValidationError: the lake refuses these events
        return False
    return isinstance(exc, OSError | WalError | LakeError | DeltaError)


class Collector:
    """The WAL acceptor (`ingest.acceptor.Acceptor`): WAL, pending records, batcher, metrics."""

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
        self._wal_problem: str | None = None
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
        if files := self.quarantine.files():
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
                table = from_ipc(payload)
            except pa.ArrowException as exc:
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

    def refusal(self) -> str | None:
        """Why requests get 503 now: a failed commit or batcher, or too much pending."""
        if self.failed:
            return self.failed
        return BEHIND if self._pending_events >= self.config.max_pending_events else None

    def backlog(self) -> Backlog:
        stats = self.wal.stats()
        return Backlog(stats.records, stats.bytes, self._pending_events, self.quarantine.files())

    def problem(self) -> str | None:
        """Why health is failing, or None: a commit, the WAL, the batcher or the quarantine."""
        if self.failed or self._wal_problem:
            return self.failed or self._wal_problem
        if files := self.quarantine.files(REFUSED):
            return (
                f"{files} quarantined part(s): events the lake refused, kept in the WAL "
                "directory's quarantine (the log names them); everything else commits"
            )
        return None

    def accept(self, table: pa.Table) -> None:
        """Make a validated table durable, then hand it to the batcher. Blocks on fsync.

        The receipt time is stamped here and kept in the WAL record, so an event replayed
        after a crash keeps the time it actually arrived.

        Raises:
            WalUnavailable: the WAL cannot write now (e.g. a full disk); nothing was kept.
        """
        started = time.perf_counter()
        table = stamp_received(table)
        payload = to_ipc(table)
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

    # -- the WAL after a failed write -----------------------------------------------------

    def _wal_failed(self, wal: WriteAheadLog, exc: BaseException) -> str:
        """Note that `wal` failed (unless it was replaced meanwhile); the reason to give."""
        with self._wal_lock:
            if wal is self.wal and self._wal_problem is None:
                log(event="wal_failed", error=str(exc))
                self._wal_problem = f"write-ahead log unavailable: {_wal_reason(exc)}"
                self._wal_retry_at = time.monotonic() + WAL_RETRY_S
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
            # Opening a log needs no free block (a full disk still has inodes): reopening
            # then would turn health green while every write still fails.
            if _free_bytes(self.config.wal_dir) < WAL_MIN_FREE:
                raise WalUnavailable(self._wal_problem)
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
        backoff = Backoff()
        poisoned = 0  # failed tries of the current batch for a reason in its data
        while True:
            due = self._wait_due()
            if due is None:
                return
            records, oldest = due
            seqs = [seq for seq, _ in records]
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
                wait = backoff.wait_s()
                log(event="commit_failed", error=type(exc).__name__, message=str(exc)[:500],
                    retry_in_s=wait, transient=transient, attempt=poisoned)  # fmt: skip
                with self._cond:
                    if self._stopping and self._drained():
                        return
                    self._cond.wait(wait)
                continue
            self._trim(seqs[-1])
            backoff.reset()
            poisoned = 0
            self.failed = None
            self._committed_up_to(seqs, tenants)
            elapsed = time.perf_counter() - started
            self.metrics.set("auditlake_batch_oldest_event_age_seconds", time.monotonic() - oldest)
            self.metrics.add("auditlake_batches_total")
            self.metrics.add("auditlake_events_committed_total", appended)
            self.metrics.add("auditlake_events_duplicate_total", duplicates)
            self.metrics.add("auditlake_commit_seconds_total", elapsed)
            log(event="commit", events=appended, duplicates=duplicates, records=len(seqs),
                seconds=round(elapsed, 4))  # fmt: skip

    def _wait_due(self) -> tuple[list[tuple[int, pa.Table]], float] | None:
        """The next due records (seq, events) and their oldest arrival; None: stop batching."""
        with self._cond:
            seqs = self._ready()
            while not self._due(seqs):
                if self._stopping and (not self._pending or self._drained()):
                    return None
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
            return records, min(self._pending[s][0] for s in seqs)

    def _committed_up_to(self, seqs: list[int], tenants: set[str]) -> None:
        """Forget the committed records; have the witnesses asked about their tenants."""
        with self._cond:
            for s in seqs:
                _, table = self._pending.pop(s)
                self._pending_events -= table.num_rows
            self._committed = seqs[-1]
            self.metrics.set("auditlake_pending_events", self._pending_events)
        if self.witnesses and tenants:
            with self._cond:
                self._to_witness.update(tenants)
            self._witness_wake.set()

    def _drained(self) -> bool:
        """Shutdown has waited long enough: leave the rest in the WAL."""
        return time.monotonic() >= self._drain_until

    def _append(self, records: list[tuple[int, pa.Table]]) -> tuple[int, int, set[str]]:
        """One lake commit of these records' events: (appended, duplicates, tenants)."""
        tables = [t for _, t in records if t.num_rows]
        if not tables:
            return 0, 0, set()
        batch = pa.concat_tables(tables)
        # Conflicts are kept before the commit (append calls back first): durable before
        # the rest of their record leaves the WAL.
        result = append(
            self.lake,
            batch,
            self.signer,
            on_conflict=lambda issues: self._keep_conflicts(records, batch, issues),
        )
        return result.appended, result.duplicates, {t.tenant for t in result.tenants}

    def _keep_conflicts(
        self, records: list[tuple[int, pa.Table]], batch: pa.Table, issues: list[Issue]
    ) -> None:
        """Quarantine the events append left out for reusing a tenant's id, by WAL record.

        Acknowledged events under an id another event of their tenant already has are left
        out of the lake (an id is used once per tenant) and never retried (they would block
        the WAL), but kept (kind `id-conflict`): nothing acknowledged is dropped. A retried
        commit hands them over again (a second copy beside the first).
        """
        row_seqs = np.repeat(
            np.array([s for s, t in records if t.num_rows], dtype=np.int64),
            [t.num_rows for _, t in records if t.num_rows],
        )
        rows = np.array([i.index for i in issues], dtype=np.int64)
        for seq in np.unique(row_seqs[rows]).tolist():
            mine = rows[row_seqs[rows] == seq]
            part = batch.take(pa.array(mine))
            error = ValidationError([i for i in issues if row_seqs[i.index] == seq], source="batch")
            kept = self.quarantine.put(seq, to_ipc(part), error, part, kind=CONFLICT)
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
        kept = self.quarantine.put(seq, to_ipc(table), error, table)
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
