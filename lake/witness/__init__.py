"""Witness cosignatures: the witness (server), the log's client and the cosignature store."""

from __future__ import annotations

from lake.witness._client import (
    WitnessConfig,
    WitnessResult,
    load_witnesses,
    request_cosignatures,
    save_witnesses,
)
from lake.witness._store import CosignatureStore, Cosigned
from lake.witness._witness import (
    MAX_BODY,
    Cosigner,
    CosignerKey,
    TreeHead,
    Witness,
    WitnessError,
    cosignatures_in,
    encode_request,
)

__all__ = [
    "MAX_BODY",
    "CosignatureStore",
    "Cosigned",
    "Cosigner",
    "CosignerKey",
    "TreeHead",
    "Witness",
    "WitnessConfig",
    "WitnessError",
    "WitnessResult",
    "cosignatures_in",
    "encode_request",
    "load_witnesses",
    "request_cosignatures",
    "save_witnesses",
]
