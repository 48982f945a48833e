"""A batch of broker messages as validated events: Arrow IPC, or JSON / NDJSON wire events.

Each message is all or nothing (see `decode`); ingest/source.py appends what this keeps
and sends the rest, with the reasons, to the source's rejection subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest.broker import Message, is_arrow, micros
from ingest.ipc import from_ipc
from lake.contract import (
    OUTPUT_SCHEMA,
    READ_AUDIT_TENANT,
    RESERVED_TENANT_MESSAGE,
    UTC_US,
    Issue,
    ValidationError,
    is_valid_tenant,
    parse_json_array,
    parse_jsonl,
    validate,
)
from lake.spec import gc_paused
from lake.write import (
    MAX_MICROS,
    MIN_MICROS,
    TIME_RANGE,
    event_keys,
    first_occurrence,
    same_rows,
    stamp_received,
)

__all__ = ["EVENT_SCHEMA", "Decoded", "decode"]

EVENT_SCHEMA = OUTPUT_SCHEMA.append(pa.field("received_at", UTC_US, nullable=False))


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
        table = from_ipc(m.data)
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
    with gc_paused():
        return _decode(messages, source)


def _decode(messages: Sequence[Message], source: str) -> Decoded:
    bad: dict[int, list[Issue]] = {}
    json_items = []
    parts: list[_Part] = []
    for k, m in enumerate(messages):
        if not is_valid_tenant(m.tenant):
            bad[k] = [Issue(0, "(subject)", f"{m.subject!r} does not end in a valid tenant id")]
        elif m.tenant == READ_AUDIT_TENANT:
            bad[k] = [Issue(0, "(subject)", RESERVED_TENANT_MESSAGE)]
        elif is_arrow(m):
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
