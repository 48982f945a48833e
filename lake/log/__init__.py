"""The verifiable log: Merkle tree hashing, signed notes and checkpoints, tiles."""

from __future__ import annotations

from lake.log._checkpoint import (
    Checkpoint,
    open_checkpoint,
    sign_checkpoint,
    time_line,
)
from lake.log._levels import (
    CompactRange,
    MerkleLevels,
    frontier,
)
from lake.log._merkle import (
    EMPTY_ROOT,
    NodeFn,
    consistency_proof,
    inclusion_proof,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root,
    subtree_hash,
    tree_root,
)
from lake.log._merkle_check import (
    verify_consistency,
    verify_inclusion,
)
from lake.log._note import (
    NoteSignature,
    NoteSigner,
    VerifiedNote,
    VerifierKey,
    generate_signer,
    key_hash,
    parse_note,
    sign_note,
    verify_note,
)
from lake.log._tiles import (
    STALE_TEMP_SECONDS,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileLog,
    encode_index,
    rebuild,
    remove_stale_temp,
    tile_path,
)

__all__ = [
    "EMPTY_ROOT",
    "STALE_TEMP_SECONDS",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Checkpoint",
    "CompactRange",
    "MerkleLevels",
    "NodeFn",
    "NoteSignature",
    "NoteSigner",
    "TileLog",
    "VerifiedNote",
    "VerifierKey",
    "consistency_proof",
    "encode_index",
    "frontier",
    "generate_signer",
    "inclusion_proof",
    "key_hash",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_note",
    "rebuild",
    "remove_stale_temp",
    "root",
    "sign_checkpoint",
    "sign_note",
    "subtree_hash",
    "tile_path",
    "time_line",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]
