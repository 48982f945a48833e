"""Inclusion and consistency proofs, and evidence packs built from them."""

from __future__ import annotations

from lake.proofs._checkpoints import (
    export_checkpoints,
)
from lake.proofs._evidence import (
    MAX_MEMBERS,
    build_pack,
    check_pack,
    is_pack,
    read_input,
)
from lake.proofs._proof import (
    check_proof,
    find_event,
    format_time,
    latest_checkpoint,
    prove,
    prove_consistency,
    row_to_json,
)

__all__ = [
    "MAX_MEMBERS",
    "build_pack",
    "check_pack",
    "check_proof",
    "export_checkpoints",
    "find_event",
    "format_time",
    "is_pack",
    "latest_checkpoint",
    "prove",
    "prove_consistency",
    "read_input",
    "row_to_json",
]
