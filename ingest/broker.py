"""What a broker in front of the lake must offer `auditlake consume`, and its messages.

`Source` is the protocol; ingest/jetstream.py implements it on NATS JetStream. A message
holds JSON / NDJSON wire events from any producer, or Arrow IPC (the collector's
forwarding mode, ingest/forwarder.py); ingest/decode.py turns messages into events and
ingest/source.py is the loop that appends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from lake.contract import Issue, StorageError

__all__ = [
    "ARROW_STREAM",
    "DEFAULT_STREAM",
    "EVENTS_HEADER",
    "BrokerError",
    "Message",
    "Rejection",
    "Source",
    "is_arrow",
    "micros",
]

DEFAULT_STREAM = "AUDIT"
"""The broker's stream when none is named; its subjects are `audit.<tenant>`."""
ARROW_STREAM = "application/vnd.apache.arrow.stream"
EVENTS_HEADER = "Auditlake-Events"  # events in a message, when the producer says (batching)
MAX_ISSUES_KEPT = 50  # per rejected message, in its rejection record
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BrokerError(StorageError):
    """The broker is unreachable, refused a request, or is set up in a way we cannot use.

    A StorageError: for the collector's forwarding mode the broker is where accepted
    events are kept, so the collector answers 503 + Retry-After to it like to any other."""


@dataclass(frozen=True, eq=False)
class Message:
    """One message of a source, in the source's own order."""

    subject: str  # where it was published
    tenant: str  # the tenant its subject names, as named (checked by `decode`)
    position: int  # grows in publication order; recorded in the lake per tenant
    data: bytes
    headers: Mapping[str, str]
    stored_at: datetime  # when the broker stored it: the received_at of its JSON events
    handle: Any = field(default=None, repr=False)  # the broker's own message object


class Source(Protocol):
    """A broker in front of the lake, as `consume` sees it. Methods may raise BrokerError.

    Tenants here are the names subjects give them; the source leases them to one consumer
    at a time and hands out messages only of tenants this consumer holds.
    """

    @property
    def name(self) -> str:
        """Names the position space: positions under one name only ever grow."""
        ...

    def rebalance(self, tenants: frozenset[str] | None) -> tuple[set[str], set[str]]:
        """Take leases of tenants with a backlog (only `tenants`, when given) and give up
        this consumer's share beyond its fair one. Returns (gained, lost) tenants."""
        ...

    def holds(self, tenant: str) -> bool:
        """True while the lease of `tenant` is certainly this consumer's."""
        ...

    def fetch(self, max_messages: int, wait_s: float) -> list[Message]:
        """The next messages of held tenants, each tenant's in position order and without
        holes: a source that lost a delivery gives the tenant up (`holds` turns False)
        rather than hand out what came after it. When fetch raises, it gives up every
        tenant (what it had received is lost)."""
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge: the messages are done and will not come back."""
        ...

    def reject(self, message: Message, issues: Sequence[Issue]) -> None:
        """Keep an invalid message and the reasons somewhere durable (before its ack)."""
        ...

    def release(self, tenant: str) -> None:
        """Give up a tenant; its unacknowledged messages go to its next leaseholder.
        Never raises: `holds` is False at once, and an unreachable broker lets the lease
        expire instead."""
        ...

    def drained(self, tenants: frozenset[str] | None) -> bool:
        """True when the source holds no message of these tenants (None: of any)."""
        ...

    def close(self) -> None:
        """Release every lease and disconnect."""
        ...


def is_arrow(m: Message) -> bool:
    """Whether a message holds Arrow IPC (by its Content-Type, or its first bytes)."""
    kind = m.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return kind == ARROW_STREAM or (not kind and m.data[:4] == b"\xff\xff\xff\xff")


@dataclass(frozen=True)
class Rejection:
    """A rejected message as its rejection record carries it, in the headers beside the
    message as it came: where it came from, and why (the first MAX_ISSUES_KEPT reasons).

    Written by a source (`Source.reject`), read back with `from_headers`.
    """

    subject: str  # where the message was published
    position: int  # its position there
    issues: list[Issue]
    error_count: int  # every reason, kept or not
    payload_dropped: int | None = None  # bytes left out: message and reasons were too big

    @classmethod
    def of(cls, message: Message, issues: Sequence[Issue]) -> Rejection:
        kept = list(issues[:MAX_ISSUES_KEPT])
        return cls(message.subject, message.position, kept, len(issues))

    def headers(self) -> dict[str, str]:
        """The record's headers (Auditlake-*; the first reason also as readable text)."""
        headers = {
            "Auditlake-Subject": self.subject,
            "Auditlake-Position": str(self.position),
            "Auditlake-Error-Count": str(self.error_count),
            "Auditlake-Error": _header_value(str(self.issues[0])),
            "Auditlake-Errors": orjson.dumps([i.as_dict() for i in self.issues]).decode(),
        }
        if self.payload_dropped is not None:
            headers["Auditlake-Payload-Dropped"] = f"{self.payload_dropped} bytes"
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Rejection:
        dropped = headers.get("Auditlake-Payload-Dropped")
        return cls(
            subject=headers["Auditlake-Subject"],
            position=int(headers["Auditlake-Position"]),
            issues=[Issue(**found) for found in orjson.loads(headers["Auditlake-Errors"])],
            error_count=int(headers["Auditlake-Error-Count"]),
            payload_dropped=int(dropped.split()[0]) if dropped else None,
        )


def _header_value(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")[:1000]


def micros(stamp: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, unlike timestamp())."""
    return (stamp - EPOCH) // timedelta(microseconds=1)
