"""Range tasks: the row work of one tenant's check over one aligned range of `seq`.

A task reads only the data files whose seq statistics meet its range (2**k events, k >= 8
so a range is whole tiles), recomputes every leaf from the stored row, checks what it can
see alone (rows against the stored level-0 tiles, duplicates, dates, gaps) and returns
the hashes of the complete subtrees inside its range that the driver needs
(`lake.verify._tenant`). Tasks are picklable and `run_task` is top-level, so an engine
may run them anywhere (`lake.verify._engines`, `lake.verify._ray`); memory is bounded by
the range size, not by the tenant.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import LEAF_FIELDS, LakeError, StorageError, hash_leaves, hashes_to_bytes
from lake.log import TILE_HEIGHT, TILE_WIDTH, MerkleLevels, TileLog, frontier, tile_path
from lake.storage import DataFile, Lake, paths
from lake.verify._report import MAX_FINDINGS_PER_KIND, Finding, FindingKind

READ_THREADS = 4
# Events per range task (rounded down to a power of two, at least one tile of 256).
RANGE_EVENTS = 1 << 17
ROW_COLUMNS = [*LEAF_FIELDS, "event_date", "seq", "batch_id", "leaf_hash"]


class RangeMode(StrEnum):
    """What a range task does."""

    TILES = "tiles"  # check rows against the stored level-0 tiles, return the tiles' subtrees
    ROWS = "rows"  # no usable tiles: return the subtrees of the rows' own leaves
    HOMES = "homes"  # find where leaves with the `wanted` hashes sit in the tiles


Pos = tuple[int, int]  # (the file's position in the tenant's file list, row in the file)


@dataclass(frozen=True)
class RangeTask:
    """One piece of one tenant's check; picklable, so an engine may run it anywhere.

    `mode` says what the task does (`RangeMode`). The range holds the leaves
    [start, stop); the first range (start 0) also takes rows with a negative seq, and
    stop None means unbounded. `bits` is log2 of the range size; None means one
    range for the whole tenant (no statistics are trusted then).
    """

    lake: Lake
    tenant: str
    mode: RangeMode
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
        if task.mode is RangeMode.HOMES:
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
            return Finding(
                tenant, FindingKind.UNREADABLE_FILE, f"data file {rel} {reason}", file=rel
            )

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
                    Finding(
                        tenant,
                        FindingKind.UNREADABLE_FILE,
                        f"data files do not share a schema ({exc})",
                    ),
                )
            )
        return None, np.zeros((0, 2), np.int64)
    return table, np.concatenate(where).astype(np.int64)


@dataclass
class _Rows:
    """A range's rows as arrays: recomputed and stored leaves, seqs, and where each sits."""

    computed: np.ndarray  # (n, 32) leaf hashes recomputed from the rows
    stored: np.ndarray  # (n, 32) the stored leaf_hash column
    seq: np.ndarray
    event_ids: pa.Array | pa.ChunkedArray
    batches: pa.Array | pa.ChunkedArray
    where: np.ndarray  # Pos of each row

    @classmethod
    def of(cls, rows: pa.Table | None, where: np.ndarray) -> _Rows:
        if rows is None or not rows.num_rows:
            none = np.zeros((0, 32), np.uint8)
            empty = pa.array([], pa.string())
            return cls(none, none, np.zeros(0, np.int64), empty, empty, where)
        leaves = hash_leaves(rows.select(list(LEAF_FIELDS)))
        return cls(
            np.frombuffer(leaves, np.uint8).reshape(rows.num_rows, 32),
            _hash_matrix(rows.column("leaf_hash")),
            rows.column("seq").to_numpy(zero_copy_only=False).astype(np.int64),
            rows.column("event_id"),
            rows.column("batch_id"),
            where,
        )

    def locate(self, i: int) -> dict[str, Any]:
        """Where row i is, as Finding fields."""
        return {
            "seq": int(self.seq[i]),
            "event_id": self.event_ids[i].as_py(),
            "batch_id": self.batches[i].as_py(),
        }

    def pos(self, i: int) -> Pos:
        return _pos(self.where, i)


def _check_range(task: RangeTask) -> RangeResult:
    out = RangeResult(task.start)
    table, where = _read_range(task, out)
    if out.fallback:
        return out
    rows = _Rows.of(table, where)
    n = len(rows.seq)
    out.rows = n
    if table is not None and n:
        out.misplaced = [(_pos(where, i), f) for i, f in _misplaced(table, task.tenant)]
    out.top = int(rows.seq.max()) + 1 if n else 0
    out.negative = bool(n and rows.seq.min() < 0)
    _note_beyond(out, rows, task.sealed)
    if task.mode is RangeMode.ROWS:
        _rows_tree(task, out, rows)
        return out
    last = task.sealed if task.stop is None else min(task.stop, task.sealed)
    try:
        leaves = _tile_leaves(TileLog(task.lake, task.tenant), task.start, last, task.sealed)
    except (StorageError, OSError) as exc:
        out.tile_error = str(exc)
        out.tile_file = exc.path if isinstance(exc, _TileError) else None
        return out
    _export_nodes(out, MerkleLevels.from_concatenated(leaves), task, tiles=True)
    expected = np.frombuffer(leaves, np.uint8).reshape(-1, 32)
    _compare_with_tiles(task, out, rows, expected, last)
    return out


