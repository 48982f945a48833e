"""A collector request's body: refused past its limits, validated, checked against the token.

Everything here runs where validation runs: in a worker process when the collector has
workers (`start_worker` is their start-up), else in a thread. None of it touches the
collector's state, so it is apart from ingest/collector_app.py, which calls `screen_body`.
Events move as Arrow tables: nothing here loops over events in Python on the way to a
202 (a rejected body's events are counted by line only when it is refused).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import Issue, parse_json_array, validate, validate_jsonl

NDJSON = "application/x-ndjson"


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_M_MMAP_THRESHOLD = -3


def start_worker(collector_pid: int) -> None:
    """Start-up of a validation worker: die with the collector, keep freed heap memory."""
    _die_with_parent(collector_pid)
    _keep_heap()


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:  # no loadable C library under that name
        return None


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the collector that started it dies.

    A collector killed with SIGKILL (the OOM killer, kill -9) cannot shut its pool down,
    and a spawned worker holds both ends of its own queue's pipes, so it never sees EOF:
    each crash left two idle workers of ~150 MB behind for good. PR_SET_PDEATHSIG has the
    kernel send SIGKILL instead; the parent check after it covers a collector that died
    before the call. Elsewhere than Linux this does nothing.
    """
    libc = _libc()
    prctl = getattr(libc, "prctl", None) if sys.platform.startswith("linux") else None
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # gone already, before the kernel was asked
        os._exit(0)


def _keep_heap() -> None:
    """Start-up of a validation worker: keep freed heap memory for the next request.

    A request's lines, lists and body are glibc allocations. By default glibc gives the
    heap top back to the kernel after each request and the next one faults it in again:
    about one page fault per event (measured under `benchmarks.collector`: 16 → 13 µs of
    worker CPU per event without them). Keeping up to 64 MiB, and serving blocks under
    16 MiB (a whole body) from the heap rather than from mmap, takes that cost off every
    request. Elsewhere than glibc this does nothing.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 16 * 1024 * 1024)
        mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024)


def _ndjson_events(body: bytes) -> int:
    """Events in an NDJSON body, unparsed: its non-blank lines, as `parse_jsonl` counts them."""
    return sum(1 for line in body.split(b"\n") if line.strip())


def _more_events_than(body: bytes, limit: int) -> bool:
    """Whether an NDJSON body holds more than `limit` events (blank lines are none), unparsed.

    Counting newlines is enough for almost every body; only one with at least `limit`
    newlines is split and its non-blank lines counted.
    """
    if body.count(b"\n") < limit:  # at most `limit` lines, so at most `limit` events
        return False
    return _ndjson_events(body) > limit


def validate_body(body: bytes, content_type: str, max_events: int) -> tuple[pa.Table, list[Issue]]:
    """(valid events, issues) of a request body."""
    table, issues, _ = _validate_counting(body, content_type, max_events)
    return table, issues


def _validate_counting(
    body: bytes, content_type: str, max_events: int
) -> tuple[pa.Table, list[Issue], int]:
    """(valid events, issues, how many events the body held)."""
    # Ids assigned to events sent without one derive from each event's content alone
    # (lake.wire_ids), so a resent body, or the same event by another route, gets the same id.
    if content_type.startswith(NDJSON):
        # Refused before any parsing: a body past the limit costs a newline count.
        if _more_events_than(body, max_events):
            issue = Issue(max_events, "(request)", f"more than {max_events} events")
            return pa.table({}), [issue], _ndjson_events(body)
        # The file ingestor's block-wise path; equal to parse_jsonl+validate (tested).
        result = validate_jsonl(body)
    else:
        records = parse_json_array(body)
        if len(records) > max_events:
            issue = Issue(max_events, "(request)", f"more than {max_events} events")
            return pa.table({}), [issue], len(records)
        result = validate(records)
    issues = result.issues
    # A rejected body's events: each valid row, and each rejected event once.
    return result.table, issues, result.table.num_rows + (len(result.rejected) if issues else 0)


def denied_issues(table: pa.Table, tenants: frozenset[str]) -> list[Issue]:
    """An issue for each event whose tenant is not one of `tenants`, the token's.

    Columnar: the distinct tenants of a request are few, so the common case (all allowed)
    is one `unique`; only a request with a denied tenant looks for its rows.
    """
    column = table.column("tenant").combine_chunks()
    if set(pc.unique(column).to_pylist()) <= tenants:
        return []
    allowed = pa.array(sorted(tenants), pa.string())
    rows = np.flatnonzero(
        pc.invert(pc.is_in(column, value_set=allowed)).to_numpy(zero_copy_only=False)
    )
    names = column.take(pa.array(rows, pa.int64())).to_pylist()
    return [
        Issue(row, "tenant", f"this token may not write tenant {name!r}")
        for row, name in zip(rows.tolist(), names, strict=True)
    ]


def check_body(
    body: bytes, content_type: str, max_events: int, tenants: frozenset[str]
) -> tuple[pa.Table, list[Issue], list[Issue]]:
    """Validate a body, then check its events' tenants: (table, issues, denied)."""
    table, issues, denied, _ = screen_body(body, content_type, max_events, tenants)
    return table, issues, denied


def screen_body(
    body: bytes, content_type: str, max_events: int, tenants: frozenset[str]
) -> tuple[pa.Table, list[Issue], list[Issue], int]:
    """Validate a body, then check its events' tenants: (table, issues, denied, events).

    Both run where validation runs (a worker process, when there are workers), so the
    event loop's thread calls no Arrow kernel: each releases and retakes the GIL, which
    the batcher thread may hold for milliseconds. Denied is only looked for in a body
    without issues, as a 400 comes before a 403. `events` counts the body's events,
    valid or not (what a refusal refuses).
    """
    table, issues, events = _validate_counting(body, content_type, max_events)
    denied = denied_issues(table, tenants) if not issues and table.num_rows else []
    return table, issues, denied, events
