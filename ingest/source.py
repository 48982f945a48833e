"""Streaming sources in front of the lake: what a broker must offer, and the loop that drains one.

`auditlake consume` appends events that producers published to a broker. This module is
the broker-neutral half; ingest/jetstream.py is the NATS JetStream half.

* `Source`: the protocol a broker implements. Per-tenant leases (one sequencer per tenant
  at a time), messages fetched in publication order with their positions, acknowledgement,
  and a durable place for rejected messages.
* `decode`: a batch of messages → validated events. Arrow IPC (the collector's forwarding
  mode) or JSON / NDJSON wire events from any producer, validated by `lake.contract`.
* `consume`: the loop. Gather a batch by size or age, append it with the source positions
  in the same Delta commit, `os.sync`, and only then acknowledge.

Exactly once into the lake
--------------------------
A message is acknowledged only once the commit that holds its events is on disk. Each
commit also records, per tenant, the highest position it covers
(`lake.write.source_app_id`), so a message delivered again after a crash, at or below
that position, is acknowledged without being appended. The lake's (tenant, id)
deduplication is the second line of defence: an event sent without an id gets one
derived from its content alone (`lake.contract`), so a redelivery, or the same event by
another route, yields the same id.

Skipping by position is sound only if each tenant's messages are committed in position
order, with none missing. The source and this loop guarantee it together: the one
leaseholder of a tenant reads from the tenant's oldest unacknowledged message on, one
batch at a time; a batch it cannot commit under its lease, or a delivery that went astray
(a reconnect loses what was in flight), makes it give up the tenant, never skip ahead.
The benchmark found that last case: without it, a dropped connection lost events.

A leaseholder that lost its lease without noticing (a long pause) may still commit the
batch in hand: the lake's per-tenant sequencer keeps the log from forking, and
deduplication keeps each event once.

There is no "nak": a message left unacknowledged goes to the tenant's next leaseholder in
order, which is what a redelivery must preserve.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest.collector import log
from lake.contract import (
    OUTPUT_SCHEMA,
    READ_AUDIT_TENANT,
    RESERVED_TENANT_MESSAGE,
    UTC_US,
    Issue,
    LakeError,
    StorageError,
    ValidationError,
    is_valid_tenant,
    parse_json_array,
    parse_jsonl,
    validate,
)
from lake.log import NoteSigner
from lake.storage import Lake
from lake.write import (
    MAX_MICROS,
    MIN_MICROS,
    TIME_RANGE,
    append,
    event_keys,
    first_occurrence,
    same_rows,
    seal,
    source_app_id,
    source_position,
    stamp_received,
)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
EVENTS_HEADER = "Auditlake-Events"  # events in a message, when the producer says (batching)
EVENT_SCHEMA = OUTPUT_SCHEMA.append(pa.field("received_at", UTC_US, nullable=False))
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


# -- decoding -------------------------------------------------------------------------------


@dataclass
class Decoded:
    """A batch of messages as events, plus what was wrong with the rest."""

    events: pa.Table  # EVENT_SCHEMA; an id twice only if the contents differ (a conflict)
    rejected: list[tuple[Message, list[Issue]]] = field(default_factory=list)
    repeats: int = 0  # events dropped because an earlier message of the batch had them
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # message per row
    local: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # index in it


@dataclass
class _Part:
    """Events of some messages, with the message (index into the batch) of each row."""

    table: pa.Table  # OUTPUT_SCHEMA, or EVENT_SCHEMA for Arrow messages
    owner: np.ndarray  # message index per row
    local: np.ndarray  # index of the row's event within its message


def _is_arrow(m: Message) -> bool:
    kind = m.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return kind == ARROW_STREAM or (not kind and m.data[:4] == b"\xff\xff\xff\xff")


def _parse_json(m: Message) -> tuple[list[Any], list[int] | None, list[Issue]]:
    """Records of a JSON message: an array, one object (even pretty-printed), or NDJSON."""
    head = m.data.lstrip()[:1]
    if head == b"[":
        return parse_json_array(m.data), None, []
    records, lines, issues = parse_jsonl(m.data)
    if issues and head == b"{":
        try:
            doc = orjson.loads(m.data)
        except orjson.JSONDecodeError:
            return records, lines, issues
        return [doc], None, []
    return records, lines, issues


def _validate_json(
    items: list[tuple[int, list[Any], list[int] | None, list[Issue]]],
    messages: Sequence[Message],
    source: str,
    bad: dict[int, list[Issue]],
) -> _Part | None:
    """Validate the records of several messages in one call (a call costs ~1 ms); events
    sent without an id get the id their content determines (as on every route)."""
    if not items:
        return None
    records: list[Any] = []
    lines: list[int] | None = [] if all(lns is not None for _, _, lns, _ in items) else None
    pre: list[Issue] = []
    owners, starts = [], []
    for k, recs, lns, issues in items:
        starts.append(len(records))
        owners.append(k)
        pre += [Issue(i.index + len(records), i.field, i.message, i.line) for i in issues]
        records += recs
        if lines is not None and lns is not None:
            lines += lns
    counts = np.diff([*starts, len(records)])
    owner = np.repeat(np.array(owners, dtype=np.int64), counts)
    local = np.arange(len(records)) - np.repeat(np.array(starts, dtype=np.int64), counts)
    result = validate(records, namespace=b"", lines=lines, pre_issues=pre, check_ids=False)
    for r in result.rejected:
        k, base = int(owner[r.index]), int(r.index - local[r.index])
        bad.setdefault(k, []).extend(
            Issue(i.index - base, i.field, i.message, i.line) for i in r.issues
        )
    rows = result.positions if result.positions is not None else np.zeros(0, np.int64)
    return _Part(result.table, owner[rows], local[rows])


def _read_arrow(m: Message) -> tuple[pa.Table | None, str]:
    """An Arrow IPC message as EVENT_SCHEMA rows, or the reason it is not one."""
    try:
        table = pa.ipc.open_stream(pa.BufferReader(m.data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        return None, f"not a readable Arrow IPC stream ({exc})"
    table = stamp_received(table, m.stored_at)
    missing = [n for n in EVENT_SCHEMA.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in EVENT_SCHEMA.names]
    if missing or extra:
        return None, f"columns differ from the event schema (missing {missing}, unknown {extra})"
    try:
        table = table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        return None, f"column types differ from the event schema ({exc})"
    return table, ""


def decode(messages: Sequence[Message], source: str) -> Decoded:
    """Validate a batch of messages into events; each message is all or nothing.

    A message is rejected, with every reason, when its subject names no valid tenant,
    when it cannot be read, when any of its events is invalid or belongs to a tenant other
    than its subject's (subject permissions are then the tenant binding), or when two of
    its events share an id. An event repeated in a later message of the batch is dropped.
    """
    # The parsed events of all messages stay alive until validated: with the cyclic GC on,
    # its collections walk them again and again (0.8 s of 3.2 s per 100k events, measured).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode(messages, source)
    finally:
        if enabled:
            gc.enable()


def _decode(messages: Sequence[Message], source: str) -> Decoded:
    bad: dict[int, list[Issue]] = {}
    json_items = []
    parts: list[_Part] = []
    for k, m in enumerate(messages):
        if not is_valid_tenant(m.tenant):
            bad[k] = [Issue(0, "(subject)", f"{m.subject!r} does not end in a valid tenant id")]
        elif m.tenant == READ_AUDIT_TENANT:
            bad[k] = [Issue(0, "(subject)", RESERVED_TENANT_MESSAGE)]
        elif _is_arrow(m):
            table, reason = _read_arrow(m)
            if table is None:
                bad[k] = [Issue(0, "(message)", reason)]
            else:
                n = table.num_rows
                parts.append(_Part(table, np.full(n, k), np.arange(n)))
        else:
            try:
                records, lines, issues = _parse_json(m)
            except ValidationError as exc:
                bad[k] = list(exc.issues)
                continue
            if records:
                json_items.append((k, records, lines, issues))
            else:
                bad[k] = [Issue(0, "(message)", "holds no events")]
    stamps = np.array([micros(m.stored_at) for m in messages], dtype=np.int64)
    # NDJSON apart from the rest, so that issues carry line numbers whatever the batch.
    for with_lines in (True, False):
        group = [item for item in json_items if (item[2] is not None) == with_lines]
        validated = _validate_json(group, messages, source, bad)
        if validated is not None:
            received = pa.array(stamps[validated.owner], pa.int64()).cast(UTC_US)
            table = validated.table.append_column("received_at", received)
            parts.append(_Part(table, validated.owner, validated.local))
    if not parts:
        return Decoded(EVENT_SCHEMA.empty_table(), _rejections(messages, bad))
    table = pa.concat_tables([p.table.cast(EVENT_SCHEMA) for p in parts])
    owner = np.concatenate([p.owner for p in parts])
    local = np.concatenate([p.local for p in parts])
    # Message order (each tenant's publication order), whatever kind each message was:
    # it becomes the order of seq in the tenant's log.
    order = np.lexsort((local, owner))
    if not np.array_equal(order, np.arange(len(order))):
        table, owner, local = table.take(pa.array(order)), owner[order], local[order]
    _check_rows(table, owner, local, messages, bad)
    keep = ~np.isin(owner, np.fromiter(bad, np.int64, len(bad)))
    table, owner, local = table.filter(pa.array(keep)), owner[keep], local[keep]
    again = _repeats(table)
    if again.any():
        table, owner, local = table.filter(pa.array(~again)), owner[~again], local[~again]
    return Decoded(table, _rejections(messages, bad), int(again.sum()), owner, local)


def micros(stamp: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, unlike timestamp())."""
    return (stamp - EPOCH) // timedelta(microseconds=1)


