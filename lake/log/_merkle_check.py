"""Checking RFC 9162 inclusion and consistency proofs against trusted roots.

Both checks are the RFC's §2.1.3.2 and §2.1.4.2 algorithms; they share the one walk up the
tree (`_steps`) that decides, for each proof element, on which side it joins. Anyone holding
a signed checkpoint needs only these two functions, not the lake's storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from lake.contract import ProofError
from lake.log._merkle import EMPTY_ROOT, check_hash, largest_power_of_two_below, node_hash

__all__ = ["verify_consistency", "verify_inclusion"]


def _short(h: bytes) -> str:
    return h[:8].hex() + "…"


def _check_path(path: Sequence[bytes]) -> None:
    for i, h in enumerate(path):
        check_hash(f"proof element {i}", h)


def _inclusion_path_length(index: int, size: int) -> int:
    """Length of PATH(index, D[size]), for error messages."""
    n, lo, hi = 0, 0, size
    while hi - lo > 1:
        mid = lo + largest_power_of_two_below(hi - lo)
        lo, hi = (lo, mid) if index < mid else (mid, hi)
        n += 1
    return n


def _consistency_path_length(old_size: int, new_size: int) -> int:
    """Length of PROOF(old_size, D[new_size]) for 0 < old_size < new_size."""
    count, n, m, complete = 0, new_size, old_size, True
    while m != n:
        k = largest_power_of_two_below(n)
        count += 1
        if m <= k:
            n = k
        else:
            n, m, complete = n - k, m - k, False
    return count + (0 if complete else 1)


def _steps(
    fn: int, sn: int, path: Sequence[bytes], failure: Callable[[str], str]
) -> Iterator[tuple[bytes, bool]]:
    """Walks `path` up from node `fn` of a tree whose last node is `sn` (RFC 9162 steps 4/6).

    Yields each element with True when it joins on the left (LSB(fn) set, or fn == sn).
    Raises `ProofError(failure("long"))` when elements remain at the root and
    `ProofError(failure("short"))` when the root is not reached.
    """
    for p in path:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(failure("long"))
        # b. If LSB(fn) is set, or if fn is equal to sn, then: ...
        left = bool(fn & 1) or fn == sn
        yield p, left
        # ... if LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
        if left and not fn & 1:
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # Compare sn to 0.
    if sn != 0:
        raise ProofError(failure("short"))


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Verifies an inclusion proof, exactly as RFC 9162 §2.1.3.2 prescribes.

    Args:
        leaf_hash: Hash of the leaf (see `leaf_hash`), 32 bytes.
        index: The leaf's index in the tree.
        size: The tree size the proof and root are for.
        path: The inclusion path, from the leaf upward.
        root: The trusted root hash of the tree of `size` leaves.

    Raises:
        ProofError: If index >= size (or either is negative), any hash is not 32 bytes, the
            path has the wrong length for (index, size), or the computed root differs.
    """
    check_hash("leaf hash", leaf_hash)
    check_hash("root hash", root)
    _check_path(path)
    if index < 0 or size < 0:
        raise ProofError(f"leaf index {index} and tree size {size} must not be negative")
    # 1. If leaf_index >= tree_size, fail.
    if index >= size:
        raise ProofError(f"leaf index {index} is out of range for tree size {size}")

    def failure(how: str) -> str:
        return (
            f"inclusion path is too {how}: {len(path)} hashes, expected "
            f"{_inclusion_path_length(index, size)} for leaf {index} in tree size {size}"
        )

    # 2.-3. fn = leaf_index, sn = tree_size - 1, r = hash; 4. for each p in the path:
    r = leaf_hash
    for p, left in _steps(index, size - 1, path, failure):
        r = node_hash(p, r) if left else node_hash(r, p)
    # 5. Compare r against root_hash.
    if r != root:
        raise ProofError(
            f"inclusion proof for leaf {index} gives root {_short(r)}, "
            f"expected {_short(root)} for tree size {size}"
        )


def _check_trivial(old_size: int, new_size: int, old_root: bytes, new_root: bytes, n: int) -> bool:
    """The cases outside the RFC's 0 < old_size < new_size: True when the proof (of `n`
    hashes) holds trivially, False when the RFC algorithm must run; raises when it fails."""
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must not be negative, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size == new_size:
        if n:
            raise ProofError(
                f"consistency proof between equal sizes ({old_size}) must be empty, got {n} hashes"
            )
        if old_root != new_root:
            raise ProofError(
                f"roots differ at equal tree size {old_size}: "
                f"{_short(old_root)} != {_short(new_root)}"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError(f"root of the empty tree must be {_short(EMPTY_ROOT)}")
        return True
    if old_size == 0:
        raise ProofError("RFC 9162 defines no consistency proof from the empty tree (size 0)")
    return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    """Verifies a consistency proof, exactly as RFC 9162 §2.1.4.2 prescribes.

    The RFC covers 0 < old_size < new_size. At the edges this follows transparency-dev/merkle
    (proof/verify.go), except where marked stricter:

    * old_size > new_size fails.
    * old_size == new_size needs an empty path and equal roots; for size 0 the root must
      also be `EMPTY_ROOT` (stricter: Go accepts any two equal roots).
    * old_size == 0 < new_size fails (stricter: Go accepts it with an empty path and checks
      neither root); the RFC defines no such proof and it would prove nothing.

    Args:
        old_size: Size of the older tree.
        new_size: Size of the newer tree.
        old_root: Trusted root hash of the older tree, 32 bytes.
        new_root: Trusted root hash of the newer tree, 32 bytes.
        path: The consistency proof.

    Raises:
        ProofError: If any hash is not 32 bytes, the sizes are out of order, the path has the
            wrong length, or either computed root differs from the given one.
    """
    check_hash("old root hash", old_root)
    check_hash("new root hash", new_root)
    _check_path(path)
    if _check_trivial(old_size, new_size, old_root, new_root, len(path)):
        return
    expected = _consistency_path_length(old_size, new_size)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} is empty, "
            f"expected {expected} hashes"
        )
    # 2. If first is an exact power of 2, prepend first_hash to the consistency_path array.
    cp = list(path)
    if old_size & (old_size - 1) == 0:
        cp.insert(0, old_root)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1

    def failure(how: str) -> str:
        return (
            f"consistency proof from size {old_size} to {new_size} is too {how}: "
            f"{len(path)} hashes, expected {expected}"
        )

    # 5. Set both fr and sr to the first value; 6. for each subsequent value c:
    fr = sr = cp[0]
    for c, left in _steps(fn, sn, cp[1:], failure):
        if left:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    # 7. Verify fr == first_hash, sr == second_hash (and sn == 0, checked by the walk).
    if fr != old_root:
        raise ProofError(
            f"consistency proof gives root {_short(fr)} for old size {old_size}, "
            f"expected {_short(old_root)}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof gives root {_short(sr)} for new size {new_size}, "
            f"expected {_short(new_root)}"
        )
