"""Full integrity check of a lake: every event, every checkpoint, every signature.

For each tenant:

1. Recompute every leaf from the stored row (never trusting the stored `leaf_hash`).
2. Check each checkpoint's signed note against *trusted* keys only (config home or
   `--trusted-key`); a signature that verifies only with a key published inside the lake
   is `untrusted_key`. Key windows, the rotation chain and the order of checkpoints are
   judged on what the notes sign (tree size, and the time each checkpoint signs), never
   on the `sealed_at` column (`lake.verify`).
3. Take the stored level-0 hash tiles as the expected leaf sequence only if their roots
   match every signed checkpoint (then they are as authentic as the signatures), and
   compare each row against them. This pinpoints the event behind a failure:
   `modified`, `reordered`, `duplicate`, `inserted`, `missing`, `unsealed`. Without usable
   tiles, roots are rebuilt from the rows in seq order and compared instead.
4. Compare against checkpoints exported earlier (`--since-checkpoint`) to catch rollback
   of the newest batches, which leaves the lake self-consistent.

A damaged lake never raises: an unreadable data file, checkpoints file or Delta log is
itself a finding (`lake.verify`).

**Ranges.** The row work of a tenant is split into `RangeTask`s over aligned ranges of
`seq` (2**k events, k >= 8 so a range is whole tiles), so memory is bounded by the range
size, not by the tenant, and an engine can spread one big tenant over many workers. A
task reads only the data files whose seq statistics meet its range, checks what it can
see alone (rows against the tiles, duplicates, dates, gaps) and returns the hashes of the
complete subtrees inside its range that the driver needs; the driver (`_tenant_steps`)
combines them into the roots at every checkpoint size and the upper tiles, and merges
the findings in the order a single pass over the tenant would emit them, so the report
is the same whatever the range size. A tenant is checked as one range instead when a
data file has no seq statistics, when a file holds a seq outside its statistics (a file
rewritten by an attacker: the statistics cannot be trusted to find its rows), or when
rows must be re-hashed into a tree and some seq is negative. Engines: in this process,
a local process pool (`verify_lake(workers=...)`), or Ray (`lake/verify/_ray.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import (
    CHECKPOINTS_SCHEMA,
    LEAF_FIELDS,
    LakeError,
    NoteError,
    StorageError,
    UsageError,
    hash_leaves,
    hashes_to_bytes,
)
from lake.log import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Checkpoint,
    MerkleLevels,
    TileLog,
    VerifierKey,
    frontier,
    parse_note,
    tile_path,
    tree_root,
    verify_note,
)
from lake.secrets import KeyWindow
from lake.storage import DataFile, Lake, paths, process_context
from lake.verify._keys import SealedCheckpoint, check_signatures
from lake.verify._read import READ_ERRORS, data_files, open_table, read_checkpoints
from lake.verify._report import MAX_FINDINGS_PER_KIND as MAX_FINDINGS_PER_KIND
from lake.verify._report import Finding as Finding
from lake.verify._report import Report as Report
from lake.verify._report import TenantReport as TenantReport
from lake.write import repeated_ids

READ_THREADS = 4
# Below this many events a process pool costs more (interpreter start, imports) than it saves.
PARALLEL_MIN_EVENTS = 300_000
# Events per range task (rounded down to a power of two, at least one tile of 256).
RANGE_EVENTS = 1 << 17
ROW_COLUMNS = [*LEAF_FIELDS, "event_date", "seq", "batch_id", "leaf_hash"]

Progress = Callable[[int, int], None]


def _origin_tenant(lake: Lake, origin: str) -> str | None:
    prefix = f"auditlake/{lake.name}/"
    return origin[len(prefix) :] if origin.startswith(prefix) else None


def parse_exported(text: str) -> list[str]:
    """Split a file of one or more exported signed checkpoints into notes.

    NoteError when it holds none: an empty or truncated export must not turn the
    rollback check it was given for into a silent pass.
    """
    notes: list[str] = []
    current: list[str] = []
    in_sigs = False
    for line in text.splitlines(keepends=True):
        if in_sigs and not line.startswith("— "):
            notes.append("".join(current))
            current, in_sigs = [], False
        if line == "\n" and current:
            in_sigs = True
        if line.strip() or current:
            current.append(line)
    if current:
        notes.append("".join(current))
    notes = [n for n in notes if n.strip()]
    if not notes:
        raise NoteError("--since-checkpoint: the file holds no signed checkpoint")
    return notes


def verify_lake(
    lake: Lake,
    trusted: Sequence[VerifierKey],
    *,
    tenants: Sequence[str] | None = None,
    since: Sequence[str] = (),
    progress: Progress | None = None,
    workers: int = 1,
    witness_keys: Sequence[Any] = (),
    min_witnesses: int = 0,
    windows: Mapping[str, KeyWindow] | None = None,
    range_events: int = RANGE_EVENTS,
    runner: TaskRunner | None = None,
) -> Report:
    """Verify the lake (or some tenants) against trusted keys and exported checkpoints.

    With `workers` > 1, lakes of PARALLEL_MIN_EVENTS or more are verified in that many
    processes, range task by range task (see `lake.storage`: a calling script needs the usual
    `if __name__ == "__main__":` guard; the CLI passes one worker per core). `runner`
    runs the range tasks elsewhere instead (e.g. on Ray, see `lake.verify`);
    `range_events` sizes them. The report does not depend on either.
    """
    report = Report(lake.root)
    damaged = report.lake_findings
    events_table = open_table(lake, "events", damaged)
    # ids: for repeated_ids below
    all_files = data_files(lake, events_table, damaged) if events_table is not None else []
    checkpoints_table = open_table(lake, "checkpoints", damaged)
    cps_all, cp_findings = (
        read_checkpoints(lake, checkpoints_table)
        if checkpoints_table is not None
        else (CHECKPOINTS_SCHEMA.empty_table(), [])
    )
    damaged += [f for f in cp_findings if not f.tenant]
    known = sorted(
        {f.tenant for f in all_files}
        | set(cps_all.column("tenant").to_pylist())
        | {f.tenant for f in cp_findings if f.tenant}
    )
    exported: dict[str, list[Checkpoint]] = {}
    since_findings: list[Finding] = []
    for note in since:
        _exported(lake, note, trusted, exported, since_findings)
    wanted = list(tenants) if tenants is not None else sorted(set(known) | set(exported))
    unknown = [t for t in wanted if t not in known and t not in exported]
    if tenants is not None and unknown and not damaged:
        # A misspelt tenant must not make a cron job pass: say so instead of "ok".
        raise UsageError(f"no events or checkpoints for tenant(s): {', '.join(unknown)}")
    files_of: dict[str, list[DataFile]] = {t: [] for t in wanted}
    for data_file in all_files:
        if data_file.tenant in files_of:
            files_of[data_file.tenant].append(data_file)
    events_of = {t: sum(d.num_records or 0 for d in fs) for t, fs in files_of.items()}
    total = sum(events_of.values())
    parallel = runner is None and workers > 1 and total >= PARALLEL_MIN_EVENTS
    # Start the workers' process now: it imports while the log and signatures are read.
    context = process_context("lake.verify") if parallel else None
    published = _published(lake)
    from lake.write import removed_ranges

    try:
        removed = removed_ranges(lake)
    except READ_ERRORS:
        removed = {}  # the unreadable file is reported with its tenant's findings
    reports = {t: TenantReport(t) for t in wanted}
    for f in cp_findings:
        if f.tenant in reports:
            reports[f.tenant].add(f)
    if damaged:
        # Without both tables the rows cannot be checked against the signatures (every
        # event would look missing or unsealed): report what is unreadable, and the
        # signatures that can still be read.
        for t in wanted:
            reports[t].events = events_of[t]
            cps = check_signatures(
                lake,
                t,
                cps_all.filter(pc.equal(cps_all.column("tenant"), t)),
                trusted,
                published,
                reports[t],
                windows,
            )
            reports[t].checkpoints = len(cps)
            reports[t].sealed_size = max((c.size for c in cps), default=0)
            reports[t].key_names = sorted({c.key_name for c in cps})
        wanted_steps: list[str] = []
    else:
        wanted_steps = wanted
    steps = {
        t: _tenant_steps(
            lake,
            t,
            files_of[t],
            cps_all.filter(pc.equal(cps_all.column("tenant"), t)),
            trusted,
            published,
            exported.get(t, []),
            reports[t],
            removed.get(t, []),
            windows,
            range_events,
        )
        # largest first, so that the big tenants do not finish last on a busy pool
        for t in sorted(wanted_steps, key=lambda t: -events_of[t])
    }
    if runner is not None:
        drive(steps, runner, events_of, total, progress)
    elif context is not None:
        # One process per core: leaf and tree hashing hold the GIL.
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            drive(steps, PoolRunner(pool), events_of, total, progress)
    else:
        drive(steps, InlineRunner(), events_of, total, progress)
    for tenant in wanted:
        tr = reports[tenant]
        # An id is used once per tenant, whatever the date: two stored events under one id
        # (each authentic) make `prove ID` ambiguous.
        for event_id, seqs in repeated_ids(lake, files_of[tenant]):
            message = f"id used by {len(seqs)} stored events (seq {', '.join(map(str, seqs))})"
            last = seqs[-1] if seqs else None
            tr.add(Finding(tenant, "duplicate", message, seq=last, event_id=event_id))
        for f in since_findings:
            if f.tenant == tenant:
                tr.add(f)
        report.tenants.append(tr)
    if witness_keys or min_witnesses:
        for tr in report.tenants:
            cps = cps_all.filter(pc.equal(cps_all.column("tenant"), tr.tenant))
            _check_witnesses(lake, tr, cps, witness_keys, min_witnesses)
    for f in since_findings:
        if f.tenant not in set(wanted) and tenants is None:
            tr = TenantReport(f.tenant)
            tr.add(f)
            report.tenants.append(tr)
    return report


# -- engines ----------------------------------------------------------------------------------


class TaskRunner(Protocol):
    """Where range tasks run: in this process, a process pool, a Ray cluster..."""

    def submit(self, task: RangeTask) -> Any:
        """Start a task; returns a handle."""

    def wait(self, handles: list[Any]) -> list[Any]:
        """Block until at least one of the handles is done; return the done ones."""

    def result(self, handle: Any) -> RangeResult:
        """The result of a done task (its exception, if it raised)."""


class _Done:
    __slots__ = ("result",)

    def __init__(self, result: RangeResult) -> None:
        self.result = result


class InlineRunner:
    """Runs each task at once, in this process."""

    def submit(self, task: RangeTask) -> Any:
        return _Done(run_task(task))

    def wait(self, handles: list[Any]) -> list[Any]:
        return handles

    def result(self, handle: Any) -> RangeResult:
        assert isinstance(handle, _Done)
        return handle.result


class PoolRunner:
    """Runs tasks in a `concurrent.futures` executor (a process pool)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(self, task: RangeTask) -> Any:
        return self.pool.submit(run_task, task)

    def wait(self, handles: list[Any]) -> list[Any]:
        return list(wait_futures(handles, return_when=FIRST_COMPLETED).done)

    def result(self, handle: Any) -> RangeResult:
        assert isinstance(handle, Future)
        out = handle.result()
        assert isinstance(out, RangeResult)
        return out


