"""Wire events (JSON objects) → a validated, normalised Arrow table.

Validation is column-wise, in two tiers. The fast path converts blocks of plain events to
Arrow in one C++ pass and checks every rule with vectorised kernels (regexes, enums,
timestamp casts); it can only say "all valid". Any block it declines, or that holds an
invalid event, goes through the reference validator (`_validate_exact`), which pulls each
field out with C-level comprehensions and, where a column fails, walks it event by event
so that every rejection names the event (index), the field and the reason. Property tests
hold the two to identical output. The one unavoidable per-event step is canonicalising
`details` (sorted keys, compact) with orjson.

Output columns are the stored columns without `received_at`, `seq`, `batch_id` and
`leaf_hash`: those belong to the moment of appending, not to validation.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract._errors import Issue, ValidationError
from lake.contract._schema import EVENTS_SCHEMA, UTC_US
from lake.contract._wire_ids import assign_ids as assign_ids  # re-exported: benchmarks, tests
from lake.contract._wire_ids import content_ids
from lake.contract._wire_json import (
    COLON,
    colons_match,
    keys_maybe_repeated,
    repeated_key,
    repeated_keys_in_array,
)
from lake.spec import (
    ACTION_MESSAGE,
    ACTION_PATTERN,
    ACTOR_FIELDS,
    ACTOR_TYPES,
    CATEGORIES,
    DEFAULT_SEVERITY,
    ID_MESSAGE,
    ID_PATTERN,
    MAX_DETAILS_BYTES,
    MAX_STRING_BYTES,
    OUTCOMES,
    READ_AUDIT_TENANT,
    RESERVED_TENANT_MESSAGE,
    SEVERITIES,
    SUBMICRO_MESSAGE,
    SUBMICRO_PATTERN,
    TARGET_FIELDS,
    TENANT_MESSAGE,
    TENANT_PATTERN,
    TIME_PATTERN,
    TIME_SHAPE_MESSAGE,
    TIME_VALUE_MESSAGE,
    WIRE_FIELDS,
    TimeWindow,
    canonical_details,
    enum_message,
    inexact_number,
    shorten,
    string_problem,
    time_window,
    type_name,
)
from lake.spec import check_event as check_event  # re-exported: tests

OUTPUT_SCHEMA = pa.schema(
    [
        EVENTS_SCHEMA.field(name)
        for name in EVENTS_SCHEMA.names
        if name not in ("received_at", "seq", "batch_id", "leaf_hash")
    ]
)


@dataclass
class Rejected:
    """One rejected input event: where it was, what it was, and every reason."""

    index: int
    raw: Any
    issues: list[Issue]
    line: int | None = None


@dataclass
class Validated:
    """The outcome of validating one input: a table of good events and the rejects."""

    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)
    # Input index of each row of `table`, and line numbers of all records, when known:
    # what a caller needs to check ids across separately validated parts of one input.
    positions: np.ndarray | None = None
    lines: list[int] | None = None
    # Id-less events dropped because an identical one came earlier in the input (they
    # get the same content-derived id, and the lake keeps one).
    repeats: int = 0

    @property
    def issues(self) -> list[Issue]:
        return [issue for r in self.rejected for issue in r.issues]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of small dicts (3x faster, measured)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_jsonl(data: bytes, first_line: int = 1) -> tuple[list[Any], list[int], list[Issue]]:
    """Split JSON Lines into parsed objects, their 1-based line numbers, and parse errors.

    Blank lines are skipped; event indexes count events, not lines. `first_line` is the
    line number of the first line of `data` (for a chunk of a larger input).
    """
    records: list[Any] = []
    lines: list[int] = []
    issues: list[Issue] = []
    loads = orjson.loads
    with _gc_paused():
        for lineno, raw in enumerate(data.split(b"\n"), start=first_line):
            if not raw.strip():
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                records.append(_Unparsed(raw))
                issues.append(Issue(len(records) - 1, "(event)", _json_reason(exc), line=lineno))
            else:
                records.append(record)
                if not colons_match(raw, record) and (found := repeated_key(raw)):
                    issues.append(Issue(len(records) - 1, *found, line=lineno))
            lines.append(lineno)
    return records, lines, issues


def parse_json_array(data: bytes) -> list[Any]:
    """Parse a JSON document holding an array of events.

    Raises ValidationError when it is not one, or when an event repeats a key.
    """
    records, issues = parse_json_array_issues(data)
    if issues:
        raise ValidationError(issues)
    return records


def parse_json_array_issues(data: bytes) -> tuple[list[Any], list[Issue]]:
    """A JSON array of events, and an issue per event that repeats a key (`pre_issues`).

    Raises ValidationError when the document is not a JSON array.
    """
    try:
        with _gc_paused():
            doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError([Issue(0, "(document)", _json_reason(exc))]) from None
    if not isinstance(doc, list):
        raise ValidationError(
            [Issue(0, "(document)", f"expected an array of events, got {type_name(doc)}")]
        )
    if colons_match(data, doc):
        return doc, []
    found = repeated_keys_in_array(data)
    return doc, [Issue(i, field, message) for i, (field, message) in sorted(found.items())]


@dataclass(frozen=True)
class _Unparsed:
    """Placeholder for a line that is not JSON; kept so rejects can be written back."""

    raw: bytes


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    text = str(exc)
    if "UTF-8" in text or "utf-8" in text or "surrogate" in text:
        return "not valid UTF-8 (" + text + ")"
    return "not valid JSON (" + text + ")"


class _Collector:
    """Accumulates issues per event index."""

    def __init__(self, lines: Sequence[int] | None) -> None:
        self.by_index: dict[int, list[Issue]] = {}
        self.lines = lines

    def add(self, index: int, fieldname: str, message: str) -> None:
        line = self.lines[index] if self.lines is not None else None
        self.by_index.setdefault(index, []).append(Issue(index, fieldname, message, line=line))

    def add_issue(self, issue: Issue) -> None:
        self.by_index.setdefault(issue.index, []).append(issue)

    def bad_mask(self, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        if self.by_index:
            mask[np.fromiter(self.by_index.keys(), dtype=np.int64)] = True
        return mask


def _string_column(
    values: Sequence[Any], name: str, issues: _Collector, *, required: bool
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
        for i in _true_positions(pc.is_null(arr)):
            if i not in wrong:
                issues.add(i, name, "is required")
    _check_lengths(arr, name, issues, MAX_STRING_BYTES)
    return arr


def _check_lengths(arr: pa.StringArray, name: str, issues: _Collector, limit: int) -> None:
    buffers = arr.buffers()
    if len(buffers) == 3 and (buffers[2] is None or buffers[2].size <= limit):
        return  # all values together fit the limit, so each one does: no kernels needed
    too_long = pc.fill_null(pc.greater(pc.binary_length(arr), limit), False)
    for i in _true_positions(too_long):
        issues.add(i, name, f"longer than {limit} bytes")


def _true_positions(mask: pa.Array | pa.ChunkedArray) -> list[int]:
    if not pc.any(mask).as_py():
        return []
    return [int(i) for i in np.flatnonzero(mask.to_numpy(zero_copy_only=False))]


def _check_regex(arr: pa.Array, name: str, pattern: str, message: str, issues: _Collector) -> None:
    ok = pc.match_substring_regex(arr, pattern)
    bad = pc.and_(pc.is_valid(arr), pc.invert(pc.fill_null(ok, False)))
    for i in _true_positions(bad):
        issues.add(i, name, message.format(value=shorten(arr[i].as_py())))


def _check_enum(arr: pa.Array, name: str, allowed: Sequence[str], issues: _Collector) -> None:
    ok = pc.is_in(arr, value_set=pa.array(allowed, pa.string()))
    bad = pc.and_(pc.is_valid(arr), pc.invert(ok))
    for i in _true_positions(bad):
        issues.add(
            i,
            name,
            enum_message(arr[i].as_py(), allowed),
        )


_ACTOR_KEYS = frozenset(ACTOR_FIELDS)
_TARGET_KEYS = frozenset(TARGET_FIELDS)
_NO_ACTOR = (None, None, None, None, True)
_NO_TARGET = (None, None, True)


def _object_column(
    values: Sequence[Any], name: str, allowed: Sequence[str], issues: _Collector
) -> tuple[list[Any], dict[str, Sequence[Any]]]:
    """Pull an object field (actor/target) apart into its sub-fields, in one pass."""
    kinds = set(map(type, values))
    if not kinds <= {dict, type(None)}:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, dict):
                issues.add(i, name, f"expected an object, got {type_name(v)}")
    objs: list[Any] = [v if isinstance(v, dict) else None for v in values]
    g = dict.get
    rows: list[tuple[Any, ...]]
    # One pass per object column: each pass over scattered dicts costs a cache miss per
    # event, so sub-fields and the unknown-key check are taken together (measured 3x).
    if name == "actor":
        keys = _ACTOR_KEYS
        rows = [
            (g(v, "id"), g(v, "type"), g(v, "ip"), g(v, "user_agent"), keys.issuperset(v))
            if v is not None
            else _NO_ACTOR
            for v in objs
        ]
        empty: tuple[Any, ...] = _NO_ACTOR
    else:
        keys = _TARGET_KEYS
        rows = [
            (g(v, "type"), g(v, "id"), keys.issuperset(v)) if v is not None else _NO_TARGET
            for v in objs
        ]
        empty = _NO_TARGET
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in empty]
    if not all(cols[-1]):
        for i, v in enumerate(objs):
            if v is not None:
                for key in sorted(set(v) - set(allowed)):
                    issues.add(i, f"{name}.{key}", "unknown field")
    return objs, dict(zip(allowed, cols[:-1], strict=True))


_ORJSON_SORTED = functools.partial(orjson.dumps, option=orjson.OPT_SORT_KEYS)


def _canonical_one(value: Any) -> tuple[str | None, tuple[str, str] | None]:
    """Canonical JSON of one `details` value (orjson: fast), or why it is refused."""
    return canonical_details(value, _ORJSON_SORTED)


def _canonical_details(values: Sequence[Any], issues: _Collector) -> pa.StringArray:
    """Canonical JSON of each `details` object: sorted keys, compact, UTF-8, ≤ 16 KiB."""
    out: list[str | None] = []
    append = out.append
    for i, v in enumerate(values):
        text, problem = _canonical_one(v)
        if problem is not None:
            issues.add(i, *problem)
        append(text)
    return pa.array(out, type=pa.string())


def _parse_times(arr: pa.StringArray, issues: _Collector, window: TimeWindow) -> pa.TimestampArray:
    """RFC 3339 strings with offsets → timestamp[us, UTC]; bad values are reported, not guessed.

    Instants outside `window` (before 1970, too far ahead) are reported too.
    """
    times = _parse_time_values(arr, issues)
    micros = pc.cast(times, pa.int64())
    outside = pc.or_(pc.less(micros, window.earliest_us), pc.greater(micros, window.latest_us))
    for i in _true_positions(pc.fill_null(outside, False)):
        problem = window.problem(micros[i].as_py(), shorten(arr[i].as_py()))
        if problem is not None:
            issues.add(i, "time", problem)
    return times


def _parse_time_values(arr: pa.StringArray, issues: _Collector) -> pa.TimestampArray:
    well_formed = pc.fill_null(pc.match_substring_regex(arr, TIME_PATTERN), False)
    malformed = _true_positions(pc.and_(pc.is_valid(arr), pc.invert(well_formed)))
    for i in malformed:
        issues.add(i, "time", TIME_SHAPE_MESSAGE.format(value=shorten(arr[i].as_py())))
    # Digits past microseconds are rare, and the regexes that handle them cost more than
    # the rest together: run them only where a fraction has seven digits or more.
    text = pc.if_else(well_formed, arr, pa.scalar(None, pa.string())) if malformed else arr
    long_fraction = pc.and_(well_formed, pc.match_substring_regex(arr, r"\.[0-9]{7}"))
    if _any_true(long_fraction):
        sub_micro = pc.and_(long_fraction, pc.match_substring_regex(arr, SUBMICRO_PATTERN))
        for i in _true_positions(sub_micro):
            issues.add(i, "time", SUBMICRO_MESSAGE)
        usable = pc.and_(well_formed, pc.invert(sub_micro))
        text = pc.if_else(usable, arr, pa.scalar(None, pa.string()))
        text = pc.replace_substring_regex(text, r"(\.[0-9]{6})[0-9]+", r"\1")
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
            issues.add(i, "time", TIME_VALUE_MESSAGE.format(value=shorten(arr[i].as_py())))
            out.append(None)
    return pa.array(out, type=pa.int64()).cast(UTC_US)


def _check_records(
    records: Sequence[Any],
    lines: Sequence[int] | None,
    pre_issues: Sequence[Issue],
    reserved_ok: bool,
    window: TimeWindow,
) -> tuple[pa.Table, np.ndarray, list[Rejected]]:
    """Every check of `validate` but ids: the good rows, their record indexes, the rejects."""
    issues = _Collector(lines)
    for issue in pre_issues:
        issues.add_issue(issue)
    with _gc_paused():
        table = _validate_columns(records, issues, reserved_ok, window)
    bad = issues.bad_mask(len(records))
    if bad.any():
        table = table.filter(pa.array(~bad))
    rejected = [
        Rejected(index=i, raw=_raw(records[i]), issues=found, line=lines[i] if lines else None)
        for i, found in sorted(issues.by_index.items())
    ]
    return table, np.flatnonzero(~bad), rejected


@dataclass
class Scanned:
    """A piece of JSON Lines, parsed and checked; ids are not assigned yet.

    Indexes count the events of this piece (see `validate` for `index_offset` semantics);
    `assign_missing_ids` and a duplicate check over the whole input finish the job.
    """

    table: pa.Table  # the valid events, in input order; `event_id` null where none was sent
    positions: np.ndarray  # index of each row's event among the events of the piece
    lines: np.ndarray  # line number of each row
    rejected: list[Rejected]
    events: int  # events in the piece (blank lines are not events)


def scan_jsonl(
    data: bytes,
    first_line: int = 1,
    *,
    reserved_ok: bool = False,
    window: TimeWindow | None = None,
) -> Scanned:
    """`parse_jsonl` and the checks of `validate` in one pass, FAST_ROWS lines at a time.

    Equal to `parse_jsonl` followed by `validate` (rows, rejects, lines) except that ids
    are left unassigned and not checked for duplicates: a streaming caller does both
    once it has seen the whole input. Parsing a block right before converting it keeps
    its objects in the CPU caches, which is most of the fast path's gain. `window` is
    the accepted time range (default: `time_window()` now); a caller that scans one
    input in chunks passes one window to them all.

    A block whose text has more colons than its parsed events account for may repeat a
    key (`lake.contract.keys_maybe_repeated`) and goes to the exact path, which names
    the key.
    """
    window = time_window() if window is None else window
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the text after the last newline: no line at all
    loads = orjson.loads
    # Per block: (first line index, event offset, _FastBlock) or (..., Scanned exact part).
    blocks: list[tuple[int, int, _FastBlock | Scanned]] = []
    events = 0
    with _gc_paused():
        for j in range(0, len(lines), FAST_ROWS):
            block = lines[j : j + FAST_ROWS]
            got: _FastBlock | Scanned | None = None
            try:
                records = list(map(loads, block))
            except orjson.JSONDecodeError:
                pass  # a blank or malformed line: the exact path says which
            else:
                # numpy counts bytes ~6x faster than bytes.count and `in` (measured).
                joined = b"".join(block)
                text = np.frombuffer(joined, dtype=np.uint8)
                # An escaped colon (\\u003a) defeats the count: the exact path then.
                if not (text == _BACKSLASH).any() or b"\\u003" not in joined:
                    got = _fast_block(records, int(np.count_nonzero(text == COLON)))
                del joined, text
                del records  # freed while the cyclic GC is paused: no full collection later
            if got is None:
                got = _scan_exact(block, first_line + j, reserved_ok, window)
            blocks.append((j, events, got))
            events += got.events if isinstance(got, Scanned) else len(block)
        fast = [b for _, _, b in blocks if isinstance(b, _FastBlock)]
        table, bad_rows = (
            _fast_table(fast, reserved_ok, window) if fast else (None, np.zeros(0, np.int64))
        )
    bounds = np.cumsum([0, *(len(b.events) for b in fast)])
    bad = set((np.searchsorted(bounds, bad_rows, side="right") - 1).tolist())
    tables: list[pa.Table] = []
    positions: list[np.ndarray] = []
    line_numbers: list[np.ndarray] = []
    rejected: list[Rejected] = []
    run = [0, 0]  # rows [run[0], run[1]) of `table`: consecutive good blocks, sliced once
    k = 0
    for j, offset, got in blocks:
        if isinstance(got, _FastBlock):
            n = len(got.events)
            if k in bad:
                got = _scan_exact(lines[j : j + n], first_line + j, reserved_ok, window)
            else:
                if run[1] != bounds[k]:
                    run = _flush(table, run, tables, int(bounds[k]))
                run[1] = int(bounds[k]) + n
                positions.append(np.arange(offset, offset + n, dtype=np.int64))
                line_numbers.append(np.arange(first_line + j, first_line + j + n, dtype=np.int64))
            k += 1
        if isinstance(got, Scanned):
            run = _flush(table, run, tables, run[1])
            tables.append(got.table)
            positions.append(got.positions + offset)
            line_numbers.append(got.lines)
            rejected += [_shift(r, offset) for r in got.rejected] if offset else got.rejected
    _flush(table, run, tables, run[1])
    if not tables:
        return _scan_exact([], first_line, reserved_ok, window)
    return Scanned(
        table=_joined(tables),
        positions=np.concatenate(positions),
        lines=np.concatenate(line_numbers),
        rejected=rejected,
        events=events,
    )


def _flush(table: pa.Table | None, run: list[int], tables: list[pa.Table], at: int) -> list[int]:
    """Append rows run[0]:run[1] of `table` to `tables` if any; start a new run at `at`."""
    lo, hi = run
    if table is not None and hi > lo:
        tables.append(table if hi - lo == table.num_rows else table.slice(lo, hi - lo))
    return [at, at]


def _joined(tables: list[pa.Table]) -> pa.Table:
    """One table from parts, compacted: a slice would carry (and pickle) its whole parent."""
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables).combine_chunks()


def _scan_exact(
    block: list[bytes], first_line: int, reserved_ok: bool, window: TimeWindow
) -> Scanned:
    records, lines, pre_issues = parse_jsonl(b"\n".join(block), first_line)
    table, kept, rejected = _check_records(records, lines, pre_issues, reserved_ok, window)
    return Scanned(table, kept, np.asarray(lines, dtype=np.int64)[kept], rejected, len(records))


def assign_missing_ids(table: pa.Table) -> pa.Table:
    """Fill in `event_id` where an event came without one, from its content alone.

    See `lake.contract`: the same event gets the same id whatever the input, its format
    or the event's position in it; two identical id-less events get one id.
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


