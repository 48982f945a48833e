"""The reference validator: every problem of every event, named, derived from `lake.spec`.

It pulls each field out with C-level comprehensions and checks whole columns with Arrow
kernels; where a column fails, it walks that column event by event so that every
rejection names the event (index), the field and the reason. The rules and messages are
those the wire format declares (`lake.spec.TOP_FIELDS`, `OBJECT_FIELDS`); the fast path
(`_wire_fast`) and the scalar `lake.spec.check_event` are held to its output by property
tests (tests/lake/test_wire.py, test_check_event.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract._errors import Issue
from lake.contract._schema import EVENTS_SCHEMA, UTC_US
from lake.contract._wire_parse import Unparsed
from lake.spec import (
    DETAILS,
    EMPTY_MESSAGE,
    LONG_FRACTION_PATTERN,
    MAX_STRING_BYTES,
    MICRO_CUT_PATTERN,
    OBJECT_FIELDS,
    REQUIRED_MESSAGE,
    SUBMICRO_MESSAGE,
    SUBMICRO_PATTERN,
    TIME,
    TIME_PATTERN,
    TIME_SHAPE_MESSAGE,
    TIME_VALUE_MESSAGE,
    TOO_LONG_MESSAGE,
    TOP_FIELDS,
    UNKNOWN_MESSAGE,
    WIRE_KEYS,
    ObjectField,
    TextField,
    TimeWindow,
    canonical_details,
    enum_message,
    expected_message,
    shorten,
    string_problem,
)

# The stored columns that validation produces: all but those set when appending.
OUTPUT_SCHEMA = pa.schema(
    [
        EVENTS_SCHEMA.field(name)
        for name in EVENTS_SCHEMA.names
        if name not in ("received_at", "seq", "batch_id", "leaf_hash")
    ]
)
_RELAXED = pa.schema([f.with_nullable(True) for f in OUTPUT_SCHEMA])
# Every top-level value of an event, in this order, pulled out in one pass.
ROW_FIELDS = (*(f.path for f in TOP_FIELDS), *(o.name for o in OBJECT_FIELDS), DETAILS)
ORJSON_SORTED = functools.partial(orjson.dumps, option=orjson.OPT_SORT_KEYS)


class Collector:
    """Accumulates issues per event index."""

    def __init__(self, lines: Sequence[int] | None) -> None:
        self.by_index: dict[int, list[Issue]] = {}
        self.lines = lines

    def add(self, index: int, fieldname: str, message: str) -> None:
        line = self.lines[index] if self.lines is not None else None
        self.by_index.setdefault(index, []).append(Issue(index, fieldname, message, line=line))

    def add_issue(self, issue: Issue) -> None:
        self.by_index.setdefault(issue.index, []).append(issue)

    def fields(self, index: int) -> set[str]:
        return {issue.field for issue in self.by_index.get(index, [])}

    def bad_mask(self, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        if self.by_index:
            mask[np.fromiter(self.by_index.keys(), dtype=np.int64)] = True
        return mask


def true_positions(mask: pa.Array | pa.ChunkedArray) -> list[int]:
    if not pc.any(mask).as_py():
        return []
    return [int(i) for i in np.flatnonzero(mask.to_numpy(zero_copy_only=False))]


def any_true(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def build(columns: dict[str, pa.Array]) -> pa.Table:
    """The table of OUTPUT_SCHEMA's columns (nullable until `finish`), by stored name."""
    columns = {**columns, "event_date": pc.cast(columns["time"], pa.date32())}
    return pa.Table.from_arrays([columns[name] for name in _RELAXED.names], schema=_RELAXED)


def finish(table: pa.Table) -> pa.Table:
    """Cast a validated table to the strict OUTPUT_SCHEMA (non-null where required)."""
    return table.cast(OUTPUT_SCHEMA)


def string_column(
    values: Sequence[Any], name: str, issues: Collector, *, required: bool
) -> pa.StringArray:
    """Check a column is strings (or null where allowed) and return it as Arrow.

    Arrow's conversion does the type check in C; only when it refuses a value do we walk
    the column in Python to name each offending event.
    """
    wrong: set[int] = set()
    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError, UnicodeEncodeError):
        clean: list[str | None] = []
        for i, v in enumerate(values):
            problem = string_problem(v)
            if problem is not None:
                issues.add(i, name, problem)
                wrong.add(i)
            clean.append(None if problem is not None else v)
        arr = pa.array(clean, type=pa.string())
    if required and arr.null_count:
        for i in true_positions(pc.is_null(arr)):
            if i not in wrong:
                issues.add(i, name, REQUIRED_MESSAGE)
    _check_lengths(arr, name, issues)
    return arr