def drive(
    steps: Mapping[str, Steps],
    runner: TaskRunner,
    events_of: Mapping[str, int],
    total: int,
    progress: Progress | None,
) -> None:
    """Run every tenant's steps to the end, each round of tasks as soon as it is asked for.

    Tenants move independently: one tenant's second round (if it needs one) starts while
    the others' first rounds still run.
    """
    waiting: dict[Any, tuple[str, int]] = {}
    batches: dict[str, list[RangeResult | None]] = {}
    counted = dict.fromkeys(steps, 0)
    done = 0

    def advance(tenant: str, results: list[RangeResult] | None) -> None:
        nonlocal done
        try:
            tasks = steps[tenant].send(results)  # type: ignore[arg-type]
        except StopIteration:
            done += events_of.get(tenant, 0) - counted[tenant]
            counted[tenant] = events_of.get(tenant, 0)
            if progress:
                progress(min(done, total), total)
            return
        batches[tenant] = [None] * len(tasks)
        for i, task in enumerate(tasks):
            waiting[runner.submit(task)] = (tenant, i)

    for tenant in steps:
        advance(tenant, None)
        while tenant in batches and not batches[tenant]:  # a round of no tasks
            del batches[tenant]
            advance(tenant, [])
    while waiting:
        for handle in runner.wait(list(waiting)):
            tenant, i = waiting.pop(handle)
            result = runner.result(handle)
            batch = batches[tenant]
            batch[i] = result
            step = min(result.rows, events_of.get(tenant, 0) - counted[tenant])
            if step > 0 and progress:
                counted[tenant] += step
                done += step
                progress(min(done, total), total)
            if all(r is not None for r in batch):
                del batches[tenant]
                advance(tenant, [r for r in batch if r is not None])
                while tenant in batches and not batches[tenant]:
                    del batches[tenant]
                    advance(tenant, [])


