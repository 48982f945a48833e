"""The collector's forwarding mode: JetStream in place of the WAL and batcher.

A stateless HTTP tier: a request's events are published per tenant, as Arrow IPC, to
`<stream>.<tenant>` (the stream's name in lower case), and the answer is 202 only once
JetStream has acknowledged every message (stored in the stream). Nothing is written
locally and the lake is never opened: `auditlake consume` appends. While the broker is
unreachable, requests get 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pyarrow as pa
import pyarrow.compute as pc

from ingest.acceptor import Backlog, CollectorConfig
from ingest.broker import ARROW_STREAM, EVENTS_HEADER
from ingest.ipc import to_ipc
from ingest.jetstream import Connection, redact
from ingest.jsonlog import log
from ingest.metrics import Metrics
from ingest.tokens import TokenStore
from lake.write import stamp_received

__all__ = ["ForwardingCollector"]

HEADER_ROOM = 4096
"""Bytes of a broker message left for its headers."""


class ForwardingCollector:
    """The forwarding acceptor (`ingest.acceptor.Acceptor`): publishes to JetStream.

    Keeps no lake, signing key, WAL or batcher: what it acknowledged is in the stream.
    """

    def __init__(self, config: CollectorConfig) -> None:
        if config.forward_nats is None:
            raise ValueError("a forwarding collector needs config.forward_nats")
        self.config = config
        self.grants = TokenStore(config.home).grants()
        self.metrics = Metrics()
        self.failed: str | None = None
        self.conn = Connection(config.forward_nats, config.forward_stream, on_change=self._on)

    def _on(self, problem: str | None) -> None:
        self.failed = problem

    def start(self) -> None:
        log(event="start", forward=redact(self.conn.url), stream=self.conn.stream)
        if not self.grants:
            log(event="warning", message="no collector tokens: every request will get 401")

    def shutdown(self) -> None:
        self.conn.close()
        log(event="stopped", pending_events=0)

    def refusal(self) -> str | None:
        # Never behind: the broker pushes back (503) rather than our memory filling.
        return self.failed

    def problem(self) -> str | None:
        return self.failed

    def backlog(self) -> Backlog:
        return Backlog()

    @property
    def pending_events(self) -> int:
        return 0  # acknowledged means stored by the broker

    def accept(self, table: pa.Table) -> None:
        """Publish a validated table and wait for JetStream's acknowledgements."""
        started = time.perf_counter()
        table = stamp_received(table)
        limit = self.conn.nc.max_payload - HEADER_ROOM
        messages = []
        for tenant in pc.unique(table.column("tenant")).to_pylist():
            rows = table.filter(pc.equal(table.column("tenant"), tenant))
            messages += [(tenant, part) for part in _split(rows, limit)]
        self.conn.io.run(self._publish(messages))
        self.metrics.add("auditlake_forward_seconds_total", time.perf_counter() - started)
        self.metrics.add("auditlake_forward_messages_total", len(messages))

    async def _publish(self, messages: list[tuple[str, tuple[pa.Table, bytes]]]) -> None:
        async def one(tenant: str, rows: pa.Table, payload: bytes) -> None:
            ids = "\x00".join(rows.column("event_id").to_pylist())
            headers = {
                "Content-Type": ARROW_STREAM,
                EVENTS_HEADER: str(rows.num_rows),
                # A client's retry carries the same ids: JetStream keeps one copy.
                "Nats-Msg-Id": hashlib.sha256(f"{tenant}\x00{ids}".encode()).hexdigest(),
            }
            await self.conn.js.publish(f"{self.conn.prefix}.{tenant}", payload, headers=headers)

        await asyncio.gather(*(one(t, rows, payload) for t, (rows, payload) in messages))


def _split(rows: pa.Table, limit: int) -> list[tuple[pa.Table, bytes]]:
    """Arrow IPC payloads of `rows`, halved until each fits the broker's message size."""
    payload = to_ipc(rows)
    if len(payload) <= limit or rows.num_rows <= 1:
        return [(rows, payload)]
    half = rows.num_rows // 2
    return _split(rows.slice(0, half), limit) + _split(rows.slice(half), limit)