def _check_rows(
    table: pa.Table,
    owner: np.ndarray,
    local: np.ndarray,
    messages: Sequence[Message],
    bad: dict[int, list[Issue]],
) -> None:
    """Tenant = the subject's, no nulls where Arrow producers might leave them, the date
    partition = the date of `time`, and no id twice within one message (the wire
    contract's rule for one input). Arrow IPC comes from collectors, which validated its
    values; whoever may publish to the stream is trusted as much as a collector."""
    expected = pa.array([m.tenant for m in messages], pa.string()).take(pa.array(owner))
    wrong = pc.fill_null(pc.not_equal(table.column("tenant"), expected), True)
    for r in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)).tolist():
        k = int(owner[r])
        tenant = table.column("tenant")[r].as_py()
        message = f"{tenant!r} is not the tenant of subject {messages[k].subject!r}"
        bad.setdefault(k, []).append(Issue(int(local[r]), "tenant", message))
    for name in ("event_id", "time", "received_at"):
        nulls = table.column(name).is_null().to_numpy(zero_copy_only=False)
        for r in np.flatnonzero(nulls).tolist():
            bad.setdefault(int(owner[r]), []).append(Issue(int(local[r]), name, "is missing"))
    for name in ("time", "received_at"):
        # What the lake cannot hold: refused here, or append would refuse the whole batch
        # again on every retry.
        micros = pc.cast(table.column(name), pa.int64())
        outside = pc.or_(pc.less(micros, MIN_MICROS), pc.greater(micros, MAX_MICROS))
        for r in np.flatnonzero(
            pc.fill_null(outside, False).to_numpy(zero_copy_only=False)
        ).tolist():
            bad.setdefault(int(owner[r]), []).append(Issue(int(local[r]), name, TIME_RANGE))
    day = pc.cast(table.column("time"), pa.date32())
    wrong = pc.fill_null(pc.not_equal(table.column("event_date"), day), True)
    for r in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)).tolist():
        issue = Issue(int(local[r]), "event_date", "is not the UTC date of time")
        bad.setdefault(int(owner[r]), []).append(issue)
    keys = _keys(table)
    if table.num_rows < 2 or pc.max(pc.value_counts(keys).field("counts")).as_py() <= 1:
        return
    first: dict[tuple[int, str], int] = {}
    for row, (k, key) in enumerate(zip(owner.tolist(), keys.to_pylist(), strict=True)):
        if (k, key) in first:
            event_id = key.split("\x00", 1)[1]
            other = int(local[first[(k, key)]])
            message = f"duplicate id {event_id!r}: event {other} of this message already uses it"
            bad.setdefault(k, []).append(Issue(int(local[row]), "id", message))
        else:
            first[(k, key)] = row


