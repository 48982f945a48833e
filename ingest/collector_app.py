"""The collector's HTTP side: routes, statuses, connection limits, and `serve`.

ingest/collector.py holds the state that makes a 202 safe (WAL, batcher, quarantine);
this module turns requests into calls on it. A request is refused as early and as
cheaply as it can be: a bad token before the body is read, a declared length over the
limit before a byte of it, a body past its deadline with 408, then validation and the
tenant check in a worker (ingest/request_body.py), and only then the WAL. Every answer
is counted by route and status, with its latency (ingest/metrics.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pyarrow as pa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.acceptor import Acceptor, CollectorConfig
from ingest.bounded_body import BodyRefused, read_bounded
from ingest.collector import Collector
from ingest.connections import ConnectionGuard, RateLimitedLog, descriptor_budget, server_options
from ingest.jsonlog import log
from ingest.metrics import CONTENT_TYPE, RequestMetrics
from ingest.request_body import check_body, screen_body, start_worker
from ingest.tokens import TokenGrant, lookup
from lake.contract import Issue, LakeError, StorageError

__all__ = ["create_app", "serve"]

ROUTES = frozenset({"/v1/events", "/v1/health", "/metrics"})
RETRY_SOON = {"Retry-After": "1"}
"""Headers of every 503: the client may try again in a second."""


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


def _authorise(acceptor: Acceptor, request: Request) -> TokenGrant | Response:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    grant = lookup(acceptor.grants, token.strip())
    if grant is None:
        return _error(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return grant


async def _read_body(request: Request, limit: int, timeout: float) -> bytes | Response:
    body = await read_bounded(request, limit, timeout)
    if not isinstance(body, BodyRefused):
        return body
    if body.status == 408:
        return _error(408, f"body not received within {timeout:g} s")
    if body.declared is not None:
        return _error(413, f"body of {body.declared} bytes is over the limit of {limit}")
    return _error(413, f"body is over the limit of {limit} bytes")


class _Routes:
    """The handlers over one acceptor, and the validation pool its lifespan runs."""

    def __init__(self, acceptor: Acceptor, guard: ConnectionGuard | None) -> None:
        self.acceptor = acceptor
        self.config = acceptor.config
        self.guard = guard
        self.pool: ProcessPoolExecutor | None = None

    async def events(self, request: Request) -> Response:
        started = time.perf_counter()
        auth = _authorise(self.acceptor, request)
        if isinstance(auth, Response):
            return auth
        if reason := self.acceptor.refusal():
            return _error(503, reason, headers=RETRY_SOON)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # a compressed body would read as bad JSON
            return _error(415, f"Content-Encoding {encoding!r} is not accepted: send the body "
                          "uncompressed")  # fmt: skip
        body = await _read_body(request, self.config.max_body_bytes, self.config.body_timeout_s)
        if isinstance(body, Response):
            return body
        content_type = request.headers.get("content-type", "application/json")
        table, issues, denied, n = await self._screen(body, content_type, auth.tenants)
        if issues or denied:
            self.acceptor.metrics.add("auditlake_events_rejected_total", n)
        if issues:
            log(event="rejected", token=auth.name, issues=len(issues), status=400)
            return _error(400, "invalid events; nothing was kept", issues)
        if denied:
            log(event="forbidden", token=auth.name, status=403)
            return _error(403, "token not allowed for these tenants; nothing was kept", denied)
        if table.num_rows:
            try:
                await anyio.to_thread.run_sync(self.acceptor.accept, table)
            except StorageError as exc:  # a full disk under the WAL; a broker that refused
                log(event="unavailable", token=auth.name, error=str(exc), status=503)
                return _error(503, f"{exc}; nothing was accepted", headers=RETRY_SOON)
        self.acceptor.metrics.add("auditlake_events_accepted_total", table.num_rows)
        ms = (time.perf_counter() - started) * 1000
        log(event="accepted", token=auth.name, events=table.num_rows, ms=round(ms, 2))
        return JSONResponse({"accepted": table.num_rows}, status_code=202)

    async def _screen(
        self, body: bytes, content_type: str, tenants: frozenset[str]
    ) -> tuple[pa.Table, list[Issue], list[Issue], int]:
        """Validate and tenant-check a body, in the pool when there is one."""
        args = (body, content_type, self.config.max_events, tenants)
        try:
            if self.pool is not None:
                return await asyncio.wrap_future(self.pool.submit(screen_body, *args))
            return await anyio.to_thread.run_sync(screen_body, *args)
        except LakeError as exc:  # a body that is not JSON at all: no events to count
            issues = getattr(exc, "issues", [Issue(0, "(request)", str(exc))])
            return pa.table({}), issues, [], 0

    async def health(self, request: Request) -> Response:
        backlog = self.acceptor.backlog()
        problem = await anyio.to_thread.run_sync(self.acceptor.problem)
        return JSONResponse(
            {
                "status": "failing" if problem else "ok",
                "error": problem,
                "wal": {"records": backlog.wal_records, "bytes": backlog.wal_bytes},
                "pending_events": backlog.pending_events,
                # Counted, not located: health answers without a token.
                "quarantine": {"files": backlog.quarantine_files or 0},
            },
            status_code=503 if problem else 200,
        )

    async def metrics(self, request: Request) -> Response:
        backlog = self.acceptor.backlog()
        metrics = self.acceptor.metrics
        metrics.set("auditlake_wal_records", backlog.wal_records)
        metrics.set("auditlake_wal_bytes", backlog.wal_bytes)
        metrics.set("auditlake_pending_events", backlog.pending_events)
        if backlog.quarantine_files is not None:
            metrics.set("auditlake_quarantine_files", backlog.quarantine_files)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def _start_pool(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(os.getpid(),),
        )
        # Start the workers (and their imports) now, not on the first request.
        warm_up = (b"[]", "application/json", 1, frozenset[str]())
        await asyncio.gather(
            *(asyncio.wrap_future(self.pool.submit(check_body, *warm_up)) for _ in range(workers))
        )

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.config.validate_workers > 0:
            await self._start_pool(self.config.validate_workers)
        if self.guard is not None:
            asyncio.get_running_loop().set_exception_handler(self.guard.exception_handler)
        self.acceptor.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self.acceptor.shutdown)
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)


def create_app(acceptor: Acceptor, guard: ConnectionGuard | None = None) -> RequestMetrics:
    """The ASGI app: /v1/events, /v1/health, /metrics, each request counted and timed.

    `guard`, when given, handles the event loop's out-of-descriptor errors (see
    ingest/connections.py).
    """
    routes = _Routes(acceptor, guard)
    app = Starlette(
        routes=[
            Route("/v1/events", routes.events, methods=["POST"]),
            Route("/v1/health", routes.health, methods=["GET"]),
            Route("/metrics", routes.metrics, methods=["GET"]),
        ],
        lifespan=routes.lifespan,
    )
    return RequestMetrics(app, acceptor.metrics, ROUTES)


def serve(config: CollectorConfig, host: str, port: int) -> int:
    """Run the collector until SIGTERM/SIGINT, then flush, seal, commit and return.

    Returns how many acknowledged events are still pending (0 after a clean drain): they
    stay in the WAL and are committed on the next start.
    """
    import uvicorn
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise for counters that live as long as we do
    collector: Acceptor
    if config.forward_nats:
        from ingest.forwarder import ForwardingCollector  # needs nats-py (the `scale` extra)

        collector = ForwardingCollector(config)
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
            timeout_graceful_shutdown=30,
            **server_options(guard),
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
