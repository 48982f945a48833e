"""One tenant's check, as rounds of range tasks, with its findings in a single pass's order.

The signatures are checked first (`lake.verify._chain`); the sealed size they vouch for
and the data files' seq statistics give the plan of ranges (`lake.verify._tree`). Then:

1. Take the stored level-0 hash tiles as the expected leaf sequence only if their roots
   match every signed checkpoint (then they are as authentic as the signatures), and
   compare each row against them (`RangeMode.TILES`). This pinpoints the event behind a
   failure: `modified`, `reordered` (a second round finds where its leaf was sealed,
   `RangeMode.HOMES`), `duplicate`, `inserted`, `missing`, `unsealed`.
2. Without usable tiles, rebuild the roots from the rows in seq order (`RangeMode.ROWS`)
   and compare them with the signed ones instead.
3. Compare against checkpoints exported earlier (`lake.verify._exported`).

The engine (`lake.verify._engines`) runs each round and sends its results back in. The
findings are merged in the order one pass over the tenant would emit them, so the report
is the same whatever the range size. A tenant is checked as one range instead when a
data file has no seq statistics, when a file holds a seq outside its statistics (a file
rewritten by an attacker: the statistics cannot be trusted to find its rows), or when
rows must be re-hashed into a tree and some seq is negative.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lake.contract import StorageError
from lake.log import Checkpoint, TileLog, VerifierKey
from lake.secrets import KeyWindow
from lake.storage import DataFile, Lake
from lake.verify._chain import SealedCheckpoint, check_signatures
from lake.verify._engines import Steps
from lake.verify._exported import check_rollback
from lake.verify._ranges import RANGE_EVENTS, Pending, RangeMode, RangeResult, RangeTask
from lake.verify._report import MAX_FINDINGS_PER_KIND, Finding, FindingKind, TenantReport
from lake.verify._tree import (
    Plan,
    RangeTree,
    check_upper_tiles,
    gaps,
    lawful_gaps,
    plan_ranges,
)


@dataclass
class _Tenant:
    """What every round of one tenant's check shares: its sealed log and its plan."""

    lake: Lake
    tenant: str
    files: list[DataFile]
    cps: list[SealedCheckpoint]
    sealed: int
    sizes: tuple[int, ...]
    plan: Plan
    tr: TenantReport
    removed: Sequence[tuple[int, int]]

    def tasks(self, mode: RangeMode, wanted: tuple[bytes, ...] = ()) -> list[RangeTask]:
        """One task per planned range (a lookup of leaves needs neither files nor sizes)."""
        lake, tenant, sealed = self.lake, self.tenant, self.sealed
        return [
            RangeTask(lake, tenant, mode, start, stop, bits, tuple(fs), sealed, self.sizes, wanted)
            if mode is not RangeMode.HOMES
            else RangeTask(lake, tenant, mode, start, stop, bits, (), sealed, (), wanted)
            for start, stop, bits, fs in self.plan
        ]

    def whole(self) -> None:
        """Check the tenant as one range from now on."""
        self.plan = [(0, None, None, list(enumerate(self.files)))]

    def add(self, kind: FindingKind, message: str, **where: Any) -> None:
        self.tr.add(Finding(self.tenant, kind, message, **where))