# -- range tasks --------------------------------------------------------------------------------

Pos = tuple[int, int]  # (the file's position in the tenant's file list, row in the file)


@dataclass(frozen=True)
class RangeTask:
    """One piece of one tenant's check; picklable, so an engine may run it anywhere.

    `mode`: "tiles" checks rows against the stored level-0 tiles and returns the tiles'
    subtree hashes; "rows" (no usable tiles) returns the rows' own subtree hashes;
    "homes" finds where leaves with the `wanted` hashes sit in the tiles. The range holds
    the leaves [start, stop); the first range (start 0) also takes rows with a negative
    seq, and stop None means unbounded. `bits` is log2 of the range size; None means one
    range for the whole tenant (no statistics are trusted then).
    """

    lake: Lake
    tenant: str
    mode: str
    start: int
    stop: int | None
    bits: int | None
    files: tuple[tuple[int, DataFile], ...] = ()
    sealed: int = 0
    sizes: tuple[int, ...] = ()
    wanted: tuple[bytes, ...] = ()


@dataclass
class Pending:
    """A row that matches no sealed leaf at its seq: reordered if its leaf is elsewhere."""

    leaf: bytes
    where: dict[str, Any]


@dataclass
class RangeResult:
    """What one range task found and the subtree hashes the driver needs."""

    start: int
    rows: int = 0
    top: int = 0  # max seq + 1 over the range's rows (0 when none)
    negative: bool = False
    fallback: str | None = None  # why the tenant must be checked as one range
    tile_error: str | None = None
    tile_file: str | None = None  # the level-0 tile that failed, relative to the lake
    unreadable: list[tuple[int, str, Finding]] = field(default_factory=list)
    misplaced: list[tuple[Pos, Finding]] = field(default_factory=list)
    mismatch: list[tuple[Pos, Finding | None]] = field(default_factory=list)
    dup: list[tuple[Any, Finding]] = field(default_factory=list)
    bad: list[tuple[Pos, Finding | Pending]] = field(default_factory=list)
    absent: list[tuple[int, int]] = field(default_factory=list)  # runs, both ends included
    impossible: list[tuple[Pos, Finding]] = field(default_factory=list)
    beyond: dict[str | None, tuple[int, int]] = field(default_factory=dict)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    levels: dict[int, bytes] = field(default_factory=dict)
    homes: dict[bytes, int] = field(default_factory=dict)


def run_task(task: RangeTask) -> RangeResult:
    """Run one range task (top-level so that process pools and Ray can ship it)."""
    try:
        if task.mode == "homes":
            return _find_homes(task)
        return _check_range(task)
    finally:
        # Hand the task's freed Arrow buffers back to the OS: Arrow's allocator (mimalloc)
        # keeps them, and a worker's resident memory crept with every task it ran (one
        # process over the 80 tasks of a 10M lake: 572 -> 667 MB peak, 600 MB between
        # tasks; with this 524 MB peak, 330 MB between tasks).
        pa.default_memory_pool().release_unused()


