"""Stored subtree hashes of each tenant's log, as C2SP tlog-tiles hash tiles.

A tile at level L holds up to 256 consecutive hashes of Merkle nodes at tree level 8·L
(level 0: the leaf hashes). Full tiles never change; a partial tile of width W is stored
beside them as `<N>.p/<W>`. Any node hash, and so any inclusion or consistency proof,
needs O(log n) tile reads instead of a scan of the tenant's events; extending the log by k
leaves reads at most one partial tile per level.

Paths follow C2SP tlog-tiles (`tile/<L>/<N>` with N in 3-digit `x`-prefixed groups), under
`tiles/<tenant>/`, so a tenant's tiles can be served to standard tlog tooling as they are.

On local disk each tile is written to a `.tmp-*` file and renamed. The writer removes its
temp file when the write fails (ENOSPC), and `seal` removes temp files a crash left behind
(`remove_stale_temp`): only ones older than STALE_TEMP_SECONDS, because a concurrent
writer's temp file lives for the milliseconds between its write and its rename, and a
concurrent seal of the same tenant may be extending its tiles right now.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lake.contract import LEAF_FIELDS, NoteError, StorageError, hash_leaves
from lake.log._checkpoint import Checkpoint
from lake.log._levels import MerkleLevels
from lake.log._merkle import NodeFn
from lake.log._note import VerifierKey, parse_note, verify_note
from lake.storage import Lake, check_tenant, paths

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH = 32
WRITE_THREADS = 8
STALE_TEMP_SECONDS = 600  # far beyond any write-then-rename; see the module docstring


def encode_index(n: int) -> str:
    """C2SP tile index path element: 1234067 → 'x001/x234/067'."""
    digits = f"{n:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(tenant: str, level: int, index: int, width: int) -> str:
    """Path of a hash tile under the lake root."""
    return paths.tile_file(
        tenant, level, encode_index(index), None if width == TILE_WIDTH else width
    )


def _complete_root(hashes: bytes) -> bytes:
    """Root of a complete subtree given its 2^k node hashes at one level."""
    level = [hashes[i : i + HASH] for i in range(0, len(hashes), HASH)]
    sha = hashlib.sha256
    while len(level) > 1:
        level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


class TileLog:
    """Reads and extends the hash tiles of one tenant's log."""

    def __init__(self, lake: Lake, tenant: str) -> None:
        self.lake = lake
        self.tenant = check_tenant(tenant)
        self._cache: dict[tuple[int, int, int], bytes] = {}

    def read(self, level: int, index: int, width: int) -> bytes:
        """Hashes of tile (level, index) up to `width` entries (a full tile serves any width)."""
        key = (level, index, width)
        if key in self._cache:
            return self._cache[key]
        data: bytes | None = None
        for w in (TILE_WIDTH, width) if width < TILE_WIDTH else (TILE_WIDTH,):
            try:
                data = self.lake.read_bytes(tile_path(self.tenant, level, index, w))
                break
            except FileNotFoundError:
                continue
        if data is None:
            raise StorageError(
                f"tenant {self.tenant}: hash tile {level}/{index} (width {width}) is missing"
            )
        if len(data) < width * HASH or len(data) % HASH:
            raise StorageError(f"tenant {self.tenant}: hash tile {level}/{index} is truncated")
        data = data[: width * HASH]
        self._cache[key] = data
        return data

    def node_fn(self, size: int) -> NodeFn:
        """A NodeFn over the tree of `size` leaves, served from tiles."""

        def node(level: int, index: int) -> bytes:
            tile_level, sub = divmod(level, TILE_HEIGHT)
            first = index << sub
            count = 1 << sub
            tile_index = first // TILE_WIDTH
            available = size >> (TILE_HEIGHT * tile_level)
            width = min(TILE_WIDTH, available - tile_index * TILE_WIDTH)
            if first + count > available:
                raise StorageError(f"node {level}/{index} is not complete at tree size {size}")
            data = self.read(tile_level, tile_index, width)
            offset = first - tile_index * TILE_WIDTH
            return _complete_root(data[offset * HASH : (offset + count) * HASH])

        return node

    def entries(self, level: int, size: int) -> bytes:
        """All hashes of tile level `level` (tree level 8·level) in the tree of `size` leaves."""
        count = size >> (TILE_HEIGHT * level)
        out = []
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count - index * TILE_WIDTH)
            out.append(self.read(level, index, width))
        return b"".join(out)

    def level0(self, size: int) -> bytes:
        """All leaf hashes of the tree of `size` leaves, from the level-0 tiles."""
        return self.entries(0, size)

    def extend(self, old_size: int, new_hashes: bytes) -> None:
        """Write the tiles for leaves [old_size, old_size + k) given their k leaf hashes."""
        start = old_size
        fresh = new_hashes
        level = 0
        writes: list[tuple[str, bytes]] = []
        while fresh:
            offset = start % TILE_WIDTH
            tile_start = start - offset
            prefix = self.read(level, start // TILE_WIDTH, offset) if offset else b""
            entries = prefix + fresh
            count = len(entries) // HASH
            for t in range(0, count, TILE_WIDTH):
                chunk = entries[t * HASH : (t + TILE_WIDTH) * HASH]
                width = len(chunk) // HASH
                index = (tile_start + t) // TILE_WIDTH
                writes.append((tile_path(self.tenant, level, index, width), chunk))
                self._cache[(level, index, width)] = chunk
            full_groups = count // TILE_WIDTH
            fresh = b"".join(
                _complete_root(entries[g * TILE_WIDTH * HASH : (g + 1) * TILE_WIDTH * HASH])
                for g in range(full_groups)
            )
            start //= TILE_WIDTH
            level += 1
        # Tiles are independent files: write them concurrently (I/O releases the GIL;
        # one at a time cost ~0.7 ms each, ~2.7 s per million events).
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            for done in [pool.submit(self.lake.write_bytes, path, data) for path, data in writes]:
                done.result()


def rebuild(lake: Lake, tenant: str, trusted: Sequence[VerifierKey]) -> int:
    """Rewrite a tenant's hash tiles from its stored rows; returns the tree size rebuilt.

    For recovery after damaged tiles (a `bad_tiles` finding). It never whitewashes
    tampering: the rows must be a gap-free log whose roots match every checkpoint that a
    trusted key signed, otherwise nothing is written.
    """
    check_tenant(tenant)
    table = lake.events_table()
    rows = lake.read_rows(lake.data_files(table, tenants={tenant}), [*LEAF_FIELDS, "seq"])
    rows = rows.sort_by("seq")
    seqs = rows.column("seq").to_pylist()
    if seqs != list(range(len(seqs))):
        raise StorageError(f"tenant {tenant}: the stored log has gaps or duplicates; run verify")
    levels = MerkleLevels.from_concatenated(hash_leaves(rows.select(list(LEAF_FIELDS))))
    checked = 0
    size = 0
    for note in lake.read_checkpoints({tenant}).column("note").to_pylist():
        try:
            if not verify_note(note, trusted, allow_unverified=True).verified:
                continue
            cp = Checkpoint.parse(parse_note(note)[0])
        except NoteError:
            continue
        if cp.tree_size > levels.size or levels.root(cp.tree_size) != cp.root_hash:
            raise StorageError(
                f"tenant {tenant}: the stored events do not match the signed checkpoint of size "
                f"{cp.tree_size}; refusing to rebuild tiles (run verify)"
            )
        checked += 1
        size = max(size, cp.tree_size)
    if not checked:
        raise StorageError(
            f"tenant {tenant}: no checkpoint signed by a trusted key to check against"
        )
    TileLog(lake, tenant).extend(0, levels.level(0)[: size * HASH])
    return size


def remove_stale_temp(lake: Lake, tenant: str, *, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove the tenant's leftover `.tmp-*` tile files older than `older_than` seconds.

    Local lakes only (object stores write each tile in one PUT, with no temp object).
    Returns how many went.
    """
    check_tenant(tenant)
    if not lake.is_local:
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in Path(lake.full_path(paths.tiles_dir(tenant))).rglob(".tmp-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # renamed or removed by its writer meanwhile
            continue
    return removed
