"""Tests for lake.log's Merkle tree: published RFC 6962 vectors, Go negative probes, properties.

Over 600 lines on purpose: the published vectors are copied verbatim, beside the probes.

Published figures are copied verbatim from github.com/transparency-dev/merkle:

* rfc6962/rfc6962_test.go       - hasher vectors (empty root, empty leaf, leaf, node).
* testonly/constants.go         - the 8 leaf inputs, every complete node hash, roots 0..8,
                                  compact-range contents per size.
* proof/verify_test.go          - inclusion and consistency proofs, roots 1..8, the
  (revision 02194e9a, before      corruption probes (corruptInclusionProof,
  the vectors moved into          corruptConsistencyProof) and the edge-case tables of
  testdata/*.json)                TestVerifyInclusion*/TestVerifyConsistency.
* testonly/reference_test.go    - more inclusion/consistency proofs, downToPowerOfTwo cases.
* proof/proof_test.go           - which node IDs each proof is made of (TestInclusion,
                                  TestConsistency).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lake.contract import ProofError
from lake.log import (
    EMPTY_ROOT,
    CompactRange,
    MerkleLevels,
    NodeFn,
    consistency_proof,
    frontier,
    inclusion_proof,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root,
    subtree_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)


def dh(s: str) -> bytes:
    return bytes.fromhex(s)


# --- Published vectors (transparency-dev/merkle) -------------------------------------------

# testonly/constants.go LeafInputs(); also `leaves` in proof/verify_test.go.
LEAF_INPUTS = [
    dh(""),
    dh("00"),
    dh("10"),
    dh("2021"),
    dh("3031"),
    dh("40414243"),
    dh("5051525354555657"),
    dh("606162636465666768696a6b6c6d6e6f"),
]

# testonly/constants.go NodeHashes(): [level][index] over LeafInputs().
NODE_HASHES = [
    [
        dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        dh("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        dh("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        dh("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        dh("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        dh("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        dh("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# proof/verify_test.go `roots` (tree sizes 1..8); testonly/constants.go RootHashes()[1:].
ROOTS = [
    dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    dh("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    dh("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    dh("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    dh("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    dh("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# proof/verify_test.go sha256EmptyTreeHash / testonly EmptyRootHash(), and sha256SomeHash.
SHA256_EMPTY_TREE_HASH = dh("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
SHA256_SOME_HASH = dh("abacaba000000000000000000000000000000000000000000060061e00123456")

# proof/verify_test.go `inclusionProofs`: (leaf, size, proof) with a 1-BASED leaf number;
# the entry {0, 0, nil} is the invalid one that Go's TestVerifyInclusion skips.
GO_INCLUSION_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# testonly/reference_test.go TestRefInclusionProof: (0-based index, size, proof).
REF_INCLUSION_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 2, [dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go `consistencyProofs`: (size1, size2, proof). testonly/reference_test.go
# TestRefConsistencyProof lists (1,1), (1,8), (2,5) and (6,8) with the same figures.
GO_CONSISTENCY_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# testonly/constants.go CompactTrees(): the node IDs nh[level][index] per tree size 0..8.
COMPACT_TREES: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

Id = tuple[int, int]

# proof/proof_test.go TestInclusion: (size, index, node IDs (level, index) the proof uses;
# Go's "rehash" entries list both children of an ephemeral node, as we read them).
INCLUSION_NODE_IDS: list[tuple[int, int, list[Id]]] = [
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)]),
    (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)]),
    (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]),
    (7, 5, [(0, 4), (0, 6), (2, 0)]),
    (7, 6, [(1, 2), (2, 0)]),
    (4, 2, [(0, 3), (1, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]),
    (6, 3, [(0, 2), (1, 0), (1, 2)]),
    (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]

# proof/proof_test.go TestConsistency: (size1, size2, node IDs).
CONSISTENCY_NODE_IDS: list[tuple[int, int, list[Id]]] = [
    (1, 2, [(0, 1)]),
    (1, 4, [(0, 1), (1, 1)]),
    (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]),
    (2, 8, [(1, 1), (2, 1)]),
    (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
    (4, 7, [(0, 6), (1, 2)]),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(1, 1)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, [(1, 2)]),
    (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]


# --- Reference RFC 9162 §2.1 definitions, verbatim, over a list of leaf hashes -----------


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 §2.1.3.1 (d holds leaf hashes)."""
    n = len(d)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, d[:k]), root(d[k:])]
    return [*ref_path(m - k, d[k:]), root(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [root(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), root(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), root(d[:k])]


def hashes_of(inputs: Sequence[bytes]) -> list[bytes]:
    return [leaf_hash(x) for x in inputs]


LEAF_HASHES = hashes_of(LEAF_INPUTS)
LEVELS8 = MerkleLevels.from_leaf_hashes(LEAF_HASHES)


def recording(node: NodeFn) -> tuple[NodeFn, list[Id]]:
    seen: list[Id] = []

    def fn(level: int, index: int) -> bytes:
        seen.append((level, index))
        return node(level, index)

    return fn, seen


# --- Hashing --------------------------------------------------------------------------------


def test_rfc6962_hasher_vectors() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962Hasher.
    assert dh("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert leaf_hash(b"") == dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == dh(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == dh(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_hasher_domain_separation() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962HasherCollisions.
    h1, h2 = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert h1 != h2
    assert node_hash(h1, h2) != leaf_hash(h1 + h2)
    assert node_hash(h1, h2) != node_hash(h2, h1)


@pytest.mark.parametrize(("n", "k"), [(2, 1), (7, 4), (8, 4), (63, 32), (28937, 16384), (3, 2)])
def test_largest_power_of_two_below(n: int, k: int) -> None:
    # testonly/reference_test.go TestDownToPowerOfTwo (plus (3, 2)).
    assert largest_power_of_two_below(n) == k


@pytest.mark.parametrize("n", [-1, 0, 1])
def test_largest_power_of_two_below_rejects_small(n: int) -> None:
    with pytest.raises(ValueError):
        largest_power_of_two_below(n)


def test_leaf_and_node_hashes_match_published_nodes() -> None:
    assert NODE_HASHES[0] == LEAF_HASHES
    for level, row in enumerate(NODE_HASHES):
        for index, h in enumerate(row):
            assert LEVELS8.node(level, index) == h, (level, index)
    assert LEVELS8.height == len(NODE_HASHES)
    for level, row in enumerate(NODE_HASHES):
        assert LEVELS8.level(level) == b"".join(row)


# --- Roots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 9))
def test_published_roots(size: int) -> None:
    want = ROOTS[size - 1]
    assert root(LEAF_HASHES[:size]) == want
    assert MerkleLevels.from_leaf_hashes(LEAF_HASHES[:size]).root() == want
    assert LEVELS8.root(size) == want
    assert tree_root(size, LEVELS8.node) == want
    assert CompactRange.from_node_fn(size, LEVELS8.node).root() == want


def test_empty_roots() -> None:
    assert root([]) == EMPTY_ROOT
    assert tree_root(0, LEVELS8.node) == EMPTY_ROOT
    assert LEVELS8.root(0) == EMPTY_ROOT
    empty = MerkleLevels.from_concatenated(b"")
    assert empty.size == 0
    assert empty.height == 0
    assert empty.root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


def test_levels_root_for_every_prefix() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    levels = MerkleLevels.from_concatenated(b"".join(leaves))
    assert levels.size == 70
    for m in range(71):
        assert levels.root(m) == root(leaves[:m]), m
        assert MerkleLevels.from_leaf_hashes(leaves[:m]).root() == root(leaves[:m]), m


def test_levels_accessors_and_errors() -> None:
    assert LEVELS8.size == 8
    assert [LEVELS8.leaf(i) for i in range(8)] == LEAF_HASHES
    levels = MerkleLevels.from_concatenated(bytearray(b"".join(LEAF_HASHES[:7])))
    assert levels.height == 3
    for level, index in [(0, 7), (1, 3), (2, 1), (3, 0), (-1, 0), (0, -1)]:
        with pytest.raises(ProofError):
            levels.node(level, index)
    with pytest.raises(ProofError):
        levels.leaf(7)
    with pytest.raises(ProofError):
        levels.level(3)
    with pytest.raises(ProofError):
        levels.root(8)
    with pytest.raises(ProofError):
        levels.root(-1)
    with pytest.raises(ValueError):
        MerkleLevels.from_concatenated(b"x" * 33)
    with pytest.raises(ValueError):
        MerkleLevels.from_leaf_hashes([b"short"])


def test_subtree_hash_is_mth_of_any_range() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(20)]
    levels = MerkleLevels.from_leaf_hashes(leaves)
    for lo in range(20):
        for hi in range(lo + 1, 21):
            assert subtree_hash(lo, hi, levels.node) == root(leaves[lo:hi]), (lo, hi)
    for lo, hi in [(0, 0), (3, 2), (-1, 2)]:
        with pytest.raises(ProofError):
            subtree_hash(lo, hi, levels.node)
    with pytest.raises(ProofError):
        tree_root(-1, levels.node)


# --- Frontier and compact ranges ------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_frontier_matches_published_compact_trees(size: int) -> None:
    assert frontier(size) == COMPACT_TREES[size]
    cr = CompactRange.from_node_fn(size, LEVELS8.node)
    assert cr.size == size
    assert list(cr.hashes) == [NODE_HASHES[lv][ix] for lv, ix in COMPACT_TREES[size]]


def test_frontier_large_and_errors() -> None:
    assert frontier(0b1011001) == [(6, 0), (4, 4), (3, 10), (0, 88)]
    with pytest.raises(ProofError):
        frontier(-1)


def test_compact_range_append_reports_completed_nodes() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(100)]
    levels = MerkleLevels.from_leaf_hashes(leaves)
    cr = CompactRange()
    seen: set[Id] = set()
    for i, h in enumerate(leaves):
        completed = cr.append(h)
        assert completed[0] == (0, i, h)
        for level, index, node in completed:
            assert levels.node(level, index) == node
            assert (level, index) not in seen
            seen.add((level, index))
        assert cr.size == i + 1
        assert cr.root() == levels.root(i + 1)
    # Every complete node of the tree was reported exactly once.
    assert seen == {(lv, ix) for lv in range(levels.height) for ix in range(100 >> lv)}
    # Resuming from a stored frontier gives the same state.
    resumed = CompactRange.from_node_fn(37, levels.node)
    resumed.extend(leaves[37:])
    assert resumed.hashes == cr.hashes
    assert resumed.root() == levels.root()


def test_compact_range_rejects_bad_state() -> None:
    with pytest.raises(ProofError):
        CompactRange(3, [LEAF_HASHES[0]])
    with pytest.raises(ProofError):
        CompactRange(1, [b"short"])
    with pytest.raises(ProofError):
        CompactRange(-1, [])
    with pytest.raises(ProofError):
        CompactRange().append(b"short")


# --- Inclusion: published proofs -----------------------------------------------------------


ALL_INCLUSION = [(leaf - 1, size, proof) for leaf, size, proof in GO_INCLUSION_PROOFS]
ALL_INCLUSION += REF_INCLUSION_PROOFS


@pytest.mark.parametrize(("index", "size", "proof"), ALL_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    # From the 8-leaf tree (smaller trees within a bigger stored tree) ...
    assert inclusion_proof(index, size, LEVELS8.node) == proof
    # ... from a tree of exactly `size` leaves, and from the RFC definition.
    exact = MerkleLevels.from_leaf_hashes(LEAF_HASHES[:size])
    assert inclusion_proof(index, size, exact.node) == proof
    assert ref_path(index, LEAF_HASHES[:size]) == proof
    verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size - 1])