def validate(
    records: Sequence[Any],
    *,
    namespace: bytes | None = None,
    lines: Sequence[int] | None = None,
    pre_issues: Sequence[Issue] = (),
    index_offset: int = 0,
    check_ids: bool = True,
    reserved_ok: bool = False,
    max_future_skew: timedelta | None = None,
    window: TimeWindow | None = None,
) -> Validated:
    """Validate wire events and normalise them into OUTPUT_SCHEMA.

    Args:
        records: parsed events (dicts); anything else is rejected with a reason.
        namespace: unused; kept so that older callers still run. Ids of events sent
            without one depend on their content alone (`assign_missing_ids`).
        lines: 1-based line numbers of the records, for line-oriented inputs.
        pre_issues: issues found while parsing (e.g. lines that are not JSON).
        index_offset: index of `records[0]` in the whole input, when validating one chunk
            of it; indexes in issues are then those of the whole input.
        check_ids: reject a second event of a tenant with the same id (and drop a second
            identical id-less event: it gets the same id); callers that validate an
            input in chunks leave this to a check over the whole input.
        reserved_ok: accept events for the reserved read-audit tenant (only the query
            layer's own audit writer sets this).
        max_future_skew: how far past this machine's clock `time` may be (default:
            AUDITLAKE_MAX_FUTURE_SKEW, else 24 hours; see `lake.contract`). Times before
            1970 are always refused.
        window: the accepted time range itself, instead of `max_future_skew` and now.

    Returns:
        The valid events as a table and every rejected event with all its issues.
    """
    del namespace
    window = time_window(max_future_skew) if window is None else window
    table, kept, rejected = _check_records(records, lines, pre_issues, reserved_ok, window)
    assigned = pc.is_null(table.column("event_id")).to_numpy(zero_copy_only=False)
    table = assign_missing_ids(table)
    repeats = 0
    if check_ids:
        table, dup_issues, dropped = _reject_duplicate_ids(
            table, kept, lines, index_offset, assigned
        )
        repeats = len(dropped)
        gone = [d.index for d in dup_issues] + dropped
        if gone:
            kept = np.setdiff1d(kept, gone)
        if dup_issues:
            rejected = sorted(
                rejected
                + [
                    Rejected(index=d.index, raw=_raw(records[d.index]), issues=[d], line=d.line)
                    for d in dup_issues
                ],
                key=lambda r: r.index,
            )
    if index_offset:
        rejected = [_shift(r, index_offset) for r in rejected]
    return Validated(
        table=table,
        rejected=rejected,
        positions=kept + index_offset,
        lines=list(lines) if lines is not None else None,
        repeats=repeats,
    )


