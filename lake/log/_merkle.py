"""RFC 9162 Merkle trees for auditlake's append-only, per-tenant event logs.

This module exists so that every tamper-evidence claim the lake makes rests on one small,
well-tested implementation of the hashing and proof algorithms of RFC 9162 §2.1 (identical
to RFC 6962 §2.1): a checkpoint commits to a log's root hash, an inclusion proof shows that
one event is in the log, and a consistency proof shows that a newer log is an append-only
extension of an older one. Anyone holding a signed checkpoint can check these proofs with
`verify_inclusion` and `verify_consistency` (in `_merkle_check`) alone, without trusting the
lake's storage. Trees built whole in memory and the right frontier of a growing log are in
`_levels`.

Proofs are *generated* against a `NodeFn`, a callable returning the hash of any complete
subtree, so the caller decides where nodes come from: stored tiles (O(log n) reads per
proof), a `MerkleLevels` built in memory from all leaf hashes, or anything else. Every
function here only ever asks for complete subtrees; the hashes of incomplete ("ephemeral")
subtrees on the right edge of a tree are recomputed from complete ones.

Proof failures, and proofs that cannot be produced, raise `lake.contract.ProofError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256
from typing import Final, TypeAlias

from lake.contract import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NODE_PREFIX",
    "NodeFn",
    "check_hash",
    "consistency_proof",
    "inclusion_proof",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "root",
    "subtree_hash",
    "tree_root",
]

HASH_SIZE: Final = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: Final[bytes] = sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string: the root hash of a tree with no leaves."""

NodeFn: TypeAlias = Callable[[int, int], bytes]
"""`node(level, index)`: hash of the complete subtree of leaves [index, index + 1) * 2**level."""

_LEAF_PREFIX: Final = sha256(b"\x00")
NODE_PREFIX: Final = sha256(b"\x01")


def leaf_hash(leaf: bytes) -> bytes:
    """Hashes one leaf: SHA-256(0x00 || leaf) (RFC 9162 §2.1.1).

    Args:
        leaf: The leaf's input bytes (for auditlake, an event's canonical encoding).

    Returns:
        The 32-byte leaf hash.
    """
    h = _LEAF_PREFIX.copy()
    h.update(leaf)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hashes an interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1).

    Args:
        left: Hash of the left child.
        right: Hash of the right child.

    Returns:
        The 32-byte node hash.
    """
    h = NODE_PREFIX.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def largest_power_of_two_below(n: int) -> int:
    """Returns k, the largest power of two strictly less than n (the RFC's split point).

    Args:
        n: A number of leaves, at least 2.

    Returns:
        The largest power of two k with k < n.

    Raises:
        ValueError: If n < 2 (no such power of two splits the tree).
    """
    if n < 2:
        raise ValueError(f"largest_power_of_two_below needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Reference Merkle Tree Hash over leaf hashes, the RFC 9162 §2.1.1 recursion verbatim.

    Takes O(n) hashes; use it for tests and small trees. For large logs use `MerkleLevels`
    or `tree_root` with a node source.

    Args:
        leaf_hashes: The leaf hashes, in log order.

    Returns:
        MTH of the tree (`EMPTY_ROOT` when there are no leaves).
    """

    def mth(lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 1:
            return leaf_hashes[lo]
        k = largest_power_of_two_below(n)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    if not leaf_hashes:
        return EMPTY_ROOT
    return mth(0, len(leaf_hashes))


def subtree_hash(lo: int, hi: int, node: NodeFn) -> bytes:
    """MTH of the leaves [lo, hi), read from complete subtrees where possible.

    If the size is a power of two and lo is a multiple of it, the range is one complete
    subtree and costs one `node` call. Otherwise it is split as in the RFC recursion,
    H(MTH(lo, lo+k), MTH(lo+k, hi)) with k the largest power of two below the size. For the
    ranges that proofs and roots use (lo a multiple of a power of two >= hi - lo) this reads
    at most one node per set bit of hi - lo. Any other range still gives MTH(D[lo:hi]), at a
    higher cost.

    Args:
        lo: First leaf index of the range.
        hi: One past the last leaf index; lo < hi.
        node: Source of complete-subtree hashes.

    Returns:
        The 32-byte hash of the (possibly incomplete) subtree.

    Raises:
        ProofError: If the range is empty or negative.
    """
    if not 0 <= lo < hi:
        raise ProofError(f"subtree range [{lo}, {hi}) is empty or negative")
    size = hi - lo
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        if lo & (size - 1) == 0:
            return node(level, lo >> level)
    k = largest_power_of_two_below(size)
    return node_hash(subtree_hash(lo, lo + k, node), subtree_hash(lo + k, hi, node))


def tree_root(size: int, node: NodeFn) -> bytes:
    """Root hash of the tree made of the first `size` leaves.

    Args:
        size: Tree size (number of leaves); 0 gives `EMPTY_ROOT`.
        node: Source of complete-subtree hashes of a log with at least `size` leaves.

    Returns:
        The 32-byte root hash; at most one `node` call per set bit of `size`.

    Raises:
        ProofError: If size is negative.
    """
    if size < 0:
        raise ProofError(f"tree size must not be negative, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return subtree_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeFn) -> list[bytes]:
    """Inclusion proof of one leaf in the tree of `size` leaves (RFC 9162 §2.1.3.1).

    Args:
        index: Leaf index, 0 <= index < size.
        size: Tree size.
        node: Source of complete-subtree hashes of a log with at least `size` leaves.

    Returns:
        PATH(index, D[size]) in RFC order: the sibling hashes from the leaf upward. Costs
        O(log size) `node` calls.

    Raises:
        ProofError: If index is not in [0, size).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is out of range for tree size {size}")
    # Walk down from the root; the sibling met at each split is one proof element, so
    # the elements come out top-down and are reversed at the end.
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + largest_power_of_two_below(hi - lo)
        if index < mid:
            path.append(subtree_hash(mid, hi, node))
            hi = mid
        else:
            path.append(subtree_hash(lo, mid, node))
            lo = mid
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, node: NodeFn) -> list[bytes]:
    """Consistency proof between two sizes of the same log (RFC 9162 §2.1.4.1).

    Args:
        old_size: Size of the older tree, 0 < old_size <= new_size.
        new_size: Size of the newer tree.
        node: Source of complete-subtree hashes of a log with at least `new_size` leaves.

    Returns:
        PROOF(old_size, D[new_size]); empty when the sizes are equal (including 0 == 0).
        Costs O(log new_size) `node` calls.

    Raises:
        ProofError: If old_size > new_size, or old_size is 0 while new_size is not (RFC 9162
            defines no proof from the empty tree).
    """
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"cannot prove consistency from size {old_size} to size {new_size}")
    if old_size == new_size:
        return []
    if old_size == 0:
        raise ProofError("RFC 9162 defines no consistency proof from the empty tree (size 0)")
    # SUBPROOF(m, D[lo:hi], b), unrolled; outer elements are collected first and reversed.
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(subtree_hash(lo, hi, node))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            proof.append(subtree_hash(lo + k, hi, node))
            hi = lo + k
        else:
            proof.append(subtree_hash(lo, lo + k, node))
            lo += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def check_hash(what: str, h: bytes) -> None:
    """Raises `ProofError` naming `what` unless `h` is one hash (32 bytes)."""
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(h)}")