def corrupt_inclusion_proof(
    index: int, size: int, proof: list[bytes], root_: bytes, leaf: bytes
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """corruptInclusionProof from proof/verify_test.go: (desc, index, size, root, leaf, path)."""
    probes = [
        ("leafIndex - 1", index - 1, size, root_, leaf, proof),
        ("leafIndex + 1", index + 1, size, root_, leaf, proof),
        ("leafIndex ^ 2", index ^ 2, size, root_, leaf, proof),
        ("treeSize * 2", index, size * 2, root_, leaf, proof),
        ("treeSize / 2", index, size // 2, root_, leaf, proof),
        ("wrong leaf", index, size, root_, b"WrongLeaf", proof),
        ("empty root", index, size, SHA256_EMPTY_TREE_HASH, leaf, proof),
        ("random root", index, size, SHA256_SOME_HASH, leaf, proof),
        ("trailing garbage", index, size, root_, leaf, [*proof, b""]),
        ("trailing root", index, size, root_, leaf, [*proof, root_]),
        ("preceding garbage", index, size, root_, leaf, [b"", *proof]),
        ("preceding root", index, size, root_, leaf, [root_, *proof]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, root_, leaf, wrong))
    if proof:
        probes.append(("removed component", index, size, root_, leaf, proof[:-1]))
    if len(proof) > 1:
        inserted = [proof[0], SHA256_SOME_HASH, *proof[1:]]
        probes.append(("inserted component", index, size, root_, leaf, inserted))
    return probes


@pytest.mark.parametrize(("leaf", "size", "proof"), GO_INCLUSION_PROOFS)
def test_inclusion_corruptions_fail(leaf: int, size: int, proof: list[bytes]) -> None:
    # TestVerifyInclusion / verifierCheck: every corruption of a good proof is rejected.
    index = leaf - 1
    probes = corrupt_inclusion_proof(index, size, proof, ROOTS[size - 1], LEAF_HASHES[index])
    assert len(probes) >= 12
    for desc, p_index, p_size, p_root, p_leaf, p_proof in probes:
        with pytest.raises(ProofError):
            verify_inclusion(p_leaf, p_index, p_size, p_proof, p_root)
            pytest.fail(f"incorrectly verified against: {desc}")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_verify_inclusion_edge_probes(index: int, size: int) -> None:
    # proof/verify_test.go TestVerifyInclusion: empty proof, invalid root/leaf combinations.
    with pytest.raises(ProofError):
        verify_inclusion(SHA256_SOME_HASH, index, size, [], b"")
    with pytest.raises(ProofError):
        verify_inclusion(b"", index, size, [], SHA256_EMPTY_TREE_HASH)
    with pytest.raises(ProofError):
        verify_inclusion(SHA256_SOME_HASH, index, size, [], SHA256_EMPTY_TREE_HASH)


@pytest.mark.parametrize(
    ("root_", "leaf", "ok"),
    [("hash", "hash", True), ("hash", "", False), ("", "hash", False), ("", "", False)],
)
def test_verify_inclusion_single_entry(root_: str, leaf: str, ok: bool) -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry.
    h = leaf_hash(b"data")
    pick = {"hash": h, "": b""}
    if ok:
        verify_inclusion(pick[leaf], 0, 1, [], pick[root_])
    else:
        with pytest.raises(ProofError):
            verify_inclusion(pick[leaf], 0, 1, [], pick[root_])


def test_inclusion_error_messages() -> None:
    good = GO_INCLUSION_PROOFS[1][2]
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(LEAF_HASHES[0], 8, 8, good, ROOTS[7])
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(LEAF_HASHES[0], 0, 8, good[:2], ROOTS[7])
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(LEAF_HASHES[0], 0, 8, [*good, good[0]], ROOTS[7])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(LEAF_HASHES[0], 0, 8, [*good[:2], good[2][:31]], ROOTS[7])
    with pytest.raises(ProofError, match="gives root"):
        verify_inclusion(LEAF_HASHES[1], 0, 8, good, ROOTS[7])
    with pytest.raises(ProofError, match="negative"):
        verify_inclusion(LEAF_HASHES[0], -1, 8, good, ROOTS[7])


@pytest.mark.parametrize(("size", "index"), [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8), (7, -1)])
def test_inclusion_proof_rejects_bad_params(size: int, index: int) -> None:
    # proof/proof_test.go TestInclusion "Errors" (plus a negative index).
    with pytest.raises(ProofError):
        inclusion_proof(index, size, LEVELS8.node)


@pytest.mark.parametrize(("size", "index", "ids"), INCLUSION_NODE_IDS)
def test_inclusion_reads_published_node_ids(size: int, index: int, ids: list[Id]) -> None:
    # proof/proof_test.go TestInclusion: the proof is made of exactly these nodes.
    levels = MerkleLevels.from_leaf_hashes([leaf_hash(bytes([i])) for i in range(128)])
    node, seen = recording(levels.node)
    proof = inclusion_proof(index, size, node)
    assert sorted(seen) == sorted(ids)
    assert proof == ref_path(index, [levels.leaf(i) for i in range(size)])


# --- Consistency: published proofs ---------------------------------------------------------


@pytest.mark.parametrize(("size1", "size2", "proof"), GO_CONSISTENCY_PROOFS)
def test_published_consistency_proofs(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(size1, size2, LEVELS8.node) == proof
    exact = MerkleLevels.from_leaf_hashes(LEAF_HASHES[:size2])
    assert consistency_proof(size1, size2, exact.node) == proof
    assert ref_subproof(size1, LEAF_HASHES[:size2], True) == proof
    verify_consistency(size1, size2, ROOTS[size1 - 1], ROOTS[size2 - 1], proof)


def corrupt_consistency_proof(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Port of corruptConsistencyProof (proof/verify_test.go)."""
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
    ]
    if proof:
        probes.append(("truncated proof", size1, size2, root1, root2, proof[:-1]))
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", size1, size2, root1, root2, wrong))
    return probes


@pytest.mark.parametrize(("size1", "size2", "proof"), [v for v in GO_CONSISTENCY_PROOFS if v[2]])
def test_consistency_corruptions_fail(size1: int, size2: int, proof: list[bytes]) -> None:
    # TestVerifyConsistency / verifierConsistencyCheck (non-trivial proofs only, as in Go).
    probes = corrupt_consistency_proof(size1, size2, ROOTS[size1 - 1], ROOTS[size2 - 1], proof)
    for desc, s1, s2, r1, r2, p in probes:
        with pytest.raises(ProofError):
            verify_consistency(s1, s2, r1, r2, p)
            pytest.fail(f"incorrectly verified against: {desc}")


ROOT1 = b"don't care 1"
ROOT2 = b"don't care 2"
E = SHA256_EMPTY_TREE_HASH


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        # proof/verify_test.go TestVerifyConsistency table. Go accepts the three marked
        # DIFFERS; we reject them because ROOT1/ROOT2 are not 32-byte hashes, and because
        # RFC 9162 defines no consistency proof from size 0 (see verify_consistency).
        (0, 0, ROOT1, ROOT2, [], False),
        (1, 1, ROOT1, ROOT2, [], False),
        (0, 0, ROOT1, ROOT1, [], False),  # DIFFERS: Go accepts
        (0, 1, ROOT1, ROOT2, [], False),  # DIFFERS: Go accepts
        (1, 1, ROOT2, ROOT2, [], False),  # DIFFERS: Go accepts
        (1, 0, ROOT1, ROOT2, [], False),
        (2, 1, ROOT1, ROOT2, [], False),
        (1, 2, ROOT1, ROOT2, [], False),
        (0, 0, E, ROOT2, [], False),
        (1, 1, E, ROOT2, [], False),
        (0, 0, E, E, [E], False),
        (0, 1, E, E, [E], False),
        (1, 1, E, E, [E], False),
        # The accepted Go cases, restated with well-formed 32-byte roots.
        (0, 0, E, E, [], True),
        (1, 1, ROOTS[0], ROOTS[0], [], True),
        (5, 5, ROOTS[4], ROOTS[4], [], True),
        (0, 1, E, ROOTS[0], [], False),  # Still rejected: no proof from the empty tree.
        (0, 0, SHA256_SOME_HASH, SHA256_SOME_HASH, [], False),  # Not the empty-tree root.
    ],
)
def test_verify_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(size1, size2, root1, root2, proof)
    else:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof)


def test_consistency_error_messages() -> None:
    good = GO_CONSISTENCY_PROOFS[2][2]  # 6 -> 8
    r6, r8 = ROOTS[5], ROOTS[7]
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(6, 8, r6, r8, good[:2])
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(6, 8, r6, r8, [*good, good[0]])
    with pytest.raises(ProofError, match="old size 6"):
        verify_consistency(6, 8, ROOTS[4], r8, good)
    with pytest.raises(ProofError, match="new size 8"):
        verify_consistency(6, 8, r6, ROOTS[6], good)
    with pytest.raises(ProofError, match="larger than"):
        verify_consistency(8, 6, r8, r6, good)
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 8, E, r8, good)
    with pytest.raises(ProofError, match="is empty"):
        verify_consistency(6, 8, r6, r8, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(8, 8, r8, r8, good)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_consistency(6, 8, r6, r8, [good[0][:31], *good[1:]])


@pytest.mark.parametrize(("size1", "size2"), [(5, 0), (9, 8), (0, 3), (-1, 3)])
def test_consistency_proof_rejects_bad_params(size1: int, size2: int) -> None:
    # proof/proof_test.go TestConsistency "Errors", testonly/tree_test.go (0, 3).
    with pytest.raises(ProofError):
        consistency_proof(size1, size2, LEVELS8.node)


def test_consistency_proof_equal_sizes_is_empty() -> None:
    for size in range(9):
        assert consistency_proof(size, size, LEVELS8.node) == []


@pytest.mark.parametrize(("size1", "size2", "ids"), CONSISTENCY_NODE_IDS)
def test_consistency_reads_published_node_ids(size1: int, size2: int, ids: list[Id]) -> None:
    # proof/proof_test.go TestConsistency: the proof is made of exactly these nodes.
    levels = MerkleLevels.from_leaf_hashes([leaf_hash(bytes([i])) for i in range(128)])
    node, seen = recording(levels.node)
    proof = consistency_proof(size1, size2, node)
    assert sorted(seen) == sorted(ids)
    assert proof == ref_subproof(size1, [levels.leaf(i) for i in range(size2)], True)


# --- Properties -----------------------------------------------------------------------------


def random_leaves(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(n)]


def flips(h: bytes) -> list[bytes]:
    """Every variant of h with exactly one bit flipped."""
    return [
        h[:i] + bytes([h[i] ^ (1 << bit)]) + h[i + 1 :] for i in range(len(h)) for bit in range(8)
    ]


def accepted(verify: Callable[..., None], *args: object) -> bool:
    """True if verification passes; False if it raises ProofError (anything else propagates)."""
    try:
        verify(*args)
    except ProofError:
        return False
    return True


sizes = st.integers(min_value=1, max_value=300)
seeds = st.integers(min_value=0, max_value=2**32)


@settings(max_examples=25, deadline=None)
@given(size=sizes, seed=seeds)
def test_every_inclusion_proof_verifies(size: int, seed: int) -> None:
    leaves = random_leaves(size, seed)
    levels = MerkleLevels.from_leaf_hashes(leaves)
    want = root(leaves)
    assert levels.root() == want
    for index in range(size):
        proof = inclusion_proof(index, size, levels.node)
        verify_inclusion(leaves[index], index, size, proof, want)


@settings(max_examples=25, deadline=None)
@given(size=sizes, seed=seeds)
def test_every_consistency_proof_to_the_full_tree_verifies(size: int, seed: int) -> None:
    leaves = random_leaves(size, seed)
    levels = MerkleLevels.from_leaf_hashes(leaves)
    new_root = root(leaves)
    for old_size in range(1, size + 1):
        proof = consistency_proof(old_size, size, levels.node)
        verify_consistency(old_size, size, root(leaves[:old_size]), new_root, proof)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), size=sizes, seed=seeds)
def test_proofs_match_rfc_definitions_between_any_sizes(
    data: st.DataObject, size: int, seed: int
) -> None:
    leaves = random_leaves(size, seed)
    levels = MerkleLevels.from_leaf_hashes(leaves)
    new_size = data.draw(st.integers(1, size), label="new_size")
    old_size = data.draw(st.integers(1, new_size), label="old_size")
    index = data.draw(st.integers(0, new_size - 1), label="index")
    proof = inclusion_proof(index, new_size, levels.node)
    assert proof == ref_path(index, leaves[:new_size])
    verify_inclusion(leaves[index], index, new_size, proof, root(leaves[:new_size]))
    cproof = consistency_proof(old_size, new_size, levels.node)
    assert cproof == ref_subproof(old_size, leaves[:new_size], True)
    verify_consistency(old_size, new_size, root(leaves[:old_size]), root(leaves[:new_size]), cproof)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), size=sizes, seed=seeds)
def test_any_single_bit_flip_breaks_inclusion(data: st.DataObject, size: int, seed: int) -> None:
    leaves = random_leaves(size, seed)
    levels = MerkleLevels.from_leaf_hashes(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    want = root(leaves)
    leaf = leaves[index]
    proof = inclusion_proof(index, size, levels.node)
    verify_inclusion(leaf, index, size, proof, want)
    wrong = [
        (i, bad)
        for i, element in enumerate(proof)
        for bad in flips(element)
        if accepted(verify_inclusion, leaf, index, size, [*proof[:i], bad, *proof[i + 1 :]], want)
    ]
    wrong += [
        (-1, b) for b in flips(leaf) if accepted(verify_inclusion, b, index, size, proof, want)
    ]
    wrong += [
        (-2, b) for b in flips(want) if accepted(verify_inclusion, leaf, index, size, proof, b)
    ]
    assert wrong == []


@settings(max_examples=20, deadline=None)
@given(data=st.data(), size=st.integers(2, 300), seed=seeds)
def test_any_single_bit_flip_breaks_consistency(data: st.DataObject, size: int, seed: int) -> None:
    leaves = random_leaves(size, seed)
    levels = MerkleLevels.from_leaf_hashes(leaves)
    new_size = data.draw(st.integers(2, size), label="new_size")
    old_size = data.draw(st.integers(1, new_size - 1), label="old_size")
    old_root, new_root = root(leaves[:old_size]), root(leaves[:new_size])
    proof = consistency_proof(old_size, new_size, levels.node)
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    wrong = [
        (i, bad)
        for i, element in enumerate(proof)
        for bad in flips(element)
        if accepted(
            verify_consistency,
            old_size,
            new_size,
            old_root,
            new_root,
            [*proof[:i], bad, *proof[i + 1 :]],
        )
    ]
    wrong += [
        (-1, b)
        for b in flips(old_root)
        if accepted(verify_consistency, old_size, new_size, b, new_root, proof)
    ]
    wrong += [
        (-2, b)
        for b in flips(new_root)
        if accepted(verify_consistency, old_size, new_size, old_root, b, proof)
    ]
    assert wrong == []