def _keys(table: pa.Table) -> pa.Array:
    sep = pa.scalar("\x00", pa.string())
    joined = pc.binary_join_element_wise(table.column("tenant"), table.column("event_id"), sep)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _repeats(table: pa.Table) -> np.ndarray:
    """Rows repeating an earlier row of the batch, content and all (`received_at` aside).

    A repeat with other content stays: append rejects it as a conflict (lake/write/_unique.py).
    """
    first = first_occurrence(event_keys(table))
    again = np.flatnonzero(first != np.arange(table.num_rows))
    out = np.zeros(table.num_rows, dtype=bool)
    out[again] = same_rows(table, again, table, first[again])
    return out


def _rejections(
    messages: Sequence[Message], bad: dict[int, list[Issue]]
) -> list[tuple[Message, list[Issue]]]:
    return [(messages[k], sorted(found, key=lambda i: i.index)) for k, found in sorted(bad.items())]


def issues_json(issues: Sequence[Issue]) -> bytes:
    """The reasons of a rejection as JSON (the first MAX_ISSUES_KEPT), for its record."""
    return orjson.dumps([i.as_dict() for i in issues[:MAX_ISSUES_KEPT]])


# -- the loop -------------------------------------------------------------------------------


@dataclass
class ConsumeSettings:
    """How `consume` batches; defaults sized like the collector's."""

    batch_events: int = 50_000
    batch_age_s: float = 1.0
    max_fetch: int = 10_000  # messages asked for in one fetch round
    rebalance_s: float = 1.0  # how often leases are reconsidered between batches
    once: bool = False  # stop when the source holds nothing more for these tenants
    tenants: frozenset[str] | None = None