def _note_beyond(out: RangeResult, rows: _Rows, sealed: int) -> None:
    """Rows past the sealed log, per batch: (how many, first seq)."""
    seq, batches = rows.seq, rows.batches
    beyond = np.flatnonzero(seq >= sealed)
    if len(beyond):
        found = Counter(batches[int(i)].as_py() for i in beyond)
        for batch_id, count in found.items():
            first = int(min(seq[i] for i in beyond if batches[int(i)].as_py() == batch_id))
            out.beyond[batch_id] = (count, first)


def _compare_with_tiles(
    task: RangeTask, out: RangeResult, rows: _Rows, expected: np.ndarray, last: int
) -> None:
    """Each row against the sealed leaf at its seq (`expected` holds leaves [start, last))."""
    tenant, start, seq, computed = task.tenant, task.start, rows.seq, rows.computed
    # Rows whose stored leaf_hash is not the hash of the row itself.
    for i in np.flatnonzero((computed != rows.stored).any(axis=1))[: MAX_FINDINGS_PER_KIND * 4]:
        s = int(seq[i])
        ok = start <= s < last and bool((computed[i] == expected[s - start]).all())
        message = "stored leaf_hash does not match the row"
        finding = (
            Finding(tenant, FindingKind.MODIFIED, message, **rows.locate(int(i)))
            if ok
            else None  # reported below against the expected leaf
        )
        out.mismatch.append((rows.pos(int(i)), finding))
    inside = (seq >= start) & (seq < last)
    idx = np.flatnonzero(inside)
    match = np.zeros(len(seq), dtype=bool)
    match[idx] = (computed[idx] == expected[seq[idx] - start]).all(axis=1)
    width = max(last - start, 0)
    counts = np.bincount(seq[match] - start, minlength=width) if width else np.zeros(0, np.int64)
    _note_duplicates(task, out, rows, match, counts)
    for i in np.flatnonzero(inside & ~match):
        s = int(seq[i])
        if counts[s - start] >= 1:
            item: Finding | Pending = Finding(
                tenant,
                FindingKind.INSERTED,
                "a row claims a seq that already holds an authentic event",
                **rows.locate(int(i)),
            )
        else:
            item = Pending(computed[i].tobytes(), rows.locate(int(i)))
        out.bad.append((rows.pos(int(i)), item))
    present = np.zeros(width, dtype=bool)
    present[seq[inside] - start] = True
    out.absent = _runs(np.flatnonzero(~present) + start)
    for i in np.flatnonzero(~inside & (seq < 0))[:5]:
        s = int(seq[i])
        finding = Finding(tenant, FindingKind.INSERTED, f"a row has an impossible seq {s}", seq=s)
        out.impossible.append((rows.pos(int(i)), finding))


def _note_duplicates(
    task: RangeTask, out: RangeResult, rows: _Rows, match: np.ndarray, counts: np.ndarray
) -> None:
    """More than one authentic copy of a seq: every copy after the first is a duplicate."""
    if not (counts > 1).any():
        return
    seen: set[int] = set()
    for i in np.flatnonzero(match):
        s = int(rows.seq[i])
        if counts[s - task.start] > 1:
            if s in seen:
                message = "event is stored more than once"
                finding = Finding(
                    task.tenant, FindingKind.DUPLICATE, message, **rows.locate(int(i))
                )
                out.dup.append((rows.pos(int(i)), finding))
            seen.add(s)


def _rows_tree(task: RangeTask, out: RangeResult, rows: _Rows) -> None:
    """No trustworthy tiles: the range's duplicate seqs, gaps and the tree of its rows."""
    start, seq = task.start, rows.seq
    order = np.argsort(seq, kind="stable")
    s_sorted = seq[order]
    for k in np.flatnonzero(np.diff(s_sorted) == 0) + 1:
        i = int(order[k])
        finding = Finding(
            task.tenant, FindingKind.DUPLICATE, "two rows share one seq", **rows.locate(i)
        )
        out.dup.append(((int(seq[i]), rows.pos(i)), finding))
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
    _export_nodes(
        out, MerkleLevels.from_concatenated(rows.computed[order].tobytes()), task, tiles=False
    )


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
                FindingKind.MISPLACED,
                "event is stored in the partition of another date",
                seq=rows.column("seq")[int(i)].as_py(),
                event_id=rows.column("event_id")[int(i)].as_py(),
            ),
        )
        for i in np.flatnonzero(wrong.to_numpy(zero_copy_only=False))
    ]
