"""What the collector's HTTP side needs from whatever accepts events, and its settings.

ingest/collector_app.py serves requests against an `Acceptor`. Two implementations:

* `ingest.collector.Collector`: validated events go to a write-ahead log (fsync'd before
  the 202) and a batcher commits them to the lake;
* `ingest.forwarder.ForwardingCollector`: validated events are published to NATS
  JetStream (acknowledged by the broker before the 202); `auditlake consume` appends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from ingest.batching import BATCH_AGE_S, BATCH_EVENTS
from ingest.broker import DEFAULT_STREAM
from ingest.connections import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS
from ingest.metrics import Metrics
from ingest.tokens import TokenGrant

__all__ = ["Acceptor", "Backlog", "CollectorConfig"]

BEHIND = "the collector is behind; retry later"
"""Why a request gets 503 while the acceptor holds as many events as it may."""


@dataclass
class CollectorConfig:
    """Limits and batching; defaults sized for one 2-core machine."""

    lake_path: str
    home: Path
    wal_dir: Path
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 10_000
    batch_events: int = BATCH_EVENTS
    batch_age_s: float = BATCH_AGE_S
    max_pending_events: int = 500_000  # beyond this: 503 + Retry-After (bounded memory)
    body_timeout_s: float = BODY_TIMEOUT_S
    fsync: bool = True
    # Validation is CPU-bound Python: processes, not threads, use both cores (0 = in-process).
    validate_workers: int = 0
    # Publish to this NATS JetStream instead of the WAL and lake (ingest/forwarder.py).
    forward_nats: str | None = None
    forward_stream: str = DEFAULT_STREAM
    # Open connections at most (below the descriptor limit), and how long a connection may
    # take to send a request's headers (ingest/connections.py).
    max_connections: int = MAX_CONNECTIONS
    header_timeout_s: float = HEADER_TIMEOUT_S
    # How long shutdown keeps trying to commit what is pending before it gives up (the
    # rest stays in the WAL and replays on the next start).
    drain_timeout_s: float = 30.0


@dataclass(frozen=True)
class Backlog:
    """What an acceptor holds that is not in the lake yet: for health and /metrics."""

    wal_records: int = 0
    wal_bytes: int = 0
    pending_events: int = 0
    quarantine_files: int | None = None  # None: this acceptor keeps no quarantine


class Acceptor(Protocol):
    """Takes validated events for the HTTP app; the app answers 202 once `accept` returns."""

    config: CollectorConfig
    metrics: Metrics

    @property
    def grants(self) -> Mapping[str, TokenGrant]:
        """Token hash -> grant: who may send events of which tenants."""
        ...

    def start(self) -> None:
        """Get ready to accept (replay, connect ...); called before the first request."""
        ...

    def refusal(self) -> str | None:
        """Why requests get 503 + Retry-After now (failing, or behind), or None."""
        ...

    def accept(self, table: pa.Table) -> None:
        """Keep validated events durably (blocks until they are).

        Raises:
            StorageError: nothing was kept (a full disk, a broker away): 503 + Retry-After.
        """
        ...

    def problem(self) -> str | None:
        """Why health is failing, or None (may look at the disk: call off the event loop)."""
        ...

    def backlog(self) -> Backlog:
        """What is held and not yet in the lake."""
        ...

    @property
    def pending_events(self) -> int:
        """Events acknowledged and not yet committed to the lake."""
        ...

    def shutdown(self) -> None:
        """Stop accepting and settle what is pending, within the config's drain timeout."""
        ...
