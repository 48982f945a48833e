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
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ingest.tokens import TokenGrant, TokenStore, lookup
from ingest.wal import WalError, WalStats, WriteAheadLog
from lake.append import append, seal, stamp_received
from lake.config import KeyStore
from lake.errors import Issue, LakeError, StorageError
from lake.storage import Lake
from lake.unique import ID_TAKEN
from lake.wire import parse_json_array, validate, validate_jsonl
from lake.witness import load_witnesses, request_cosignatures

NDJSON = "application/x-ndjson"


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


@dataclass
class Metrics:
    """Prometheus counters and gauges, rendered by hand (text format 0.0.4)."""

    counters: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, value: float = 1.0) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0.0) + value

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.counters[name] = value

    def render(self) -> str:
        with self.lock:
            items = sorted(self.counters.items())
        lines = []
        for name, value in items:
            kind = "counter" if name.endswith("_total") else "gauge"
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name} {value:g}")
        return "\n".join(lines) + "\n"


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
        self.metrics = Metrics()
        self._pending: dict[int, tuple[float, pa.Table]] = {}
        self._pending_events = 0
        self._committed = -1  # highest WAL seq committed to the lake
        self._cond = threading.Condition()
        self._stopping = False
        self.failed: str | None = None
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
        replayed = 0
        first: int | None = None
        for seq, payload in self.wal.replay():
            table = _from_ipc(payload)
            self._pending[seq] = (time.monotonic(), table)
            self._pending_events += table.num_rows
            replayed += table.num_rows
            first = seq if first is None else first
        if first is not None:
            self._committed = first - 1
        else:
            self._committed = self.wal.stats().next_seq - 1
        log(event="start", replayed_events=replayed, lake=self.lake.root)
        if not self.grants:
            log(
                event="warning",
                message="no collector tokens: every request will get 401; "
                "create one with `auditlake token create --tenant T`",
            )
        self._thread.start()
        self._witness_thread.start()

    def shutdown(self) -> None:
        """Stop batching after committing everything pending, then close the WAL."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        self.wal.close()
        log(event="stopped", pending_events=self._pending_events)

    # -- requests -------------------------------------------------------------------------

    def overloaded(self) -> bool:
        return self._pending_events >= self.config.max_pending_events

    def wal_stats(self) -> WalStats:
        return self.wal.stats()

    def accept(self, table: pa.Table) -> int:
        """Make a validated table durable, then hand it to the batcher. Blocks on fsync.

        The receipt time is stamped here and kept in the WAL record, so an event replayed
        after a crash keeps the time it actually arrived.
        """
        started = time.perf_counter()
        table = stamp_received(table)
        seq = self.wal.append(_ipc(table))
        self.metrics.add("auditlake_wal_fsync_seconds_total", time.perf_counter() - started)
        with self._cond:
            self._pending[seq] = (time.monotonic(), table)
            self._pending_events += table.num_rows
            self.metrics.set("auditlake_pending_events", self._pending_events)
            if self._pending_events >= self.config.batch_events:
                self._cond.notify_all()
        return seq

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
        backoff = 0.1
        while True:
            with self._cond:
                seqs = self._ready()
                while not self._due(seqs):
                    if self._stopping and not self._pending:
                        return
                    if self._stopping and not seqs:
                        # A request is still between its WAL append and us: wait for it.
                        self._cond.wait(0.05)
                    else:
                        self._cond.wait(self._sleep_s(seqs))
                    seqs = self._ready()
                tables = [self._pending[s][1] for s in seqs]
            started = time.perf_counter()
            oldest = min(self._pending[s][0] for s in seqs)
            try:
                batch = pa.concat_tables(tables)
                result = append(self.lake, batch, self.signer, on_conflict=_id_conflicts(batch))
                # delta-rs does not fsync its files: flush the lake's data, log and tiles to
                # disk before the WAL forgets these events, so even a power cut loses nothing.
                os.sync()
                self.wal.trim(seqs[-1])
            except (LakeError, WalError, OSError) as exc:
                # Nothing is dropped: the records stay pending and in the WAL.
                self.failed = f"lake commit failed: {exc}"
                log(event="commit_failed", error=str(exc), retry_in_s=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            self.failed = None
            with self._cond:
                for s in seqs:
                    _, table = self._pending.pop(s)
                    self._pending_events -= table.num_rows
                self._committed = seqs[-1]
                self.metrics.set("auditlake_pending_events", self._pending_events)
            elapsed = time.perf_counter() - started
            self.metrics.set("auditlake_batch_oldest_event_age_seconds", time.monotonic() - oldest)
            if self.witnesses:
                with self._cond:
                    self._to_witness.update(t.tenant for t in result.tenants)
                self._witness_wake.set()
            self.metrics.add("auditlake_batches_total")
            self.metrics.add("auditlake_events_committed_total", result.appended)
            self.metrics.add("auditlake_events_duplicate_total", result.duplicates)
            self.metrics.add("auditlake_commit_seconds_total", elapsed)
            log(
                event="commit",
                batch_id=result.batch_id,
                events=result.appended,
                duplicates=result.duplicates,
                records=len(seqs),
                seconds=round(elapsed, 4),
            )


def _id_conflicts(batch: pa.Table) -> Callable[[list[Issue]], None]:
    """What append calls with acknowledged events under an id another event of their
    tenant already has: they are left out of the lake (an id is used once per tenant) and
    logged, never retried (they would block the WAL)."""

    def report(issues: list[Issue]) -> None:
        rows = pa.array([i.index for i in issues], pa.int64())
        tenants = sorted(set(batch.column("tenant").take(rows).to_pylist()))
        log(event="id_conflict", tenants=tenants, events=len(issues), reason=ID_TAKEN)

    return report


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


def _more_events_than(body: bytes, limit: int) -> bool:
    """Whether an NDJSON body holds more than `limit` events (blank lines are none), unparsed.

    Counting newlines is enough for almost every body; only one with at least `limit`
    newlines is split and its non-blank lines counted, as `parse_jsonl` would count them.
    """
    if body.count(b"\n") < limit:  # at most `limit` lines, so at most `limit` events
        return False
    return sum(1 for line in body.split(b"\n") if line.strip()) > limit


def _validate_body(body: bytes, content_type: str, max_events: int) -> tuple[pa.Table, list[Issue]]:
    # Ids assigned to events sent without one are seeded by SHA-256 of the body, so a
    # resent body gets the same ids (for NDJSON, hashed only if some event needs one).
    if content_type.startswith(NDJSON):
        # Refused before any parsing: a body past the limit costs a newline count.
        if _more_events_than(body, max_events):
            return pa.table({}), [Issue(max_events, "(request)", f"more than {max_events} events")]
        # The file ingestor's block-wise path; equal to parse_jsonl + validate (tested).
        result = validate_jsonl(body)
    else:
        records = parse_json_array(body)
        if len(records) > max_events:
            return pa.table({}), [Issue(max_events, "(request)", f"more than {max_events} events")]
        result = validate(records, namespace=hashlib.sha256(body).digest())
    return result.table, result.issues


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
    """Validate a body, then check its events' tenants: (table, issues, denied).

    Both run where validation runs (a worker process, when there are workers), so the
    event loop's thread calls no Arrow kernel: each releases and retakes the GIL, which
    the batcher thread may hold for milliseconds. Denied is only looked for in a body
    without issues, as a 400 comes before a 403.
    """
    table, issues = _validate_body(body, content_type, max_events)
    denied = _denied(table, tenants) if not issues and table.num_rows else []
    return table, issues, denied


def create_app(collector: Collector) -> Starlette:
    """The ASGI app: /v1/events, /v1/health, /metrics."""

    async def events(request: Request) -> Response:
        started = time.perf_counter()
        auth = _authorise(collector, request)
        if isinstance(auth, Response):
            collector.metrics.add("auditlake_requests_unauthorised_total")
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
                table, issues, denied = await asyncio.wrap_future(pool.submit(_check_body, *args))
            else:
                table, issues, denied = await anyio.to_thread.run_sync(_check_body, *args)
        except LakeError as exc:  # a body that is not JSON at all
            issues = getattr(exc, "issues", [Issue(0, "(request)", str(exc))])
            table, denied = pa.table({}), []
        if issues:
            collector.metrics.add("auditlake_events_rejected_total", max(len(issues), 1))
            log(event="rejected", token=auth.name, issues=len(issues), status=400)
            return _error(400, "invalid events; nothing was kept", issues)
        if denied:
            log(event="forbidden", token=auth.name, status=403)
            return _error(403, "token not allowed for these tenants; nothing was kept", denied)
        if table.num_rows:
            try:
                await anyio.to_thread.run_sync(collector.accept, table)
            except StorageError as exc:  # forwarding: the broker did not take them all
                log(event="unavailable", token=auth.name, error=str(exc), status=503)
                return _error(503, f"{exc}; nothing was accepted", headers={"Retry-After": "1"})
        collector.metrics.add("auditlake_events_accepted_total", table.num_rows)
        collector.metrics.add("auditlake_requests_accepted_total")
        ms = (time.perf_counter() - started) * 1000
        log(event="accepted", token=auth.name, events=table.num_rows, ms=round(ms, 2))
        return JSONResponse({"accepted": table.num_rows}, status_code=202)

    async def health(request: Request) -> Response:
        stats = collector.wal_stats()
        status = "failing" if collector.failed else "ok"
        return JSONResponse(
            {
                "status": status,
                "error": collector.failed,
                "wal": {"records": stats.records, "bytes": stats.bytes},
                "pending_events": collector._pending_events,
            },
            status_code=503 if collector.failed else 200,
        )

    async def metrics(request: Request) -> Response:
        stats = collector.wal_stats()
        collector.metrics.set("auditlake_wal_records", stats.records)
        collector.metrics.set("auditlake_wal_bytes", stats.bytes)
        return PlainTextResponse(collector.metrics.render(), media_type="text/plain; version=0.0.4")

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
        collector.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(collector.shutdown)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    return Starlette(
        routes=[
            Route("/v1/events", events, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def serve(config: CollectorConfig, host: str, port: int) -> None:
    """Run the collector until SIGTERM/SIGINT, then flush, seal, commit and return."""
    import uvicorn

    if config.forward_nats:
        from ingest.jetstream import ForwardingCollector

        collector: Collector = ForwardingCollector(config)
    else:
        collector = Collector(config)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(collector),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=30,
        )
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then restores the previous handlers
    # and re-raises the signal. With these no-op handlers in place that re-raise is
    # harmless, so after the final flush the process exits 0 rather than by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    log(event="listening", url=f"http://{host}:{port}")
    server.run()
    log(event="exit", pending_events=collector._pending_events)
