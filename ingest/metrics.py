"""The collector's Prometheus metrics: one registry per collector, HELP and TYPE for each.

Built on `prometheus_client` rather than hand-written exposition text, so every family
has its `# HELP`/`# TYPE` lines, counters and histograms follow the format exactly, and
a second collector in the same process (tests) never shares counts with the first.

Callers name a metric by its exposed name (`auditlake_..._total` for counters); names
that are not declared below still work (the forwarding collector adds its own), with a
generic help text. HTTP requests are counted by route and status, with a latency
histogram by route, by `RequestMetrics`, an ASGI wrapper around the whole app, so a
refusal from any layer (401, 413, 503) is counted like an answer from a handler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

__all__ = ["CONTENT_TYPE", "Metrics", "RequestMetrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

_HELP = {
    "auditlake_events_accepted_total": "Events acknowledged with 202 (durable in the WAL).",
    "auditlake_events_rejected_total": "Events in requests refused with 400 or 403 (none kept).",
    "auditlake_events_committed_total": "Events committed and sealed into the lake.",
    "auditlake_events_duplicate_total": "Events skipped at commit: the lake already had them.",
    "auditlake_events_quarantined_total": "Events the lake refused, kept in the quarantine.",
    "auditlake_batches_total": "Lake commits made by the batcher.",
    "auditlake_commit_failures_total": "Failed lake commit attempts (retried).",
    "auditlake_commit_seconds_total": "Time spent committing batches to the lake.",
    "auditlake_wal_fsync_seconds_total": "Time requests spent making events durable.",
    "auditlake_pending_events": "Events acknowledged but not yet committed to the lake.",
    "auditlake_batch_oldest_event_age_seconds": "Age of the oldest event of the last batch.",
    "auditlake_wal_records": "Records in the write-ahead log's segments on disk.",
    "auditlake_wal_bytes": "Bytes in the write-ahead log's segments on disk.",
    "auditlake_quarantine_files": "Files in the quarantine directory (0 when healthy).",
    "auditlake_connections_refused_total": "Connections closed at the connection limit.",
    "auditlake_connections_timed_out_total": "Connections closed for not sending a request.",
    "auditlake_witness_cosignatures_total": "Checkpoints cosigned by a witness.",
    "auditlake_witness_failures_total": "Witness cosignature requests that failed.",
}

# Request latencies from a fast 202 (a group-committed fsync) to a slow body.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters and gauges by exposed name, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self.requests = Counter(
            "auditlake_http_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "auditlake_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        for name in _HELP:  # every declared family shows, at 0, from the start
            if name.endswith("_total"):
                self._counter(name)
            else:
                self._gauge(name)

    def _counter(self, name: str) -> Counter:
        with self._lock:
            counter = self._counters.get(name)
            if counter is None:
                help_text = _HELP.get(name, f"{name} (counter).")
                # prometheus_client adds the _total suffix itself.
                counter = Counter(name.removesuffix("_total"), help_text, registry=self.registry)
                self._counters[name] = counter
            return counter

    def _gauge(self, name: str) -> Gauge:
        with self._lock:
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = Gauge(name, _HELP.get(name, f"{name} (gauge)."), registry=self.registry)
                self._gauges[name] = gauge
            return gauge

    def add(self, name: str, value: float = 1.0) -> None:
        """Add to a counter (a name ending in `_total`) or a gauge."""
        if name.endswith("_total"):
            self._counter(name).inc(value)
        else:
            self._gauge(name).inc(value)

    def set(self, name: str, value: float) -> None:
        """Set a gauge."""
        self._gauge(name).set(value)

    def request(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format 0.0.4."""
        return generate_latest(self.registry)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestMetrics:
    """ASGI wrapper: counts each HTTP request by route and status, and times it.

    Routes are the app's own paths; any other path counts as `other`, so a scanner
    requesting random URLs cannot grow the number of series.
    """

    def __init__(self, app: App, metrics: Metrics, routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        path = str(scope.get("path", ""))
        route = path if path in self.routes else "other"
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(route, status, time.perf_counter() - started)