@dataclass
class ConsumeTotals:
    """What a `consume` run did."""

    messages: int = 0
    batches: int = 0
    appended: int = 0
    duplicates: int = 0  # events already in the lake, or repeated within a batch
    skipped: int = 0  # messages at or below the recorded position (delivered again)
    rejected: int = 0  # messages kept in the rejection subject
    conflicts: int = 0  # events under another event's id, kept there with their message

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _test_hook(point: str) -> None:
    """Die (AUDITLAKE_CRASH_AT) or stop until SIGCONT (AUDITLAKE_PAUSE_AT, once) here.

    Lets the tests crash or freeze a real consumer between its checks and its commit.
    """
    if os.environ.get("AUDITLAKE_CRASH_AT") == point:
        os._exit(86)
    if os.environ.get("AUDITLAKE_PAUSE_AT") == point:
        del os.environ["AUDITLAKE_PAUSE_AT"]
        os.kill(os.getpid(), signal.SIGSTOP)


def _events_in(m: Message) -> int:
    declared = m.headers.get(EVENTS_HEADER, "")
    if declared.isdigit():
        return int(declared)
    return 1 if _is_arrow(m) else max(1, m.data.count(b"\n"))


def _gather(source: Source, settings: ConsumeSettings, stop: threading.Event) -> list[Message]:
    """Messages until the batch is big or old enough (or nothing came for rebalance_s)."""
    batch: list[Message] = []
    events = 0
    began = time.monotonic()
    first: float | None = None
    while not stop.is_set() and events < settings.batch_events:
        now = time.monotonic()
        if first is None:
            if now - began >= settings.rebalance_s:
                break
            wait = min(settings.rebalance_s, 0.5)
        else:
            left = first + settings.batch_age_s - now
            if left <= 0:
                break
            wait = min(left, 0.25)
        got = source.fetch(settings.max_fetch, max(wait, 0.01))
        if got:
            first = first if first is not None else time.monotonic()
            batch += got
            events += sum(_events_in(m) for m in got)
    return batch


def consume(
    lake: Lake,
    signer: NoteSigner,
    source: Source,
    settings: ConsumeSettings,
    stop: threading.Event,
) -> ConsumeTotals:
    """Move events from `source` into the lake until `stop` is set (or, `once`, drained).

    The batch in hand when `stop` is set is still committed and acknowledged.
    """
    totals = ConsumeTotals()
    positions: dict[str, int] = {}
    sealed = seal(lake, signer, settings.tenants or lake.tenants())
    log(event="start", source=source.name, sealed_on_start=[r.tenant for r in sealed])
    next_rebalance = 0.0
    pause = 0.1
    while not stop.is_set():
        try:
            if time.monotonic() >= next_rebalance:
                gained, lost = source.rebalance(settings.tenants)
                for t in lost:
                    positions.pop(t, None)
                if gained:
                    # Read once the lease is ours (only a stale holder could still advance
                    # it; deduplication covers that). A tenant without one skips nothing.
                    table = lake.events_table()
                    positions.update(
                        {t: source_position(table, source.name, t) for t in gained
                         if is_valid_tenant(t)}
                    )  # fmt: skip
                next_rebalance = time.monotonic() + settings.rebalance_s
            batch = _gather(source, settings, stop)
            done = not batch and settings.once and source.drained(settings.tenants)
        except LakeError as exc:
            # E.g. the broker restarting (its client reconnects). A failed fetch gave up
            # every tenant, so nothing in hand is lost: it goes to the next holder.
            log(event="source_error", error=str(exc), retry_in_s=pause)
            stop.wait(pause)
            pause = min(pause * 2, 5.0)
            next_rebalance = 0.0
            continue
        pause = 0.1
        if done:
            break
        if batch:
            # Raises only when stopping with a batch it could not commit (left unacknowledged).
            _commit(lake, signer, source, batch, positions, totals, stop)
    log(event="stop", **totals.as_dict())
    return totals