def tenant_steps(
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
    plan = plan_ranges(files, sealed, range_events)
    check = _Tenant(lake, tenant, files, cps, sealed, sizes, plan, tr, removed)

    mode = RangeMode.TILES if sealed else RangeMode.ROWS
    results = (yield check.tasks(mode)) if files or sealed else []
    if any(r.fallback for r in results):
        check.whole()
        results = yield check.tasks(mode)
    results.sort(key=lambda r: r.start)
    _add_read_findings(results, tr)
    tr.events = sum(r.rows for r in results)
    tree = _tiles_tree(check, results) if sealed else None
    if tree is not None:
        yield from _compare_with_tiles(check, results)
    else:
        results, tree = yield from _compare_without_tiles(check, results)
    _report_unsealed(check, results)
    check_rollback(tenant, exported, sealed, tree, tr)


def _tiles_tree(check: _Tenant, results: Sequence[RangeResult]) -> RangeTree | None:
    """The tree of the stored tiles if they vouch for every signed checkpoint, else None."""
    failed = next((r for r in results if r.tile_error), None)
    if failed is not None:
        why = f"stored hash tiles are unusable ({failed.tile_error})"
        check.add(FindingKind.BAD_TILES, why, file=failed.tile_file)
        return None
    tree = RangeTree(check.sealed, check.plan[0][2], results)
    if not all(tree.root(c.size) == c.root for c in check.cps):
        check.add(FindingKind.BAD_TILES, "stored hash tiles disagree with the signed checkpoints")
        return None
    try:
        tiles = TileLog(check.lake, check.tenant)
        check_upper_tiles(check.tenant, tiles, tree, check.sealed, check.tr)
    except (StorageError, OSError) as exc:
        check.add(FindingKind.BAD_TILES, f"stored hash tiles are unusable ({exc})")
    return tree


def _compare_with_tiles(check: _Tenant, results: Sequence[RangeResult]) -> Steps:
    """Findings of rows checked against authentic tiles; a row matching no sealed leaf at
    its seq is `reordered` if its leaf was sealed elsewhere (one more round), else
    `modified`."""
    tr = check.tr
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
        for r in (yield check.tasks(RangeMode.HOMES, wanted)):
            for leaf, home in r.homes.items():
                homes[leaf] = max(home, homes.get(leaf, home))
    for _, item in bad:
        if isinstance(item, Finding):
            tr.add(item)
        elif item.leaf in homes:
            message = (
                f"event is stored at seq {item.where['seq']} but was sealed at seq "
                f"{homes[item.leaf]}"
            )
            check.add(FindingKind.REORDERED, message, **item.where)
        else:
            message = "event content differs from what was sealed"
            check.add(FindingKind.MODIFIED, message, **item.where)
    missing = lawful_gaps(results, check.plan, check.sealed, check.removed)
    _report_missing_runs(check.tenant, missing, tr)
    impossible = sorted((x for r in results for x in r.impossible), key=lambda x: x[0])
    for _, finding in impossible[:5]:
        tr.add(finding)


def _compare_without_tiles(
    check: _Tenant, results: list[RangeResult]
) -> Generator[list[RangeTask], list[RangeResult], tuple[list[RangeResult], RangeTree | None]]:
    """No trustworthy tiles: the rows' own tree (a round of its own when the first round
    checked tiles), as one range when a negative seq breaks the alignment."""
    n = sum(r.rows for r in results)
    bits = check.plan[0][2]
    if check.sealed and check.files:
        results = sorted((yield check.tasks(RangeMode.ROWS)), key=lambda r: r.start)
    if n and bits is not None and any(r.negative for r in results):
        check.whole()  # leaves of a tree rebuilt from rows are rows in order, not seqs
        results = yield check.tasks(RangeMode.ROWS)
        bits = None
    return results, _compare_roots(check, n, results, bits)


def _compare_roots(
    check: _Tenant, n: int, results: Sequence[RangeResult], bits: int | None
) -> RangeTree | None:
    """Rebuild the log from rows in seq order and compare its roots with the signed ones."""
    tenant, tr, plan = check.tenant, check.tr, check.plan
    if not n:
        for c in check.cps:
            if c.size:
                _report_missing_runs(tenant, [(0, c.size - 1)], tr)
                break
        return None
    dups = sorted((x for r in results for x in r.dup), key=lambda x: x[0])
    for _, finding in dups:
        tr.add(finding)
    top = max(r.top for r in results if r.rows)
    bound = max(top, check.sealed)
    _report_missing_runs(tenant, lawful_gaps(results, plan, bound, check.removed), tr)
    if dups or gaps(results, plan, bound):
        return None  # removed rows cannot be re-hashed: the roots need the tiles
    levels = RangeTree(n, bits, results)
    for c in check.cps:
        if c.size <= levels.size and levels.root(c.size) != c.root:
            message = f"the events do not hash to the signed root of size {c.size}"
            check.add(FindingKind.ROOT_MISMATCH, message, tree_size=c.size, batch_id=c.batch_id)
    return levels


def _report_unsealed(check: _Tenant, results: Sequence[RangeResult]) -> None:
    """Rows past every signed checkpoint, one finding per batch."""
    beyond: dict[str | None, tuple[int, int]] = {}
    for r in results:
        for batch_id, (count, first) in r.beyond.items():
            was = beyond.get(batch_id)
            beyond[batch_id] = (
                (count, first) if was is None else (was[0] + count, min(was[1], first))
            )
    for batch_id, (count, first) in sorted(beyond.items(), key=lambda kv: str(kv[0])):
        message = f"{count} event(s) from seq {first} are not covered by any signed checkpoint"
        check.add(FindingKind.UNSEALED, message, seq=first, batch_id=batch_id)


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


def _report_missing_runs(tenant: str, runs: Iterable[tuple[int, int]], tr: TenantReport) -> None:
    for lo, hi in runs:
        what = f"seq {lo}" if lo == hi else f"seq {lo}..{hi} ({hi - lo + 1} events)"
        tr.add(Finding(tenant, FindingKind.MISSING, f"{what} missing from the lake", seq=lo))
