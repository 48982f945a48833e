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

Events are checked with the scalar validator of the wire format (`lake.spec`), held to the
collector's own verdicts by property tests, so an event the SDK accepts is one the
collector accepts.

A client created before `os.fork()` (a pre-forking web server) restarts its sender in
the child; events queued before the fork stay the parent's to deliver.

For batch jobs that run next to the lake, `DirectWriter` and `write_direct` validate and
append straight into a lake with `lake.write.append`, with no collector.

Imports
-------
`import ingest.sdk` loads the standard library and orjson only (no pyarrow, deltalake,
duckdb, polars, numpy, streamlit or textual), so a service that only sends events does not
pay for the lake: `pip install auditlake` is enough for it. `DirectWriter` and
`write_direct` load the lake on first use and need `pip install 'auditlake[lake]'`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.sdk._client import AuditClient, ClientStats
from ingest.sdk._events import (
    ActorType,
    EventHelpers,
    EventOptions,
    InvalidEventError,
    Outcome,
    Severity,
    TimeLike,
    build_event,
    format_time,
    uuid7,
)

if TYPE_CHECKING:
    from ingest.sdk._direct import DirectWriter, write_direct

__all__ = [
    "ActorType",
    "AuditClient",
    "ClientStats",
    "DirectWriter",
    "EventHelpers",
    "EventOptions",
    "InvalidEventError",
    "Outcome",
    "Severity",
    "TimeLike",
    "build_event",
    "format_time",
    "uuid7",
    "write_direct",
]

_DIRECT = frozenset({"DirectWriter", "write_direct"})


def __getattr__(name: str) -> Any:
    """Direct mode on first use: it loads the lake, which a sending service never needs."""
    if name in _DIRECT:
        try:
            from ingest.sdk import _direct
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"ingest.sdk.{name} appends to a lake, which needs the 'lake' extra:"
                f" pip install 'auditlake[lake]' ({exc})",
                name=exc.name,
            ) from exc
        return getattr(_direct, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