def validate_jsonl(
    data: bytes,
    *,
    namespace: bytes | None = None,
    reserved_ok: bool = False,
    max_future_skew: timedelta | None = None,
) -> Validated:
    """`parse_jsonl` then `validate` of one whole JSON Lines input, by `scan_jsonl`'s path.

    Equal to `validate(records, lines=lines, pre_issues=issues)` of `parse_jsonl(data)`:
    the same table (rows, order, assigned ids, schema), rejects (indexes, issues, lines,
    order), positions and lines. For inputs held whole in memory, such as a collector
    request; the file ingestor streams chunks instead.

    Args:
        data: the JSON Lines bytes; line 1 is its first line.
        namespace: unused (see `validate`).
        reserved_ok: accept events for the reserved read-audit tenant.
        max_future_skew: see `validate`.
    """
    del namespace
    scanned = scan_jsonl(data, reserved_ok=reserved_ok, window=time_window(max_future_skew))
    # The line of every event, as `parse_jsonl` lists them: valid rows and rejects together.
    numbers = np.zeros(scanned.events, dtype=np.int64)
    numbers[scanned.positions] = scanned.lines
    for r in scanned.rejected:
        if r.line is not None:  # always, in JSON Lines
            numbers[r.index] = r.line
    lines: list[int] = numbers.tolist()
    kept = scanned.positions
    assigned = pc.is_null(scanned.table.column("event_id")).to_numpy(zero_copy_only=False)
    table = assign_missing_ids(scanned.table)
    table, dup_issues, dropped = _reject_duplicate_ids(table, kept, lines, 0, assigned)
    rejected = scanned.rejected
    gone = [d.index for d in dup_issues] + dropped
    if gone:
        kept = np.setdiff1d(kept, gone)
    if dup_issues:
        text = data.split(b"\n")  # a repeat is valid JSON: quote it parsed, as `validate` does
        repeats = [
            Rejected(d.index, orjson.loads(text[lines[d.index] - 1]), [d], d.line)
            for d in dup_issues
        ]
        rejected = sorted(rejected + repeats, key=lambda r: r.index)
    return Validated(
        table=table, rejected=rejected, positions=kept, lines=lines, repeats=len(dropped)
    )


