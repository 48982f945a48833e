"""Witness cosignatures: the client and the cosignature store."""

from __future__ import annotations

from lake.witness._witness import (
    MAX_BODY,
    Cosigner,
    CosignerKey,
    Witness,
    WitnessConfig,
    WitnessError,
    cosignatures_in,
    encode_request,
    load_witnesses,
    request_cosignatures,
    save_witnesses,
    stored_cosignatures,
)

__all__ = [
    "MAX_BODY",
    "Cosigner",
    "CosignerKey",
    "Witness",
    "WitnessConfig",
    "WitnessError",
    "cosignatures_in",
    "encode_request",
    "load_witnesses",
    "request_cosignatures",
    "save_witnesses",
    "stored_cosignatures",
]