def _tile_leaves(tiles: TileLog, first: int, last: int, sealed: int) -> bytes:
    """Level-0 tile hashes of leaves [first, last) of the tree of `sealed` leaves.

    `first` is a multiple of the tile width; tiles are read with the widths a read of the
    whole level would use, so a missing or short tile fails with the same message.
    """
    out = []
    for index in range(first // TILE_WIDTH, -(-last // TILE_WIDTH)):
        width = min(TILE_WIDTH, sealed - index * TILE_WIDTH)
        try:
            out.append(tiles.read(0, index, width))
        except (StorageError, OSError) as exc:
            raise _TileError(str(exc), tile_path(tiles.tenant, 0, index, width)) from None
    return b"".join(out)


class _TileError(StorageError):
    """A level-0 tile that cannot be read, with its path in the lake."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _find_homes(task: RangeTask) -> RangeResult:
    out = RangeResult(task.start)
    last = task.sealed if task.stop is None else min(task.stop, task.sealed)
    if last <= task.start:
        return out
    leaves = np.frombuffer(
        _tile_leaves(TileLog(task.lake, task.tenant), task.start, last, task.sealed), np.uint8
    ).reshape(-1, 32)
    wanted = set(task.wanted)
    heads = np.frombuffer(b"".join(w[:8] for w in wanted), np.uint64)
    near = np.flatnonzero(np.isin(np.ascontiguousarray(leaves[:, :8]).view(np.uint64), heads))
    for k in near:  # ascending: a leaf sealed twice keeps its last seq, as a dict would
        leaf = leaves[k].tobytes()
        if leaf in wanted:
            out.homes[leaf] = task.start + int(k)
    return out


def _read_range(task: RangeTask, out: RangeResult) -> tuple[pa.Table | None, np.ndarray]:
    """The range's rows and their positions, files read concurrently (decoding drops the GIL)."""
    lake, tenant = task.lake, task.tenant

    def one(item: tuple[int, DataFile]) -> pa.Table | Finding:
        f = item[1]
        try:
            return lake.read_file(f, ROW_COLUMNS)
        except (OSError, pa.ArrowException, LakeError) as exc:
            reason = (
                "is missing" if isinstance(exc, FileNotFoundError) else f"is unreadable ({exc})"
            )
            rel = paths.table_file(paths.EVENTS, f.path)
            return Finding(tenant, "unreadable_file", f"data file {rel} {reason}", file=rel)

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        results = list(pool.map(one, task.files))
    parts, where = [], []
    for (position, f), got in zip(task.files, results, strict=True):
        if isinstance(got, Finding):
            out.unreadable.append((position, f.path, got))
            continue
        if task.bits is None:
            parts.append(got)
            where.append(np.stack([np.full(got.num_rows, position), np.arange(got.num_rows)], 1))
            continue
        column = got.column("seq")
        seq = column.to_numpy(zero_copy_only=False)
        if column.null_count or (
            len(seq) and (seq.min() < (f.min_seq or 0) or seq.max() > (f.max_seq or 0))
        ):
            out.fallback = f"data file {f.path} holds seqs outside its statistics"
            return None, np.zeros((0, 2), np.int64)
        keep = seq < task.stop if task.stop is not None else np.ones(len(seq), bool)
        if task.start > 0:
            keep &= seq >= task.start
        rows = np.flatnonzero(keep)
        parts.append(got.take(pa.array(rows)) if len(rows) < got.num_rows else got)
        where.append(np.stack([np.full(len(rows), position), rows], 1))
    if not parts:
        return None, np.zeros((0, 2), np.int64)
    try:
        table = pa.concat_tables(parts, promote_options="permissive")
    except pa.ArrowException as exc:
        if task.bits is not None:
            out.fallback = "data files do not share a schema"
        else:
            out.unreadable.append(
                (
                    len(task.files),
                    "",
                    Finding(tenant, "unreadable_file", f"data files do not share a schema ({exc})"),
                )
            )
        return None, np.zeros((0, 2), np.int64)
    return table, np.concatenate(where).astype(np.int64)


def _check_range(task: RangeTask) -> RangeResult:
    tenant, start = task.tenant, task.start
    out = RangeResult(start)
    rows, where = _read_range(task, out)
    if out.fallback:
        return out
    n = rows.num_rows if rows is not None else 0
    out.rows = n
    if rows is not None and n:
        computed = np.frombuffer(hash_leaves(rows.select(list(LEAF_FIELDS))), np.uint8).reshape(
            n, 32
        )
        stored = _hash_matrix(rows.column("leaf_hash"))
        seq = rows.column("seq").to_numpy(zero_copy_only=False).astype(np.int64)
        event_ids = rows.column("event_id")
        batches = rows.column("batch_id")
        out.misplaced = [(_pos(where, i), f) for i, f in _misplaced(rows, tenant)]
    else:
        computed = np.zeros((0, 32), np.uint8)
        stored = computed
        seq = np.zeros(0, np.int64)
        event_ids = pa.array([], pa.string())
        batches = pa.array([], pa.string())
    out.top = int(seq.max()) + 1 if n else 0
    out.negative = bool(n and seq.min() < 0)

    def locate(i: int) -> dict[str, Any]:
        return {
            "seq": int(seq[i]),
            "event_id": event_ids[i].as_py(),
            "batch_id": batches[i].as_py(),
        }

    sealed = task.sealed
    beyond = np.flatnonzero(seq >= sealed)
    if len(beyond):
        found = Counter(batches[int(i)].as_py() for i in beyond)
        for batch_id, count in found.items():
            first = int(min(seq[i] for i in beyond if batches[int(i)].as_py() == batch_id))
            out.beyond[batch_id] = (count, first)

    if task.mode == "rows":
        _rows_tree(task, out, seq, computed, locate, where)
        return out

    last = sealed if task.stop is None else min(task.stop, sealed)
    try:
        leaves = _tile_leaves(TileLog(task.lake, tenant), start, last, sealed)
    except (StorageError, OSError) as exc:
        out.tile_error = str(exc)
        out.tile_file = exc.path if isinstance(exc, _TileError) else None
        return out
    _export_nodes(out, MerkleLevels.from_concatenated(leaves), task, tiles=True)
    expected = np.frombuffer(leaves, np.uint8).reshape(-1, 32)

    # Rows whose stored leaf_hash is not the hash of the row itself.
    for i in np.flatnonzero((computed != stored).any(axis=1))[: MAX_FINDINGS_PER_KIND * 4]:
        s = int(seq[i])
        ok = start <= s < last and bool((computed[i] == expected[s - start]).all())
        finding = (
            Finding(tenant, "modified", "stored leaf_hash does not match the row", **locate(int(i)))
            if ok
            else None  # reported below against the expected leaf
        )
        out.mismatch.append((_pos(where, int(i)), finding))

    inside = (seq >= start) & (seq < last)
    idx = np.flatnonzero(inside)
    match = np.zeros(len(seq), dtype=bool)
    match[idx] = (computed[idx] == expected[seq[idx] - start]).all(axis=1)
    width = max(last - start, 0)
    counts = np.bincount(seq[match] - start, minlength=width) if width else np.zeros(0, np.int64)
    # duplicates: more than one authentic copy of a seq
    if (counts > 1).any():
        seen: set[int] = set()
        for i in np.flatnonzero(match):
            s = int(seq[i])
            if counts[s - start] > 1:
                if s in seen:
                    out.dup.append(
                        (
                            _pos(where, int(i)),
                            Finding(
                                tenant,
                                "duplicate",
                                "event is stored more than once",
                                **locate(int(i)),
                            ),
                        )
                    )
                seen.add(s)
    for i in np.flatnonzero(inside & ~match):
        s = int(seq[i])
        if counts[s - start] >= 1:
            item: Finding | Pending = Finding(
                tenant,
                "inserted",
                "a row claims a seq that already holds an authentic event",
                **locate(int(i)),
            )
        else:
            item = Pending(computed[i].tobytes(), locate(int(i)))
        out.bad.append((_pos(where, int(i)), item))
    present = np.zeros(width, dtype=bool)
    present[seq[inside] - start] = True
    out.absent = _runs(np.flatnonzero(~present) + start)
    for i in np.flatnonzero(~inside & (seq < 0))[:5]:
        s = int(seq[i])
        out.impossible.append(
            (
                _pos(where, int(i)),
                Finding(tenant, "inserted", f"a row has an impossible seq {s}", seq=s),
            )
        )
    return out


def _rows_tree(
    task: RangeTask,
    out: RangeResult,
    seq: np.ndarray,
    computed: np.ndarray,
    locate: Callable[[int], dict[str, Any]],
    where: np.ndarray,
) -> None:
    """No trustworthy tiles: the range's duplicate seqs, gaps and the tree of its rows."""
    start = task.start
    order = np.argsort(seq, kind="stable")
    s_sorted = seq[order]
    for k in np.flatnonzero(np.diff(s_sorted) == 0) + 1:
        i = int(order[k])
        finding = Finding(task.tenant, "duplicate", "two rows share one seq", **locate(i))
        out.dup.append(((int(seq[i]), _pos(where, i)), finding))
    cap = task.stop if task.stop is not None else max(out.top, task.sealed)
    width = max(cap - start, 0)
    present = np.zeros(width, dtype=bool)
    held = s_sorted[(s_sorted >= start) & (s_sorted < cap)]
    present[held - start] = True
    out.absent = _runs(np.flatnonzero(~present) + start)
    # Gaps past the range's last row may be past the log's end (the last range): the
    # driver decides. A gap before it, or a duplicate, means no tree is rebuilt at all.
    if out.dup or any(lo < out.top for lo, _ in out.absent):
        return
    _export_nodes(out, MerkleLevels.from_concatenated(computed[order].tobytes()), task, tiles=False)


def _export_nodes(out: RangeResult, levels: MerkleLevels, task: RangeTask, *, tiles: bool) -> None:
    """The complete subtrees inside the range that roots and upper tiles need.

    Leaf i of `levels` is leaf start + i of the tenant's tree. Returned: the range's root
    (when full), the frontier nodes of every wanted tree size that ends inside it, and for
    tiles the whole levels 8, 16, ... below the range's top (to check the upper tiles).
    """
    start, bits, m = task.start, task.bits, levels.size
    for size in task.sizes:
        if not start < size <= start + m:
            continue
        for level, index in frontier(size):
            if (bits is None or level < bits) and index << level >= start:
                out.nodes[(level, index)] = levels.node(level, index - (start >> level))
    if bits is not None and m == 1 << bits:
        out.nodes[(bits, start >> bits)] = levels.root()
    if tiles:
        level = TILE_HEIGHT
        while (bits is None or level < bits) and level < levels.height:
            out.levels[level] = levels.level(level)
            level += TILE_HEIGHT


def _pos(where: np.ndarray, i: int) -> Pos:
    return int(where[i, 0]), int(where[i, 1])


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Sorted integers as runs of consecutive values, (first, last)."""
    if not len(values):
        return []
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    return [(int(run[0]), int(run[-1])) for run in np.split(values, breaks)]


class _RangeTree:
    """A tenant's tree assembled from range results: complete nodes and whole tile levels."""

    def __init__(self, size: int, bits: int | None, results: Sequence[RangeResult]) -> None:
        self.size = size
        self.bits = bits
        self.nodes: dict[tuple[int, int], bytes] = {}
        for r in results:
            self.nodes.update(r.nodes)
        ordered = sorted(results, key=lambda r: r.start)
        self.parts = {
            level: b"".join(r.levels.get(level, b"") for r in ordered)
            for level in {lv for r in results for lv in r.levels}
        }
        tops = b""
        if bits is not None:
            tops = b"".join(self.nodes[(bits, j)] for j in range(size >> bits))
        self.upper = MerkleLevels.from_concatenated(tops)

    def node(self, level: int, index: int) -> bytes:
        if self.bits is not None and level >= self.bits:
            return self.upper.node(level - self.bits, index)
        return self.nodes[(level, index)]

    def root(self, size: int) -> bytes:
        return tree_root(size, self.node)

    def level(self, level: int) -> bytes:
        if self.bits is not None and level >= self.bits:
            return self.upper.level(level - self.bits)
        return self.parts.get(level, b"")


Steps = Generator[list[RangeTask], list[RangeResult], None]
_Plan = list[tuple[int, int | None, int | None, list[tuple[int, DataFile]]]]


def _plan(files: Sequence[DataFile], sealed: int, range_events: int) -> _Plan:
    """Ranges of 2**bits seqs covering the sealed log and every file's seq statistics.

    One range for the whole tenant when that is all there is, or when the statistics
    cannot place the files (missing, or absurdly wide).
    """
    whole: _Plan = [(0, None, None, list(enumerate(files)))]
    bits = max(TILE_HEIGHT, range_events.bit_length() - 1)
    size = 1 << bits
    if any(f.min_seq is None or f.max_seq is None for f in files):
        return whole
    # A forged statistic must not make us plan a range per seq up to 2**63.
    budget = (sum(f.num_records or 0 for f in files) + sealed) // size + 2 * len(files) + 2
    ranges: dict[int, list[tuple[int, DataFile]]] = {j: [] for j in range(-(-sealed // size))}
    for position, f in enumerate(files):
        first, last = max(f.min_seq or 0, 0) // size, max(f.max_seq or 0, 0) // size
        if last - first > budget:
            return whole
        for j in range(first, last + 1):
            ranges.setdefault(j, []).append((position, f))
        if len(ranges) > budget:
            return whole
    if len(ranges) <= 1:
        return whole
    return [(j * size, (j + 1) * size, bits, ranges[j]) for j in sorted(ranges)]


def _tenant_steps(
    lake: Lake,
    tenant: str,
    files: list[DataFile],
    cps_table: pa.Table,
    trusted: Sequence[VerifierKey],
    published: Sequence[VerifierKey],
    exported: list[Checkpoint],
    tr: TenantReport,
    removed: Sequence[tuple[int, int]] = (),
    windows: Mapping[str, KeyWindow] | None = None,
    range_events: int = RANGE_EVENTS,
) -> Steps:
    """One tenant's check as rounds of range tasks; fills `tr` in a single pass's order.

    The driver sends each round's results back in; most tenants need one round, a tenant
    whose tiles do not vouch for the checkpoints a second one (rows), and rows that match
    no sealed leaf at their seq a lookup of their leaves in the tiles (homes).
    """
    cps = check_signatures(lake, tenant, cps_table, trusted, published, tr, windows)
    tr.checkpoints = len(cps)
    tr.key_names = sorted({c.key_name for c in cps})
    sealed = max((c.size for c in cps), default=0)
    tr.sealed_size = sealed
    sizes = tuple(sorted({c.size for c in cps} | {e.tree_size for e in exported} | {sealed}))
    plan = _plan(files, sealed, range_events)

    def tasks(mode: str, wanted: tuple[bytes, ...] = ()) -> list[RangeTask]:
        return [
            RangeTask(lake, tenant, mode, start, stop, bits, tuple(fs), sealed, sizes, wanted)
            if mode != "homes"
            else RangeTask(lake, tenant, mode, start, stop, bits, (), sealed, (), wanted)
            for start, stop, bits, fs in plan
        ]

    def whole() -> None:
        nonlocal plan
        plan = [(0, None, None, list(enumerate(files)))]

    mode = "tiles" if sealed else "rows"
    results = (yield tasks(mode)) if files or sealed else []
    if any(r.fallback for r in results):
        whole()
        results = yield tasks(mode)
    results.sort(key=lambda r: r.start)
    _add_read_findings(results, tr)
    n = sum(r.rows for r in results)
    tr.events = n
    bits = plan[0][2]

    tree: _RangeTree | None = None
    if sealed:
        failed = next((r for r in results if r.tile_error), None)
        if failed is not None:
            why = f"stored hash tiles are unusable ({failed.tile_error})"
            tr.add(Finding(tenant, "bad_tiles", why, file=failed.tile_file))
        else:
            tree = _RangeTree(sealed, bits, results)
            if all(tree.root(c.size) == c.root for c in cps):
                try:
                    _check_upper_tiles(tenant, TileLog(lake, tenant), tree, sealed, tr)
                except (StorageError, OSError) as exc:
                    tr.add(Finding(tenant, "bad_tiles", f"stored hash tiles are unusable ({exc})"))
            else:
                tr.add(
                    Finding(
                        tenant,
                        "bad_tiles",
                        "stored hash tiles disagree with the signed checkpoints",
                    )
                )
                tree = None

    if tree is not None:
        mismatch = sorted((x for r in results for x in r.mismatch), key=lambda x: x[0])
        for _, finding in mismatch[: MAX_FINDINGS_PER_KIND * 4]:
            if finding is not None:
                tr.add(finding)
        for _, finding in sorted((x for r in results for x in r.dup), key=lambda x: x[0]):
            tr.add(finding)
        bad = sorted((x for r in results for x in r.bad), key=lambda x: x[0])
        wanted = tuple(sorted({b.leaf for _, b in bad if isinstance(b, Pending)}))
        homes: dict[bytes, int] = {}
        if wanted:
            for r in (yield tasks("homes", wanted)):
                for leaf, home in r.homes.items():
                    homes[leaf] = max(home, homes.get(leaf, home))
        for _, item in bad:
            if isinstance(item, Finding):
                tr.add(item)
            elif item.leaf in homes:
                tr.add(
                    Finding(
                        tenant,
                        "reordered",
                        f"event is stored at seq {item.where['seq']} but was sealed at seq "
                        f"{homes[item.leaf]}",
                        **item.where,
                    )
                )
            else:
                tr.add(
                    Finding(
                        tenant, "modified", "event content differs from what was sealed",
                        **item.where,
                    )
                )  # fmt: skip
        _report_missing_runs(tenant, _lawful_gaps(results, plan, sealed, removed), tr)
        impossible = sorted((x for r in results for x in r.impossible), key=lambda x: x[0])
        for _, finding in impossible[:5]:
            tr.add(finding)
    else:
        if sealed and files:
            results = sorted((yield tasks("rows")), key=lambda r: r.start)
        if n and bits is not None and any(r.negative for r in results):
            whole()  # leaves of a tree rebuilt from rows are rows in order, not seqs
            results = yield tasks("rows")
            bits = None
        tree = _compare_ranges_without_tiles(tenant, n, results, plan, bits, cps, tr, removed)

    beyond: dict[str | None, tuple[int, int]] = {}
    for r in results:
        for batch_id, (count, first) in r.beyond.items():
            was = beyond.get(batch_id)
            beyond[batch_id] = (
                (count, first) if was is None else (was[0] + count, min(was[1], first))
            )
    for batch_id, (count, first) in sorted(beyond.items(), key=lambda kv: str(kv[0])):
        tr.add(
            Finding(
                tenant,
                "unsealed",
                f"{count} event(s) from seq {first} are not covered by any signed checkpoint",
                seq=first,
                batch_id=batch_id,
            )
        )

    for cp in exported:
        if cp.tree_size > sealed:
            tr.add(
                Finding(
                    tenant,
                    "rollback",
                    f"an exported checkpoint has {cp.tree_size} events but the lake's log is "
                    f"sealed at {sealed}: newer batches were removed",
                    tree_size=cp.tree_size,
                )
            )
        elif tree is None or tree.root(cp.tree_size) != cp.root_hash:
            tr.add(
                Finding(
                    tenant,
                    "rollback",
                    f"the lake's log at size {cp.tree_size} differs from the exported checkpoint",
                    tree_size=cp.tree_size,
                )
            )


def _add_read_findings(results: Sequence[RangeResult], tr: TenantReport) -> None:
    """Unreadable files (each once, in file order), then misplaced rows in row order."""
    seen: set[str] = set()
    for _, path, finding in sorted((x for r in results for x in r.unreadable), key=lambda x: x[0]):
        if path and path in seen:
            continue
        seen.add(path)
        tr.add(finding)
    for _, finding in sorted((x for r in results for x in r.misplaced), key=lambda x: x[0]):
        tr.add(finding)


def _gaps(results: Sequence[RangeResult], plan: _Plan, bound: int) -> list[tuple[int, int]]:
    """Seqs in [0, bound) that no row holds, as runs: the ranges' own, and unplanned ranges."""
    runs: list[tuple[int, int]] = []
    covered = 0
    by_start = {r.start: r for r in results}
    for start, stop, _, _ in plan:
        if start > covered:
            runs.append((covered, start - 1))
        r = by_start.get(start)
        if r is not None:
            runs += r.absent
        elif stop is not None:  # a range past the sealed log without files: nothing there
            runs.append((start, stop - 1))
        covered = stop if stop is not None else max(bound, start)
    if bound > covered:
        runs.append((covered, bound - 1))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        hi = min(hi, bound - 1)
        if lo > hi:
            continue
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _lawful_gaps(
    results: Sequence[RangeResult],
    plan: _Plan,
    bound: int,
    removed: Sequence[tuple[int, int]],
) -> list[tuple[int, int]]:
    """Gaps not explained by a signed retention record: the missing events."""
    out = []
    cuts = sorted((max(lo, 0), hi) for lo, hi in removed if hi >= lo)
    for lo, hi in _gaps(results, plan, bound):
        cur = lo
        for c_lo, c_hi in cuts:
            if c_hi < cur or c_lo > hi:
                continue
            if c_lo > cur:
                out.append((cur, c_lo - 1))
            cur = max(cur, c_hi + 1)
        if cur <= hi:
            out.append((cur, hi))
    merged: list[tuple[int, int]] = []
    for lo, hi in out:
        if merged and lo == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _compare_ranges_without_tiles(
    tenant: str,
    n: int,
    results: Sequence[RangeResult],
    plan: _Plan,
    bits: int | None,
    cps: list[SealedCheckpoint],
    tr: TenantReport,
    removed: Sequence[tuple[int, int]],
) -> _RangeTree | None:
    """No trustworthy tiles: rebuild the log from rows in seq order and compare roots."""
    if not n:
        for c in cps:
            if c.size:
                _report_missing_runs(tenant, [(0, c.size - 1)], tr)
                break
        return None
    dups = sorted((x for r in results for x in r.dup), key=lambda x: x[0])
    for _, finding in dups:
        tr.add(finding)
    top = max(r.top for r in results if r.rows)
    sealed = max((c.size for c in cps), default=0)
    bound = max(top, sealed)
    _report_missing_runs(tenant, _lawful_gaps(results, plan, bound, removed), tr)
    if dups or _gaps(results, plan, bound):
        return None  # removed rows cannot be re-hashed: the roots need the tiles
    levels = _RangeTree(n, bits, results)
    for c in cps:
        if c.size <= levels.size and levels.root(c.size) != c.root:
            tr.add(
                Finding(
                    tenant,
                    "root_mismatch",
                    f"the events do not hash to the signed root of size {c.size}",
                    tree_size=c.size,
                    batch_id=c.batch_id,
                )
            )
    return levels


def _published(lake: Lake) -> list[VerifierKey]:
    out = []
    for text in lake.published_keys:
        try:
            out.append(VerifierKey.parse(text))
        except NoteError:
            continue
    return out


def _exported(
    lake: Lake,
    note: str,
    trusted: Sequence[VerifierKey],
    out: dict[str, list[Checkpoint]],
    findings: list[Finding],
) -> None:
    try:
        text, _ = parse_note(note)
        cp = Checkpoint.parse(text)
    except NoteError as exc:
        raise NoteError(f"--since-checkpoint: not a signed checkpoint ({exc})") from None
    tenant = _origin_tenant(lake, cp.origin)
    if tenant is None:
        raise NoteError(
            f"--since-checkpoint: origin {cp.origin!r} is not a log of lake {lake.name!r}"
        )
    try:
        verify_note(note, trusted)
    except NoteError as exc:
        findings.append(
            Finding(
                tenant,
                "bad_signature",
                f"exported checkpoint does not verify: {exc}",
                tree_size=cp.tree_size,
            )
        )
        return
    out.setdefault(tenant, []).append(cp)


class _Levels(Protocol):
    def level(self, level: int) -> bytes: ...


def _check_upper_tiles(
    tenant: str, tiles: TileLog, levels: _Levels, size: int, tr: TenantReport
) -> None:
    """Stored tiles above the leaves must match the rebuilt tree: `prove` reads them."""
    tile_level = 1
    while size >> (TILE_HEIGHT * tile_level):
        count = size >> (TILE_HEIGHT * tile_level)
        stored = tiles.entries(tile_level, size)
        if stored != levels.level(TILE_HEIGHT * tile_level)[: count * 32]:
            tr.add(
                Finding(
                    tenant,
                    "bad_tiles",
                    f"stored hash tiles at level {tile_level} differ from the tree rebuilt "
                    "from the leaves; proofs that read them would fail",
                    tree_size=size,
                )
            )
        tile_level += 1


def _hash_matrix(column: pa.ChunkedArray) -> np.ndarray:
    return np.frombuffer(hashes_to_bytes(column), np.uint8).reshape(-1, 32)


def _misplaced(rows: pa.Table, tenant: str) -> list[tuple[int, Finding]]:
    """Rows stored in the partition of another date than their time's, by row index."""
    day = pc.cast(rows.column("time"), pa.date32())
    wrong = pc.not_equal(day, rows.column("event_date"))
    if not pc.any(wrong).as_py():
        return []
    return [
        (
            int(i),
            Finding(
                tenant,
                "misplaced",
                "event is stored in the partition of another date",
                seq=rows.column("seq")[int(i)].as_py(),
                event_id=rows.column("event_id")[int(i)].as_py(),
            ),
        )
        for i in np.flatnonzero(wrong.to_numpy(zero_copy_only=False))
    ]


def _report_missing_runs(tenant: str, runs: Iterable[tuple[int, int]], tr: TenantReport) -> None:
    for lo, hi in runs:
        what = f"seq {lo}" if lo == hi else f"seq {lo}..{hi} ({hi - lo + 1} events)"
        tr.add(Finding(tenant, "missing", f"{what} missing from the lake", seq=lo))


def _check_witnesses(
    lake: Lake, tr: TenantReport, cps: pa.Table, keys: Sequence[Any], needed: int
) -> None:
    """Cosignatures by trusted witnesses: enough on the latest checkpoint, none conflicting.

    A valid cosignature of a tree head the lake does not hold (another root at a size it
    has: a fork; a size beyond its own: a rollback) means the log showed a witness a
    history it no longer shows.
    """
    from lake.witness import stored_cosignatures

    bodies: dict[int, str] = {}
    for row in cps.to_pylist():
        try:
            bodies[int(row["tree_size"])] = parse_note(row["note"])[0]
        except NoteError:
            continue
    sealed = max(bodies, default=0)
    stored = stored_cosignatures(lake, tr.tenant)
    have: set[str] = set()
    for size, entry in sorted(stored.items()):
        for key in keys:
            line = entry["cosignatures"].get(key.name)
            if line is None:
                continue
            if key.verify(entry["body"], line) is None:
                tr.add(
                    Finding(
                        tr.tenant,
                        "bad_cosignature",
                        f"the stored cosignature of witness {key.name} does not verify",
                        tree_size=size,
                    )
                )
                continue
            lake_body = bodies.get(size)
            if lake_body == entry["body"]:
                if size == sealed:
                    have.add(key.name)
                continue
            what = (
                f"size {size} with another root than the lake's (a fork)"
                if lake_body is not None
                else f"size {size}, beyond the lake's {sealed} (newer batches were removed)"
            )
            tr.add(
                Finding(
                    tr.tenant, "witness_conflict", f"witness {key.name} cosigned {what}",
                    tree_size=size,
                )
            )  # fmt: skip
    if needed and len(have) < needed:
        tr.add(
            Finding(
                tr.tenant,
                "unwitnessed",
                f"the latest checkpoint (size {sealed}) has {len(have)} valid witness "
                f"cosignature(s); {needed} required",
                tree_size=sealed,
            )
        )


VERIFY_LOG: Final = paths.VERIFY_LOG


def record_report(lake: Lake, report: Report, *, by: str) -> None:
    """Remember each tenant's latest full verification (time, who, result) in the lake.

    For display only (dashboard, status): a record inside the lake proves nothing, since
    whoever can write the lake could forge it; `verify` itself is the proof.
    """
    try:
        doc = orjson.loads(lake.read_bytes(VERIFY_LOG))
        if not isinstance(doc, dict):
            doc = {}
    except (FileNotFoundError, orjson.JSONDecodeError):
        doc = {}
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A table that could not be read leaves every tenant unchecked: none of them is ok.
    lake_wide = report.lake_findings
    for t in report.tenants:
        doc[t.tenant] = {
            "verified_at": at,
            "by": by,
            "ok": t.ok and not lake_wide,
            "events": t.events,
            "sealed_size": t.sealed_size,
            "findings": len(t.findings) + sum(t.suppressed.values()) + len(lake_wide),
            "kinds": sorted({f.kind for f in [*t.findings, *lake_wide]} | set(t.suppressed)),
        }
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    lake.write_bytes(VERIFY_LOG, text)


def last_reports(lake: Lake) -> dict[str, dict[str, Any]]:
    """Per tenant, the latest recorded verification (see `record_report`)."""
    try:
        doc = orjson.loads(lake.read_bytes(VERIFY_LOG))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}
