"""One tenant's tree put back together from its range tasks, and the plan of those ranges.

The driver (`lake.verify._tenant`) cuts a tenant's log into aligned ranges of `seq`
(`plan_ranges`), and the range tasks (`lake.verify._ranges`) return the complete subtrees
inside their range; `RangeTree` combines them into the root at every checkpoint size and
the tile levels above the leaves, and `gaps`/`lawful_gaps` into the seqs no row holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from lake.log import TILE_HEIGHT, MerkleLevels, TileLog, tree_root
from lake.storage import DataFile
from lake.verify._ranges import RangeResult
from lake.verify._report import Finding, FindingKind, TenantReport

Plan = list[tuple[int, int | None, int | None, list[tuple[int, DataFile]]]]
"""Ranges as (start, stop or None, bits or None, [(file position, file)])."""


class RangeTree:
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


def plan_ranges(files: Sequence[DataFile], sealed: int, range_events: int) -> Plan:
    """Ranges of 2**bits seqs covering the sealed log and every file's seq statistics.

    One range for the whole tenant when that is all there is, or when the statistics
    cannot place the files (missing, or absurdly wide).
    """
    whole: Plan = [(0, None, None, list(enumerate(files)))]
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


def gaps(results: Sequence[RangeResult], plan: Plan, bound: int) -> list[tuple[int, int]]:
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


def lawful_gaps(
    results: Sequence[RangeResult],
    plan: Plan,
    bound: int,
    removed: Sequence[tuple[int, int]],
) -> list[tuple[int, int]]:
    """Gaps not explained by a signed retention record: the missing events."""
    out = []
    cuts = sorted((max(lo, 0), hi) for lo, hi in removed if hi >= lo)
    for lo, hi in gaps(results, plan, bound):
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


def check_upper_tiles(
    tenant: str, tiles: TileLog, levels: RangeTree, size: int, tr: TenantReport
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
                    FindingKind.BAD_TILES,
                    f"stored hash tiles at level {tile_level} differ from the tree rebuilt "
                    "from the leaves; proofs that read them would fail",
                    tree_size=size,
                )
            )
        tile_level += 1