def _check_lengths(arr: pa.StringArray, name: str, issues: Collector) -> None:
    buffers = arr.buffers()
    if len(buffers) == 3 and (buffers[2] is None or buffers[2].size <= MAX_STRING_BYTES):
        return  # all values together fit the limit, so each one does: no kernels needed
    too_long = pc.fill_null(pc.greater(pc.binary_length(arr), MAX_STRING_BYTES), False)
    for i in true_positions(too_long):
        issues.add(i, name, TOO_LONG_MESSAGE.format(limit=MAX_STRING_BYTES))


def check_values(
    arr: pa.StringArray, spec: TextField, issues: Collector, reserved_ok: bool
) -> None:
    """The value rules of a string field but time's: pattern, enum, non-empty, reserved."""
    if spec.pattern is not None and not spec.is_time:
        ok = pc.match_substring_regex(arr, spec.pattern)
        bad = pc.and_(pc.is_valid(arr), pc.invert(pc.fill_null(ok, False)))
        for i in true_positions(bad):
            issues.add(i, spec.path, spec.message.format(value=shorten(arr[i].as_py())))
    if spec.allowed:
        ok = pc.is_in(arr, value_set=pa.array(spec.allowed, pa.string()))
        for i in true_positions(pc.and_(pc.is_valid(arr), pc.invert(ok))):
            issues.add(i, spec.path, enum_message(arr[i].as_py(), spec.allowed))
    if spec.nonempty:
        for i in true_positions(pc.fill_null(pc.equal(arr, ""), False)):
            issues.add(i, spec.path, EMPTY_MESSAGE)
    if spec.reserved is not None and not reserved_ok:
        for i in true_positions(pc.fill_null(pc.equal(arr, spec.reserved), False)):
            issues.add(i, spec.path, spec.reserved_message)


def _object_column(
    values: Sequence[Any], spec: ObjectField, issues: Collector
) -> tuple[list[Any], dict[str, Sequence[Any]]]:
    """Pull an object field (actor/target) apart into its members, in one pass."""
    name, keys = spec.name, spec.keys
    if not set(map(type, values)) <= {dict, type(None)}:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, dict):
                issues.add(i, name, expected_message("an object", v))
    objs: list[Any] = [v if isinstance(v, dict) else None for v in values]
    known = frozenset(keys)
    empty = (*(None for _ in keys), True)
    # One pass per object column: each pass over scattered dicts costs a cache miss per
    # event, so members and the unknown-key check are taken together (measured 3x).
    rows = [(*map(v.get, keys), known.issuperset(v)) if v is not None else empty for v in objs]
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in empty]
    if not all(cols[-1]):
        for i, v in enumerate(objs):
            if v is not None:
                for key in sorted(set(v) - known):
                    issues.add(i, f"{name}.{key}", UNKNOWN_MESSAGE)
    return objs, dict(zip(keys, cols[:-1], strict=True))


def canonical_column(values: Sequence[Any], issues: Collector) -> pa.StringArray:
    """Canonical JSON of each `details` object: sorted keys, compact, UTF-8, ≤ 16 KiB."""
    out: list[str | None] = []
    append = out.append
    for i, v in enumerate(values):
        text, problem = canonical_details(v, ORJSON_SORTED)
        if problem is not None:
            issues.add(i, *problem)
        append(text)
    return pa.array(out, type=pa.string())


def parse_times(arr: pa.StringArray, issues: Collector, window: TimeWindow) -> pa.TimestampArray:
    """RFC 3339 strings with offsets → timestamp[us, UTC]; bad values are reported, not guessed.

    Instants outside `window` (before 1970, too far ahead) are reported too.
    """
    times = _parse_time_values(arr, issues)
    micros = pc.cast(times, pa.int64())
    outside = pc.or_(pc.less(micros, window.earliest_us), pc.greater(micros, window.latest_us))
    for i in true_positions(pc.fill_null(outside, False)):
        problem = window.problem(micros[i].as_py(), shorten(arr[i].as_py()))
        if problem is not None:
            issues.add(i, TIME.path, problem)
    return times


