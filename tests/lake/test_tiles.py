"""Hash tiles: C2SP paths, extension across tile boundaries, node hashes, proof cost."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import fill
from testkit import small_disk as mount_small_disk

from lake.log import (
    MerkleLevels,
    TileLog,
    encode_index,
    inclusion_proof,
    tile_path,
    tree_root,
    verify_inclusion,
)
from lake.storage import Lake


def test_c2sp_tile_index_encoding() -> None:
    # Examples from C2SP tlog-tiles.
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(5) == "005"
    assert encode_index(0) == "000"
    assert encode_index(1000) == "x001/000"
    assert tile_path("acme", 0, 1234067, 256) == "tiles/acme/tile/0/x001/x234/067"
    assert tile_path("acme", 1, 2, 17) == "tiles/acme/tile/1/002.p/17"


def leaves(n: int, salt: bytes = b"") -> bytes:
    return b"".join(hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n))


@pytest.fixture
def tiny_lake(tmp_path: Path) -> Lake:
    return Lake.init(tmp_path / "lake", "t", "k+00000000+AA==")


@pytest.mark.parametrize("chunks", [[1], [255, 1, 1], [256, 256], [300, 10, 500, 7], [65536 + 300]])
def test_extend_in_chunks_matches_full_tree(tiny_lake: Lake, chunks: list[int]) -> None:
    total = sum(chunks)
    all_leaves = leaves(total)
    ref = MerkleLevels.from_concatenated(all_leaves)
    log = TileLog(tiny_lake, "acme")
    size = 0
    for c in chunks:
        log.extend(size, all_leaves[size * 32 : (size + c) * 32])
        size += c
        fresh = TileLog(tiny_lake, "acme")  # no cache: read back from storage
        assert tree_root(size, fresh.node_fn(size)) == ref.root(size)
    # Any older size is still provable from the stored tiles.
    for old in {1, chunks[0], total // 2, total}:
        assert tree_root(old, TileLog(tiny_lake, "acme").node_fn(old)) == ref.root(old)


def test_proof_needs_logarithmic_tile_reads(
    tiny_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 70_000
    all_leaves = leaves(n)
    TileLog(tiny_lake, "acme").extend(0, all_leaves)
    reads: list[str] = []
    original = tiny_lake.read_bytes

    def counting(rel: str) -> bytes:
        data = original(rel)  # a failed attempt (full tile not there yet) raises first
        reads.append(rel)
        return data

    monkeypatch.setattr(tiny_lake, "read_bytes", counting)
    log = TileLog(tiny_lake, "acme")
    root = tree_root(n, log.node_fn(n))
    reads.clear()
    path = inclusion_proof(12_345, n, TileLog(tiny_lake, "acme").node_fn(n))
    verify_inclusion(all_leaves[12_345 * 32 : 12_346 * 32], 12_345, n, path, root)
    # log2(70000) ≈ 17 path nodes, served by a handful of tiles (not 70000 leaves).
    assert len(set(reads)) <= 8, reads
    assert sum(len(original(r)) for r in set(reads)) < 70_000


def test_missing_tile_is_a_clear_error(tiny_lake: Lake) -> None:
    from lake.contract import StorageError

    with pytest.raises(StorageError, match="missing"):
        TileLog(tiny_lake, "acme").node_fn(10)(0, 0)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs at tmp_path/small (needs root and mount; skipped otherwise)."""
    with mount_small_disk(tmp_path / "small") as mount:
        yield mount


def test_a_full_disk_leaves_no_temporary_tile_file(small_disk: Path) -> None:
    lake = Lake.init(small_disk / "lake", "t", "k+00000000+AA==")
    log = TileLog(lake, "acme")
    log.extend(0, leaves(5))  # the tile directories exist; only the data will not fit
    fill(small_disk)
    with pytest.raises(OSError) as again:
        log.extend(5, leaves(200, b"more"))
    assert again.value.errno == errno.ENOSPC
    assert list((small_disk / "lake").rglob(".tmp-*")) == []