def _reject_conflicts(
    source: Source, messages: Sequence[Message], decoded: Decoded
) -> Callable[[list[Issue]], None]:
    """What append calls with the events whose id another event of the tenant has: each
    goes to the rejection subject with its message, before the commit (the message's
    other events are appended; sent again, they are retries and skipped)."""

    def reject(issues: list[Issue]) -> None:
        by_message: dict[int, list[Issue]] = {}
        for issue in issues:
            k = int(decoded.owner[issue.index])
            local = int(decoded.local[issue.index])
            by_message.setdefault(k, []).append(Issue(local, issue.field, issue.message))
        for k, found in sorted(by_message.items()):
            m = messages[k]
            source.reject(m, found)
            log(event="rejected", subject=m.subject, position=m.position, issues=len(found),
                fields=["id"])  # fmt: skip

    return reject


def _commit(
    lake: Lake,
    signer: NoteSigner,
    source: Source,
    batch: list[Message],
    positions: dict[str, int],
    totals: ConsumeTotals,
    stop: threading.Event,
) -> None:
    """Commit a batch, then acknowledge it; retry until done, or until its leases go."""
    decoded: Decoded | None = None
    pause = 0.1
    while True:
        lost = {m.tenant for m in batch if not source.holds(m.tenant)}
        if lost:
            # Not ours any more (or not certainly): leave these messages to the next holder.
            log(event="lease_lost", tenants=sorted(lost),
                messages=sum(m.tenant in lost for m in batch))  # fmt: skip
            for t in lost:
                source.release(t)
                positions.pop(t, None)
            batch = [m for m in batch if m.tenant not in lost]
            decoded = None
        if not batch:
            return
        fresh = [m for m in batch if m.position > positions.get(m.tenant, 0)]
        if decoded is None:
            decoded = decode(fresh, source.name)
        top: dict[str, int] = {}
        for m in fresh:
            top[m.tenant] = max(top.get(m.tenant, 0), m.position)
        marks = {source_app_id(source.name, t): p for t, p in top.items() if is_valid_tenant(t)}
        _test_hook("consume-before-commit")
        started = time.perf_counter()
        try:
            for m, issues in decoded.rejected:
                source.reject(m, issues)
            result = None
            if decoded.events.num_rows:
                result = append(
                    lake,
                    decoded.events,
                    signer,
                    source_positions=marks,
                    on_conflict=_reject_conflicts(source, fresh, decoded),
                )
                # delta-rs does not fsync: the events are on disk before the broker forgets them.
                os.sync()
            source.ack(batch)
        except (LakeError, OSError) as exc:
            if stop.is_set():
                # Shutting down with a batch we cannot commit: leave it to the next holder.
                for t in {m.tenant for m in batch}:
                    source.release(t)
                raise
            log(event="commit_failed", error=str(exc), retry_in_s=pause)
            stop.wait(pause)
            pause = min(pause * 2, 5.0)
            continue
        for m in fresh:
            if m.tenant in positions:
                positions[m.tenant] = max(positions[m.tenant], m.position)
        for m, issues in decoded.rejected:
            log(event="rejected", subject=m.subject, position=m.position, issues=len(issues),
                fields=sorted({i.field for i in issues}))  # fmt: skip
        totals.messages += len(batch)
        totals.batches += 1
        totals.skipped += len(batch) - len(fresh)
        totals.rejected += len(decoded.rejected)
        totals.appended += result.appended if result else 0
        totals.conflicts += result.conflicts if result else 0
        totals.duplicates += decoded.repeats + (result.duplicates if result else 0)
        log(
            event="commit",
            batch_id=result.batch_id if result else None,
            messages=len(batch),
            events=result.appended if result else 0,
            duplicates=decoded.repeats + (result.duplicates if result else 0),
            skipped=len(batch) - len(fresh),
            rejected=len(decoded.rejected),
            seconds=round(time.perf_counter() - started, 4),
        )
        return