def _shift(r: Rejected, offset: int) -> Rejected:
    issues = [Issue(i.index + offset, i.field, i.message, i.line) for i in r.issues]
    return Rejected(r.index + offset, r.raw, issues, r.line)


def _raw(record: Any) -> Any:
    return record.raw.decode("utf-8", "replace") if isinstance(record, _Unparsed) else record


def _reject_duplicate_ids(
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


_WIRE_KEYS = frozenset(WIRE_FIELDS)
_ROW_FIELDS = (
    "tenant", "id", "time", "category", "action", "outcome", "severity", "source",
    "actor", "target", "details", "(known)",
)  # fmt: skip


# -- The fast path -------------------------------------------------------------------------
#
# Most inputs are entirely valid. For those, the Python work per event is parsing (orjson)
# and one C++ pass of Arrow's converter over the parsed dicts, done a block at a time so
# that a block's objects are still in the CPU caches when they are converted (parse and
# convert: 3.0 µs/event in blocks of 1,024 against 5.8 µs in blocks of 16k, measured). The
# value rules (patterns, enums, timestamps, lengths) then run as Arrow kernels over all
# blocks at once. Anything unusual, or any invalid event, goes to `_validate_exact`, which
# names every problem: the fast path only ever says "all valid".

FAST_ROWS = 1024
_BACKSLASH = ord("\\")

_WIRE_STRUCT = pa.struct(
    [
        *((name, pa.string()) for name in _ROW_FIELDS[:8]),
        ("actor", pa.struct([(name, pa.string()) for name in ACTOR_FIELDS])),
        ("target", pa.struct([(name, pa.string()) for name in TARGET_FIELDS])),
    ]
)


@dataclass
class _FastBlock:
    """A block of events the fast path converted; not yet checked."""

    events: pa.StructArray
    details: pa.StringArray
    # For blocks parsed from JSON text: its colons and the keys of its events' top level
    # (see `lake.contract.keys_maybe_repeated`); None where the events came as objects.
    raw_colons: int | None = None
    keys: int = 0


def _fast_block(records: Sequence[Any], raw_colons: int | None = None) -> _FastBlock | None:
    """Arrow columns of a block of plain events, or None to leave it to `_validate_exact`.

    A block qualifies when every event is a dict with known keys only, `actor` is a dict
    and `target` a dict or absent (known keys only), and `details` an object that
    serialises within the limits. Strings go through Arrow's own string converter, the
    one `_validate_exact` uses, so values are identical; whatever it refuses sends the
    block to the exact path, which names the problem.
    """
    known, actor_keys, target_keys = _WIRE_KEYS, _ACTOR_KEYS, _TARGET_KEYS
    g = dict.get
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    try:
        # One pass over the events (each a cache miss): the shape check filters, and the
        # canonical `details` of those that pass; any event filtered out declines the block.
        texts = [
            None if d is None else dumps(d, option=sort_keys)
            for r in records
            if type(r) is dict
            and known.issuperset(r)
            and type(a := g(r, "actor")) is dict
            and actor_keys.issuperset(a)
            and ((t := g(r, "target")) is None or (type(t) is dict and target_keys.issuperset(t)))
            and ((d := g(r, "details")) is None or type(d) is dict)
        ]
        if len(texts) != len(records):
            return None
        events = pa.array(records, type=_WIRE_STRUCT)
    except (pa.ArrowException, TypeError, ValueError):
        return None  # orjson.JSONEncodeError is a TypeError; Arrow's errors name no event
    details = pa.array(texts, pa.binary())
    if _any_true(pc.greater(pc.binary_length(details), MAX_DETAILS_BYTES)):
        return None
    # orjson writes a float from a beyond-64-bit integer with an exponent: look closer.
    for i in _true_positions(pc.fill_null(pc.match_substring(details, "e+"), False)):
        if inexact_number(records[i]["details"], "details"):
            return None
    keys = sum(map(len, records)) if raw_colons is not None else 0
    return _FastBlock(events, details.cast(pa.string()), raw_colons, keys)


def _any_true(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


_ENUMS = {
    name: pa.array(allowed, pa.string())
    for name, allowed in (
        ("category", CATEGORIES),
        ("outcome", OUTCOMES),
        ("severity", SEVERITIES),
        ("actor.type", ACTOR_TYPES),
    )
}


def _longest(arr: pa.StringArray) -> int:
    """Bytes of the longest value, from the offsets: no kernel call for the common case."""
    if len(arr) == 0:
        return 0
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset :][: len(arr) + 1]
    return int(np.diff(offsets).max())


def _fast_table(
    blocks: Sequence[_FastBlock], reserved_ok: bool, window: TimeWindow
) -> tuple[pa.Table, np.ndarray]:
    """Check converted blocks together: the table of all their rows, and the bad rows.

    Every rule of `_validate_exact` becomes one boolean column, and-ed into one: a few
    dozen kernel calls per call, whatever the number of events (a per-rule `any` would
    double them, and they dominate for batches of a thousand events). No messages: a row
    that fails sends its block to the exact path. Where unsure (digits past microseconds)
    it declines; it must never accept what the exact path refuses (property-tested).
    """
    events = pa.concat_arrays([b.events for b in blocks])
    details = pa.concat_arrays([b.details for b in blocks])
    col = dict(zip(_WIRE_STRUCT.names, events.flatten(), strict=True))
    actor = dict(zip(ACTOR_FIELDS, col["actor"].flatten(), strict=True))
    target = dict(zip(TARGET_FIELDS, col["target"].flatten(), strict=True))
    tenant, event_id, time_text = col["tenant"], col["id"], col["time"]
    strings = [col[name] for name in _ROW_FIELDS[:8]] + [*actor.values(), *target.values()]
    rules: list[pa.Array] = [
        pc.fill_null(pc.less_equal(pc.binary_length(arr), MAX_STRING_BYTES), True)
        for arr in strings
        if _longest(arr) > MAX_STRING_BYTES
    ]
    for name in ("tenant", "time", "category", "action", "outcome"):
        rules.append(pc.is_valid(col[name]))
    rules.append(pc.not_equal(actor["id"], ""))  # null where absent: refused below
    for arr, pattern in (
        (tenant, TENANT_PATTERN),
        (event_id, ID_PATTERN),
        (col["action"], ACTION_PATTERN),
        (time_text, TIME_PATTERN),
    ):
        rules.append(pc.or_kleene(pc.is_null(arr), pc.match_substring_regex(arr, pattern)))
    # Seven or more fraction digits: left to the exact path (sub-microsecond rules).
    rules.append(pc.invert(pc.match_substring_regex(time_text, r"\.[0-9]{7}")))
    for name, arr in (
        ("category", col["category"]),
        ("outcome", col["outcome"]),
        ("severity", col["severity"]),
        ("actor.type", actor["type"]),
    ):
        rules.append(pc.or_kleene(pc.is_null(arr), pc.is_in(arr, value_set=_ENUMS[name])))
    if not reserved_ok:
        rules.append(pc.not_equal(tenant, READ_AUDIT_TENANT))
    good = functools.reduce(pc.and_kleene, rules)
    good = pc.fill_null(good, False)
    if blocks[0].raw_colons is not None:
        strings.append(details)
        repeated = keys_maybe_repeated(
            np.cumsum([0, *(len(b.events) for b in blocks)]),
            [b.keys for b in blocks],
            [b.raw_colons or 0 for b in blocks],
            strings,
            [*actor.values(), *target.values()],
        )
        if repeated is not None:
            good = pc.and_(good, pa.array(~repeated))
    all_good = bool(pc.all(good).as_py())
    text = pc.ascii_upper(
        time_text if all_good else pc.if_else(good, time_text, pa.scalar(None, pa.string()))
    )
    try:
        time = pc.cast(text, UTC_US)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Shaped right but no real instant (Feb 30…): which one is the exact path's job.
        time = pa.nulls(len(events), UTC_US)
        good = pa.array(np.zeros(len(events), dtype=bool))
        all_good = False
    else:
        micros = pc.cast(time, pa.int64())
        low, high = pc.min_max(micros).values()
        if low.is_valid and (low.as_py() < window.earliest_us or high.as_py() > window.latest_us):
            # Outside the accepted window: the exact path names the event and the bound.
            inside = pc.and_(
                pc.greater_equal(micros, window.earliest_us),
                pc.less_equal(micros, window.latest_us),
            )
            good = pc.and_(good, pc.fill_null(inside, False))
            all_good = False
    table = _build(
        tenant,
        pc.cast(time, pa.date32()),
        event_id,
        time,
        col["category"],
        col["action"],
        col["outcome"],
        pc.fill_null(col["severity"], DEFAULT_SEVERITY),
        actor["id"],
        actor["type"],
        actor["ip"],
        actor["user_agent"],
        target["type"],
        target["id"],
        col["source"],
        details,
    )
    if all_good:
        return table, np.zeros(0, dtype=np.int64)
    return table, np.flatnonzero(~good.to_numpy(zero_copy_only=False))


def _validate_columns(
    records: Sequence[Any], issues: _Collector, reserved_ok: bool, window: TimeWindow
) -> pa.Table:
    """One row per record (bad ones too; `issues` says which): fast path, else exact.

    The fast path is taken only when every event is plain and valid; otherwise the exact
    path runs over all the records, as one call. (Per block would be faster, but the
    exact path accepts a `bytes` value where the rest of its column converts and refuses
    it where some other value does not: its verdicts depend on the neighbours, so the
    grouping must stay as the caller made it. JSON never holds bytes, so `scan_jsonl`
    does fall back block by block.)
    """
    if not records:
        return _validate_exact(records, issues, reserved_ok, window)
    blocks = []
    for start in range(0, len(records), FAST_ROWS):
        block = _fast_block(records[start : start + FAST_ROWS])
        if block is None:
            return _validate_exact(records, issues, reserved_ok, window)
        blocks.append(block)
    table, bad_rows = _fast_table(blocks, reserved_ok, window)
    if bad_rows.size:
        return _validate_exact(records, issues, reserved_ok, window)
    return table


def _validate_exact(
    records: Sequence[Any], issues: _Collector, reserved_ok: bool, window: TimeWindow
) -> pa.Table:
    """The reference validator: one row per record, every problem of every event named.

    Used for blocks the fast path declines; the fast path is held to the same output by
    property tests (tests/lake/test_wire.py).
    """
    kinds = set(map(type, records))
    if not kinds <= {dict}:
        for i, r in enumerate(records):
            if isinstance(r, _Unparsed):
                continue  # already reported by the parser
            if not isinstance(r, dict):
                issues.add(i, "(event)", f"expected an object, got {type_name(r)}")
    dicts: list[dict[str, Any]] = (
        list(records) if kinds <= {dict} else [r if isinstance(r, dict) else {} for r in records]
    )
    g = dict.get
    known = _WIRE_KEYS
    # Every field of every event in one pass (see _object_column), then a C-level transpose.
    rows = [
        (
            g(r, "tenant"), g(r, "id"), g(r, "time"), g(r, "category"), g(r, "action"),
            g(r, "outcome"), g(r, "severity"), g(r, "source"), g(r, "actor"), g(r, "target"),
            g(r, "details"), known.issuperset(r),
        )
        for r in dicts
    ]  # fmt: skip
    columns: dict[str, Sequence[Any]] = (
        dict(zip(_ROW_FIELDS, zip(*rows, strict=True), strict=True))
        if rows
        else {f: () for f in _ROW_FIELDS}
    )
    del rows
    if not all(columns["(known)"]):
        for i, r in enumerate(dicts):
            for key in sorted(set(r) - known):
                issues.add(i, key, "unknown field")

    col = columns.__getitem__
    not_event = (
        np.zeros(len(records), dtype=bool)
        if kinds <= {dict}
        else np.array([not isinstance(r, dict) for r in records], dtype=bool)
    )

    def required(values: Sequence[Any], name: str) -> pa.StringArray:
        # Events that are not objects at all were reported once; don't pile on.
        quiet = _Collector(None)
        arr = _string_column(values, name, quiet, required=True)
        for i, found in quiet.by_index.items():
            if not not_event[i]:
                for issue in found:
                    issues.add(i, issue.field, issue.message)
        return arr

    tenant = required(col("tenant"), "tenant")
    _check_regex(
        tenant,
        "tenant",
        TENANT_PATTERN,
        TENANT_MESSAGE,
        issues,
    )
    if not reserved_ok:
        for i in _true_positions(pc.equal(tenant, READ_AUDIT_TENANT)):
            issues.add(i, "tenant", RESERVED_TENANT_MESSAGE)
    event_id = _string_column(col("id"), "id", issues, required=False)
    _check_regex(
        event_id,
        "id",
        ID_PATTERN,
        ID_MESSAGE,
        issues,
    )
    time_text = required(col("time"), "time")
    time = _parse_times(time_text, issues, window)
    category = required(col("category"), "category")
    _check_enum(category, "category", CATEGORIES, issues)
    action = required(col("action"), "action")
    _check_regex(
        action,
        "action",
        ACTION_PATTERN,
        ACTION_MESSAGE,
        issues,
    )
    outcome = required(col("outcome"), "outcome")
    _check_enum(outcome, "outcome", OUTCOMES, issues)
    severity = _string_column(col("severity"), "severity", issues, required=False)
    _check_enum(severity, "severity", SEVERITIES, issues)
    severity = pc.fill_null(severity, DEFAULT_SEVERITY)
    source = _string_column(col("source"), "source", issues, required=False)

    actor_values, actor = _object_column(columns["actor"], "actor", ACTOR_FIELDS, issues)
    for i, v in enumerate(actor_values):
        if v is None and not not_event[i] and "actor" not in _already(issues, i):
            issues.add(i, "actor", "is required")
    actor_id = _string_column(actor["id"], "actor.id", issues, required=False)
    for i, (v, aid) in enumerate(zip(actor_values, actor["id"], strict=True)):
        if v is not None and aid is None:
            issues.add(i, "actor.id", "is required")
        elif v is not None and aid == "":
            issues.add(i, "actor.id", "must not be empty")
    actor_type = _string_column(actor["type"], "actor.type", issues, required=False)
    _check_enum(actor_type, "actor.type", ACTOR_TYPES, issues)
    actor_ip = _string_column(actor["ip"], "actor.ip", issues, required=False)
    user_agent = _string_column(actor["user_agent"], "actor.user_agent", issues, required=False)

    _, target = _object_column(columns["target"], "target", TARGET_FIELDS, issues)
    target_type = _string_column(target["type"], "target.type", issues, required=False)
    target_id = _string_column(target["id"], "target.id", issues, required=False)

    details = _canonical_details(col("details"), issues)

    event_date = pc.cast(time, pa.date32())
    return _build(
        tenant,
        event_date,
        event_id,
        time,
        category,
        action,
        outcome,
        severity,
        actor_id,
        actor_type,
        actor_ip,
        user_agent,
        target_type,
        target_id,
        source,
        details,
    )


def _already(issues: _Collector, index: int) -> set[str]:
    return {issue.field for issue in issues.by_index.get(index, [])}


def _build(*columns: pa.Array) -> pa.Table:
    relaxed = pa.schema([f.with_nullable(True) for f in OUTPUT_SCHEMA])
    return pa.Table.from_arrays(list(columns), schema=relaxed)


def finish(table: pa.Table) -> pa.Table:
    """Cast a validated table to the strict OUTPUT_SCHEMA (non-null where required)."""
    return table.cast(OUTPUT_SCHEMA)