def _parse_time_values(arr: pa.StringArray, issues: Collector) -> pa.TimestampArray:
    well_formed = pc.fill_null(pc.match_substring_regex(arr, TIME_PATTERN), False)
    malformed = true_positions(pc.and_(pc.is_valid(arr), pc.invert(well_formed)))
    for i in malformed:
        issues.add(i, TIME.path, TIME_SHAPE_MESSAGE.format(value=shorten(arr[i].as_py())))
    # Digits past microseconds are rare, and the regexes that handle them cost more than
    # the rest together: run them only where a fraction has seven digits or more.
    text = pc.if_else(well_formed, arr, pa.scalar(None, pa.string())) if malformed else arr
    long_fraction = pc.and_(well_formed, pc.match_substring_regex(arr, LONG_FRACTION_PATTERN))
    if any_true(long_fraction):
        sub_micro = pc.and_(long_fraction, pc.match_substring_regex(arr, SUBMICRO_PATTERN))
        for i in true_positions(sub_micro):
            issues.add(i, TIME.path, SUBMICRO_MESSAGE)
        usable = pc.and_(well_formed, pc.invert(sub_micro))
        text = pc.if_else(usable, arr, pa.scalar(None, pa.string()))
        text = pc.replace_substring_regex(text, MICRO_CUT_PATTERN, r"\1")
    text = pc.ascii_upper(text)  # only well-formed, hence ASCII, values are left
    try:
        return pc.cast(text, UTC_US)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Some value is shaped right but is no real instant (Feb 30, hour 25, …): find it.
    out: list[int | None] = []
    for i, value in enumerate(text.to_pylist()):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(pa.scalar(value).cast(UTC_US).value)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            issues.add(i, TIME.path, TIME_VALUE_MESSAGE.format(value=shorten(arr[i].as_py())))
            out.append(None)
    return pa.array(out, type=pa.int64()).cast(UTC_US)


def _rows(records: Sequence[Any], issues: Collector) -> tuple[dict[str, Sequence[Any]], np.ndarray]:
    """Each top-level field as a column of values, and which records are not objects."""
    kinds = set(map(type, records))
    if kinds <= {dict}:
        dicts: Sequence[dict[str, Any]] = records
        not_event = np.zeros(len(records), dtype=bool)
    else:
        for i, r in enumerate(records):
            if not isinstance(r, dict | Unparsed):  # an unparsed line is reported already
                issues.add(i, "(event)", expected_message("an object", r))
        dicts = [r if isinstance(r, dict) else {} for r in records]
        not_event = np.array([not isinstance(r, dict) for r in records], dtype=bool)
    # Every field of every event in one pass (see _object_column), then a C-level transpose.
    rows = [(*map(r.get, ROW_FIELDS), WIRE_KEYS.issuperset(r)) for r in dicts]
    known = (*ROW_FIELDS, "(known)")
    columns = dict(zip(known, zip(*rows, strict=True), strict=True)) if rows else {}
    del rows
    if columns and not all(columns["(known)"]):
        for i, r in enumerate(dicts):
            for key in sorted(set(r) - WIRE_KEYS):
                issues.add(i, key, UNKNOWN_MESSAGE)
    return {name: columns.get(name, ()) for name in ROW_FIELDS}, not_event


def validate_exact(
    records: Sequence[Any], issues: Collector, reserved_ok: bool, window: TimeWindow
) -> pa.Table:
    """The reference validator: one row per record, every problem of every event named.

    Used for blocks the fast path declines; the fast path is held to the same output by
    property tests (tests/lake/test_wire.py).
    """
    values, not_event = _rows(records, issues)
    out: dict[str, pa.Array] = {}
    for spec in TOP_FIELDS:
        # Events that are not objects at all were reported once; don't pile on.
        quiet = Collector(None) if spec.required else issues
        arr = string_column(values[spec.path], spec.path, quiet, required=spec.required)
        if quiet is not issues:
            for i, found in quiet.by_index.items():
                if not not_event[i]:
                    for issue in found:
                        issues.add(i, issue.field, issue.message)
        check_values(arr, spec, issues, reserved_ok)
        if spec.is_time:
            arr = parse_times(arr, issues, window)
        out[spec.column] = arr if spec.default is None else pc.fill_null(arr, spec.default)
    for obj_spec in OBJECT_FIELDS:
        out |= _object_columns(values[obj_spec.name], obj_spec, issues, not_event)
    out[DETAILS] = canonical_column(values[DETAILS], issues)
    return build(out)


def _object_columns(
    values: Sequence[Any], spec: ObjectField, issues: Collector, not_event: np.ndarray
) -> dict[str, pa.Array]:
    """The stored columns of an object field's members, every problem reported."""
    objs, members = _object_column(values, spec, issues)
    if spec.required:
        for i, v in enumerate(objs):
            if v is None and not not_event[i] and spec.name not in issues.fields(i):
                issues.add(i, spec.name, REQUIRED_MESSAGE)
    out: dict[str, pa.Array] = {}
    for member in spec.members:
        column = members[member.key]
        arr = string_column(column, member.path, issues, required=False)
        if member.required:
            for i, (v, value) in enumerate(zip(objs, column, strict=True)):
                if v is not None and value is None:
                    issues.add(i, member.path, REQUIRED_MESSAGE)
        check_values(arr, member, issues, reserved_ok=False)
        out[member.column] = arr
    return out
