"""Wire events (JSON objects) → a validated, normalised Arrow table.

Validation is column-wise, in two tiers, both derived from the wire format declared in
`lake.spec`. The fast path (`_wire_fast`) converts blocks of plain events to Arrow in
one C++ pass and checks every rule with vectorised kernels (regexes, enums, timestamp
casts); it can only say "all valid". Any block it declines, or that holds an invalid
event, goes through the reference validator (`_wire_exact`), which names the event
(index), the field and the reason of every rejection. Property tests hold the two, and
the scalar `lake.spec.check_event`, to identical output. The one unavoidable per-event
step is canonicalising `details` (sorted keys, compact) with orjson.

Output columns are the stored columns without `received_at`, `seq`, `batch_id` and
`leaf_hash`: those belong to the moment of appending, not to validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract._errors import Issue
from lake.contract._wire_exact import Collector, validate_exact
from lake.contract._wire_fast import FastBlock, fast_block, fast_table
from lake.contract._wire_ids import assign_missing_ids, reject_duplicate_ids
from lake.contract._wire_json import COLON
from lake.contract._wire_parse import parse_jsonl, raw_of
from lake.spec import TimeWindow, gc_paused, time_window

FAST_ROWS = 1024  # events per fast-path block (tests set it lower to span blocks)
_BACKSLASH = ord("\\")


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


def _validate_columns(
    records: Sequence[Any], issues: Collector, reserved_ok: bool, window: TimeWindow
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
        return validate_exact(records, issues, reserved_ok, window)
    blocks = []
    for start in range(0, len(records), FAST_ROWS):
        block = fast_block(records[start : start + FAST_ROWS])
        if block is None:
            return validate_exact(records, issues, reserved_ok, window)
        blocks.append(block)
    table, bad_rows = fast_table(blocks, reserved_ok, window)
    if bad_rows.size:
        return validate_exact(records, issues, reserved_ok, window)
    return table


def _check_records(
    records: Sequence[Any],
    lines: Sequence[int] | None,
    pre_issues: Sequence[Issue],
    reserved_ok: bool,
    window: TimeWindow,
) -> tuple[pa.Table, np.ndarray, list[Rejected]]:
    """Every check of `validate` but ids: the good rows, their record indexes, the rejects."""
    issues = Collector(lines)
    for issue in pre_issues:
        issues.add_issue(issue)
    with gc_paused():
        table = _validate_columns(records, issues, reserved_ok, window)
    bad = issues.bad_mask(len(records))
    if bad.any():
        table = table.filter(pa.array(~bad))
    rejected = [
        Rejected(index=i, raw=raw_of(records[i]), issues=found, line=lines[i] if lines else None)
        for i, found in sorted(issues.by_index.items())
    ]
    return table, np.flatnonzero(~bad), rejected


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
    with gc_paused():
        blocks, events = _scan_blocks(lines, first_line, reserved_ok, window)
        fast = [b for _, _, b in blocks if isinstance(b, FastBlock)]
        table, bad_rows = (
            fast_table(fast, reserved_ok, window) if fast else (None, np.zeros(0, np.int64))
        )
    parts = _Parts()
    bounds = np.cumsum([0, *(len(b.events) for b in fast)])
    bad = set((np.searchsorted(bounds, bad_rows, side="right") - 1).tolist())
    k = 0
    for j, offset, got in blocks:
        if isinstance(got, FastBlock):
            n = len(got.events)
            if k in bad:
                got = _scan_exact(lines[j : j + n], first_line + j, reserved_ok, window)
            else:
                parts.rows(table, int(bounds[k]), n, offset, first_line + j)
            k += 1
        if isinstance(got, Scanned):
            parts.scanned(table, got, offset)
    parts.flush(table)
    if not parts.tables:
        return _scan_exact([], first_line, reserved_ok, window)
    return parts.joined(events)


def _scan_blocks(
    lines: list[bytes], first_line: int, reserved_ok: bool, window: TimeWindow
) -> tuple[list[tuple[int, int, FastBlock | Scanned]], int]:
    """Per block of FAST_ROWS lines: (first line index, event offset, converted or checked).

    A block is converted for the fast path when it parses and its text escapes no colon;
    otherwise it is checked by the exact path at once. Also returns the events counted.
    """
    loads = orjson.loads
    blocks: list[tuple[int, int, FastBlock | Scanned]] = []
    events = 0
    for j in range(0, len(lines), FAST_ROWS):
        block = lines[j : j + FAST_ROWS]
        got: FastBlock | Scanned | None = None
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
                got = fast_block(records, int(np.count_nonzero(text == COLON)))
            del joined, text
            del records  # freed while the cyclic GC is paused: no full collection later
        if got is None:
            got = _scan_exact(block, first_line + j, reserved_ok, window)
        blocks.append((j, events, got))
        events += got.events if isinstance(got, Scanned) else len(block)
    return blocks, events


class _Parts:
    """The pieces of a scan's result, in input order; consecutive fast rows sliced once."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.positions: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.rejected: list[Rejected] = []
        self.run = [0, 0]  # rows [run[0], run[1]) of the fast table, not yet appended

    def rows(self, table: pa.Table | None, start: int, n: int, offset: int, line: int) -> None:
        """Rows start:start+n of the fast table: events offset…, lines line…"""
        if self.run[1] != start:
            self.flush(table)
            self.run = [start, start]
        self.run[1] = start + n
        self.positions.append(np.arange(offset, offset + n, dtype=np.int64))
        self.lines.append(np.arange(line, line + n, dtype=np.int64))

    def scanned(self, table: pa.Table | None, got: Scanned, offset: int) -> None:
        self.flush(table)
        self.tables.append(got.table)
        self.positions.append(got.positions + offset)
        self.lines.append(got.lines)
        self.rejected += [_shift(r, offset) for r in got.rejected] if offset else got.rejected

    def flush(self, table: pa.Table | None) -> None:
        lo, hi = self.run
        if table is not None and hi > lo:
            self.tables.append(table if hi - lo == table.num_rows else table.slice(lo, hi - lo))
        self.run = [hi, hi]

    def joined(self, events: int) -> Scanned:
        # One table, compacted: a slice would carry (and pickle) its whole parent.
        tables = self.tables
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()
        positions, lines = np.concatenate(self.positions), np.concatenate(self.lines)
        return Scanned(table, positions, lines, self.rejected, events)


def _scan_exact(
    block: list[bytes], first_line: int, reserved_ok: bool, window: TimeWindow
) -> Scanned:
    records, lines, pre_issues = parse_jsonl(b"\n".join(block), first_line)
    table, kept, rejected = _check_records(records, lines, pre_issues, reserved_ok, window)
    return Scanned(table, kept, np.asarray(lines, dtype=np.int64)[kept], rejected, len(records))


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
        table, dup_issues, dropped = reject_duplicate_ids(
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
                    Rejected(index=d.index, raw=raw_of(records[d.index]), issues=[d], line=d.line)
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
    table, dup_issues, dropped = reject_duplicate_ids(table, kept, lines, 0, assigned)
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
