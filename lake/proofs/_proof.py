"""Inclusion and consistency proofs out of the lake, and their offline check.

A proof is plain JSON (the proof contract): the stored row, its leaf bytes, the leaf index, the
inclusion path and the signed checkpoint it leads to. `check_proof` needs nothing but the
JSON and a verifier key: it checks the checkpoint signature, that the human-readable
`event` re-encodes to exactly the proven leaf, and the RFC 9162 inclusion path. Node
hashes come from the stored tiles, so producing a proof costs O(log n) small reads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import (
    EVENTS_SCHEMA,
    NoteError,
    ProofError,
    decode_leaf,
    encode_leaf,
    leaf_hash_of,
)
from lake.log import (
    Checkpoint,
    TileLog,
    VerifierKey,
    consistency_proof,
    inclusion_proof,
    parse_note,
    tree_root,
    verify_consistency,
    verify_inclusion,
    verify_note,
)
from lake.spec import utc_text
from lake.storage import Lake, check_tenant
from lake.write import candidate_files

PROOF_FIELDS = (
    "tenant",
    "event_id",
    "event",
    "leaf",
    "leaf_index",
    "tree_size",
    "inclusion_path",
    "checkpoint",
    "verifier_key",
)


def format_time(value: datetime) -> str:
    """UTC, microseconds, 'Z': the one textual form of stored timestamps."""
    return utc_text(value)


def row_to_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as JSON-ready values (times RFC 3339 UTC, hashes hex)."""
    out: dict[str, Any] = {}
    for name in EVENTS_SCHEMA.names:
        value = row.get(name)
        if isinstance(value, datetime):
            value = format_time(value)
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.hex()
        out[name] = value
    return out


def _json_to_leaf_row(event: dict[str, Any]) -> dict[str, Any]:
    row = dict(event)
    for name in ("time", "received_at"):
        text = row.get(name)
        if not isinstance(text, str):
            raise ProofError(f"event.{name} is missing or not a string")
        try:
            row[name] = datetime.fromisoformat(text)
        except ValueError:
            raise ProofError(f"event.{name} {text!r} is not a timestamp") from None
    return row


def find_event(lake: Lake, tenant: str, event_id: str) -> dict[str, Any]:
    """The stored row of one event of one tenant (ProofError when absent or ambiguous).

    Only files whose event_id statistics hold the id are read (lake/write/_unique.py): with
    time-ordered ids, usually the id's own partition. An id stored more than once is
    refused rather than one of its rows picked (`verify` reports it as `duplicate`).
    """
    check_tenant(tenant)
    table = lake.events_table()
    files = lake.data_files(table, tenants={tenant}, ids=True)
    found = [
        lake.read_file(f, filters=[("event_id", "=", event_id)])
        for f in candidate_files(files, {tenant: [event_id]})
    ]
    rows: list[dict[str, Any]] = [row for part in found for row in part.to_pylist()]
    if not rows:
        raise ProofError(f"no event {event_id!r} in tenant {tenant}")
    if len(rows) > 1:
        raise ProofError(
            f"event id {event_id!r} is ambiguous in tenant {tenant}: {len(rows)} stored events "
            "use it; run `auditlake verify`"
        )
    return rows[0]


def latest_checkpoint(lake: Lake, tenant: str) -> dict[str, Any]:
    """The tenant's checkpoint row with the largest tree size (ProofError if none)."""
    cps = lake.read_checkpoints({tenant})
    if cps.num_rows == 0:
        raise ProofError(f"tenant {tenant} has no signed checkpoint yet")
    best = pc.max(cps.column("tree_size")).as_py()
    return dict(cps.filter(pc.equal(cps.column("tree_size"), best)).slice(0, 1).to_pylist()[0])


def _checkpoint_at(lake: Lake, tenant: str, size: int) -> dict[str, Any] | None:
    cps = lake.read_checkpoints({tenant})
    hit = cps.filter(pc.equal(cps.column("tree_size"), pa.scalar(size, pa.int64())))
    return dict(hit.slice(0, 1).to_pylist()[0]) if hit.num_rows else None


def verifier_key_for(lake: Lake, key_name: str, local: Sequence[str] = ()) -> str | None:
    """The verifier key string of `key_name`, from local keys first, then the lake's list."""
    for text in [*local, *lake.published_keys]:
        if text.split("+", 1)[0] == key_name:
            return text
    return None


def inclusion(
    row: dict[str, Any],
    cp: dict[str, Any],
    node: Any,
    verifier_key: str | None,
) -> dict[str, Any]:
    """The inclusion proof (the `prove` format) of a stored row against a checkpoint row.

    `node` is the tenant's tile node function at the checkpoint's size. Refuses rows that
    are not sealed yet or do not match their stored leaf hash.
    """
    event_id = row["event_id"]
    size = int(cp["tree_size"])
    index = int(row["seq"])
    if index >= size:
        raise ProofError(
            f"event {event_id} (seq {index}) is not sealed yet: the latest checkpoint covers "
            f"{size} events; run `auditlake seal`"
        )
    leaf = encode_leaf(row)
    if leaf_hash_of(leaf) != row["leaf_hash"]:
        raise ProofError(
            f"the stored event {event_id} does not match its leaf hash; run `auditlake verify`"
        )
    path = inclusion_proof(index, size, node)
    verify_inclusion(leaf_hash_of(leaf), index, size, path, cp["root_hash"])
    return {
        "tenant": row["tenant"],
        "event_id": event_id,
        "event": row_to_json(row),
        "leaf": base64.b64encode(leaf).decode(),
        "leaf_index": index,
        "tree_size": size,
        "inclusion_path": [h.hex() for h in path],
        "checkpoint": cp["note"],
        "verifier_key": verifier_key,
    }


