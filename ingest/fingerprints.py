"""64-bit fingerprints of (tenant, id): duplicate ids across a whole input in bounded memory."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fingerprints"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)


def fingerprints(
    tenant: pa.Array | pa.ChunkedArray, ids: pa.Array | pa.ChunkedArray, seed: int
) -> np.ndarray:
    """A 64-bit fingerprint of (tenant, id) for each row with an id, in row order.

    Equal keys give equal fingerprints; different keys collide with probability 2^-64
    per pair, and every collision is checked exactly (`_reject_duplicates`). Valid
    tenants and ids are printable ASCII, so the keys padded to one width form a matrix of
    64-bit words that numpy mixes column by column, without a Python step per event.
    `seed` (random per ingest) keeps crafted inputs from colliding on purpose.
    """
    has_id = pc.is_valid(ids)
    if not _all(has_id):
        tenant, ids = pc.filter(tenant, has_id), pc.filter(ids, has_id)
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64)
    keys = pc.binary_join_element_wise(tenant, ids, pa.scalar("\x00", pa.string()))
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    lengths = pc.binary_length(keys).to_numpy(zero_copy_only=False).astype(np.uint64)
    width = (int(lengths.max()) + 7) // 8 * 8
    padded = pc.utf8_rpad(keys, width=width, padding="\x00")
    n = len(keys)
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[padded.offset :][: n + 1]
    start = int(offsets[0])
    if int(offsets[-1]) - start != n * width:
        # Some key is not ASCII (validated rows never are): fingerprint one at a time.
        salt = seed.to_bytes(8, "little")
        return np.array(
            [
                int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8, salt=salt).digest())
                for k in keys.to_pylist()
            ],
            dtype=np.uint64,
        )
    words = (
        np.frombuffer(padded.buffers()[2], dtype=np.uint8, count=n * width, offset=start)
        .view(np.uint64)
        .reshape(n, width // 8)
    )
    h: np.ndarray = lengths * _GOLDEN ^ np.uint64(seed)
    for k in range(width // 8):
        # Only a key's own words: the padding width differs between chunks (it is the
        # longest key's), and a key must fingerprint alike in every chunk.
        mixed = (h ^ words[:, k]) * _MIX1
        mixed ^= mixed >> np.uint64(32)
        h = np.where(lengths > np.uint64(8 * k), mixed, h)
    h ^= h >> np.uint64(33)
    h *= _MIX2
    h ^= h >> np.uint64(33)
    return h


def _all(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.all(mask).as_py())
