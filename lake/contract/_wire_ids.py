"""Ids for events sent without one, derived from the event's content alone.

The same id-less event must get the same id by every route (a file ingested, then the
same event POSTed; NDJSON, then a JSON array with the event at another position; CSV;
JetStream), or the lake stores it twice. So the id depends on nothing but the validated,
normalised event: its tenant and every stored field as validation leaves them (time in
UTC microseconds, severity defaulted, `details` canonical JSON). Not on the input, its
digest or the event's position.

Layout (RFC 9562 UUIDv8, the version for custom layouts, time-ordered like v7):
bits 0-47 are the Unix milliseconds of the event time (floored; times before 1970 never
pass validation, and are clamped to 0 if they reach here), then the 4 version bits
(8), 12 bits of the content hash, the 2 variant bits (10) and 62 more bits of it. The
hash is SHA-256 over a domain tag and the fields, each written as a 4-byte big-endian
length and its UTF-8 bytes (0xFFFFFFFF for a null), so no two different events encode
alike.

Consequence, by design: two identical id-less events (same tenant, same instant, same
fields) get the same id, and the lake keeps one of them, as it does for a resent id. A
source that may emit two genuinely separate but identical events must send ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract._errors import Issue
from lake.contract._leaf import field_pieces
from lake.contract._schema import LEAF_FIELDS

# The fields an assigned id is derived from: the leaf's fields in the leaf's order, but the
# id itself and the receipt time (a retry arrives later, and must get the same id).
CONTENT_FIELDS = tuple(f for f in LEAF_FIELDS if f not in ("event_id", "received_at"))
DOMAIN = b"auditlake event id v1\x00"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def content_digests(table: pa.Table) -> np.ndarray:
    """SHA-256 of each row's content (CONTENT_FIELDS), as an (n, 32) uint8 matrix."""
    n = table.num_rows
    if n == 0:
        return np.zeros((0, 32), dtype=np.uint8)
    pieces: list[pa.Array] = [pa.array([DOMAIN] * 1, pa.binary()).take(np.zeros(n, np.int64))]
    for name in CONTENT_FIELDS:
        column = table.column(name)
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        pieces += field_pieces(arr, name == "time")
    joined = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.binary()))
    buffers = joined.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=joined.offset * 4)
    data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
    sha = hashlib.sha256
    # The one per-event Python step: a hashlib call on a slice of the joined buffer.
    # content_ids as a whole costs ~1 µs per id-less event (100k demo events: 0.93-1.2
    # µs/event, best of 9 on a shared 2-core machine); events sent with an id never
    # reach it (assign_missing_ids hashes only the rows without one).
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    digests = b"".join([sha(data[a:b]).digest() for a, b in zip(starts, ends, strict=True)])
    return np.frombuffer(digests, dtype=np.uint8).reshape(n, 32)


def content_ids(table: pa.Table) -> pa.StringArray:
    """The assigned id (UUIDv8 text, see the module docstring) of every row of `table`.

    `table` holds validated rows (the columns of `lake.contract.OUTPUT_SCHEMA`).
    """
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    column = table.column("time")
    times = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    ms = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False) // 1000
    ms = np.where(ms < 0, 0, ms).astype(np.uint64)  # clamp before the unsigned cast
    raw = np.zeros((n, 16), dtype=np.uint8)
    for byte in range(6):
        raw[:, byte] = (ms >> np.uint64(8 * (5 - byte))) & np.uint64(0xFF)
    raw[:, 6:16] = content_digests(table)[:, :10]
    raw[:, 6] = 0x80 | (raw[:, 6] & 0x0F)  # version 8
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)  # RFC 9562 variant
    return uuid_text(raw)


def assign_ids(times: pa.TimestampArray, namespace: bytes, start_index: int = 0) -> pa.StringArray:
    """UUIDv7 strings from event times and positions, for generators of synthetic events.

    The 48-bit millisecond field comes from the time; the rest from SHA-256(namespace) and
    the position. Not what validation assigns to id-less events: that id depends on the
    event's content alone (`lake.contract.content_ids`).
    """
    n = len(times)
    if n == 0:
        return pa.array([], pa.string())
    ms = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False) // 1000
    ms = np.where(ms < 0, 0, ms).astype(np.uint64)  # clamp before the unsigned cast
    salt = hashlib.sha256(namespace).digest()
    raw = np.zeros((n, 16), dtype=np.uint8)
    for byte in range(6):
        raw[:, byte] = (ms >> np.uint64(8 * (5 - byte))) & np.uint64(0xFF)
    raw[:, 6:12] = np.frombuffer(salt[:6], dtype=np.uint8)
    idx = np.arange(start_index, start_index + n, dtype=np.uint64)
    for byte in range(4):
        raw[:, 12 + byte] = (idx >> np.uint64(8 * (3 - byte))) & np.uint64(0xFF)
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)  # version 7
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)  # RFC 9562 variant
    return uuid_text(raw)


def uuid_text(raw: np.ndarray) -> pa.StringArray:
    """(n, 16) uint8 UUID bytes → their canonical lower-case text, columnar."""
    n = len(raw)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = _HEX[raw >> 4]
    nibbles[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        text[:, dst : dst + width] = nibbles[:, src : src + width]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def assign_missing_ids(table: pa.Table) -> pa.Table:
    """Fill in `event_id` where an event came without one, from its content alone.

    See the module docstring: the same event gets the same id whatever the input, its
    format or the event's position in it; two identical id-less events get one id.
    """
    ids = table.column("event_id").combine_chunks()
    if not ids.null_count:
        return table
    missing = pc.is_null(ids)
    if ids.null_count == len(ids):
        assigned = content_ids(table)
    else:
        need = table.filter(missing)
        assigned = pc.replace_with_mask(ids, missing, content_ids(need))
    ids = pc.coalesce(ids, assigned)
    return table.set_column(table.schema.get_field_index("event_id"), "event_id", ids)


def reject_duplicate_ids(
    table: pa.Table,
    positions: np.ndarray,
    lines: Sequence[int] | None,
    offset: int = 0,
    assigned: np.ndarray | None = None,
) -> tuple[pa.Table, list[Issue], list[int]]:
    """Two events of one tenant in one input may not share an id.

    A repeat whose id was assigned, of an event whose id was assigned too, is the same
    event sent twice (the id is a hash of the content): it is dropped, not rejected, and
    its position returned. Every other repeat is an issue.
    """
    if table.num_rows < 2:
        return table, [], []
    keys = pc.binary_join_element_wise(
        table.column("tenant"), table.column("event_id"), pa.scalar("\x00", pa.string())
    )
    counts = pc.value_counts(keys)
    if pc.max(counts.field("counts")).as_py() <= 1:
        return table, [], []
    seen: dict[str, int] = {}
    drop = np.zeros(table.num_rows, dtype=bool)
    dup: list[Issue] = []
    dropped: list[int] = []
    for row, key in enumerate(keys.to_pylist()):
        if key not in seen:
            seen[key] = row
            continue
        drop[row] = True
        index = int(positions[row])
        if assigned is not None and assigned[row] and assigned[seen[key]]:
            dropped.append(index)
            continue
        dup.append(
            Issue(
                index,
                "id",
                f"duplicate id {key.split(chr(0))[1]!r}: event "
                f"{int(positions[seen[key]]) + offset} "
                "of this input already uses it",
                line=lines[index] if lines else None,
            )
        )
    return table.filter(pa.array(~drop)), dup, dropped