def prove(lake: Lake, tenant: str, event_id: str, local_keys: Sequence[str] = ()) -> dict[str, Any]:
    """An inclusion proof of one event in the tenant's latest signed checkpoint."""
    row = find_event(lake, tenant, event_id)
    cp = latest_checkpoint(lake, tenant)
    node = TileLog(lake, tenant).node_fn(int(cp["tree_size"]))
    return inclusion(row, cp, node, verifier_key_for(lake, cp["key_name"], local_keys))


def prove_consistency(
    lake: Lake, tenant: str, old_size: int, local_keys: Sequence[str] = ()
) -> dict[str, Any]:
    """A consistency proof from size `old_size` to the tenant's latest signed checkpoint."""
    check_tenant(tenant)
    cp = latest_checkpoint(lake, tenant)
    new_size = int(cp["tree_size"])
    if not 0 < old_size <= new_size:
        raise ProofError(f"old size must be between 1 and the latest tree size {new_size}")
    node = TileLog(lake, tenant).node_fn(new_size)
    path = consistency_proof(old_size, new_size, node)
    old_root = tree_root(old_size, node)
    verify_consistency(old_size, new_size, old_root, cp["root_hash"], path)
    old_cp = _checkpoint_at(lake, tenant, old_size)
    return {
        "tenant": tenant,
        "old_size": old_size,
        "new_size": new_size,
        "old_root": old_root.hex(),
        "new_root": bytes(cp["root_hash"]).hex(),
        "consistency_path": [h.hex() for h in path],
        "old_checkpoint": old_cp["note"] if old_cp else None,
        "checkpoint": cp["note"],
        "verifier_key": verifier_key_for(lake, cp["key_name"], local_keys),
    }


def _hexes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise ProofError(f"{what} must be a list of hex hashes")
    try:
        return [bytes.fromhex(v) for v in value]
    except (TypeError, ValueError):
        raise ProofError(f"{what} holds something that is not a hex hash") from None


def _open(note: Any, keys: Sequence[VerifierKey], what: str) -> Checkpoint:
    if not isinstance(note, str):
        raise ProofError(f"{what} is missing")
    try:
        verify_note(note, keys)
        text, _ = parse_note(note)
        return Checkpoint.parse(text)
    except NoteError as exc:
        raise ProofError(f"{what}: {exc}") from None


def check_proof(proof: Any, keys: Sequence[VerifierKey]) -> str:
    """Check an inclusion or consistency proof; returns a one-line description.

    Raises ProofError naming the first thing that does not hold.
    """
    if not isinstance(proof, dict):
        raise ProofError("a proof is a JSON object")
    if not keys:
        raise ProofError("no verifier key to check the checkpoint with (give --key)")
    if "consistency_path" in proof:
        return _check_consistency(proof, keys)
    missing = [f for f in PROOF_FIELDS if f not in proof and f != "verifier_key"]
    if missing:
        raise ProofError(f"proof lacks {', '.join(missing)}")
    cp = _open(proof["checkpoint"], keys, "checkpoint")
    tenant = proof["tenant"]
    if not isinstance(tenant, str) or cp.origin.rsplit("/", 1)[-1] != tenant:
        raise ProofError(f"checkpoint origin {cp.origin!r} is not the log of tenant {tenant!r}")
    if proof["tree_size"] != cp.tree_size:
        raise ProofError("tree_size differs from the checkpoint's")
    try:
        leaf = base64.b64decode(proof["leaf"], validate=True)
        fields = decode_leaf(leaf)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProofError(f"leaf is malformed ({exc})") from None
    if fields["tenant"] != tenant or fields["event_id"] != proof["event_id"]:
        raise ProofError("leaf belongs to another tenant or event")
    event = proof["event"]
    if not isinstance(event, dict) or encode_leaf(_json_to_leaf_row(event)) != leaf:
        raise ProofError("event does not match the proven leaf (it was altered)")
    index = proof["leaf_index"]
    if not isinstance(index, int) or event.get("seq") != index:
        raise ProofError("leaf_index is not the event's seq")
    path = _hexes(proof["inclusion_path"], "inclusion_path")
    verify_inclusion(leaf_hash_of(leaf), index, cp.tree_size, path, cp.root_hash)
    return (
        f"event {proof['event_id']} is leaf {index} of {cp.origin} at size {cp.tree_size}, "
        "signed by a trusted key"
    )


def _check_consistency(proof: dict[str, Any], keys: Sequence[VerifierKey]) -> str:
    cp = _open(proof.get("checkpoint"), keys, "checkpoint")
    old_size = proof.get("old_size")
    if not isinstance(old_size, int) or proof.get("new_size") != cp.tree_size:
        raise ProofError("old_size/new_size do not match the checkpoint")
    if proof.get("old_checkpoint"):
        old = _open(proof["old_checkpoint"], keys, "old_checkpoint")
        if old.origin != cp.origin or old.tree_size != old_size:
            raise ProofError("old_checkpoint is of another log or size")
        old_root = old.root_hash
    else:
        try:
            old_root = bytes.fromhex(str(proof.get("old_root")))
        except ValueError:
            raise ProofError("old_root is not a hex hash") from None
    path = _hexes(proof.get("consistency_path"), "consistency_path")
    verify_consistency(old_size, cp.tree_size, old_root, cp.root_hash, path)
    return f"{cp.origin}: size {old_size} is a prefix of size {cp.tree_size}"
