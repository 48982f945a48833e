"""Evidence packs: chosen events with their inclusion proofs, in one zip checkable offline.

What an auditor or a court needs to rely on an event without trusting whoever stores the
lake: the stored rows, one `prove`-format inclusion proof per event (leaf bytes, path, signed
checkpoint), the signed checkpoints and the verifier key. `check_pack` (and
`auditlake verify-proof pack.zip`) re-checks every proof with a key given from outside,
and that the rows listed in `events.jsonl` are exactly the proven ones.

Layout of the zip:

    README.txt              how to check it, by tool and by hand
    manifest.json           tenants, event ids, tree sizes, who made it and when
    events.jsonl            the stored rows (JSON, one a line)
    proofs/<event_id>.json  one inclusion proof each (`auditlake prove` format)
    checkpoints/<tenant>.txt  the signed checkpoint the proofs lead to
    verifier_keys.txt       the verifier keys named by the checkpoints

A pack comes from outside, so reading one is bounded (a zip bomb of a few hundred KB once
inflated to 1.75 GB): at most MAX_MEMBERS members, each read in chunks and refused as
soon as it passes its cap (MAX_MEMBER_BYTES; events.jsonl EVENT_BYTES per proof) or
inflates more than MAX_RATIO times its compressed size, whatever its header declares.
"""

from __future__ import annotations

import io
import sys
import zipfile
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from lake.contract import ProofError, UsageError
from lake.log import TileLog, VerifierKey
from lake.proofs._proof import check_proof, inclusion, latest_checkpoint, verifier_key_for
from lake.spec import utc_text
from lake.storage import Lake, check_tenant

MAX_EVENTS: Final = 10_000
MAX_INPUT_BYTES: Final = 256 << 20  # a proof or a pack file given to verify-proof
MAX_MEMBERS: Final = MAX_EVENTS + 16
MAX_MEMBER_BYTES: Final = 1 << 20  # a proof is a few KB; an event at most ~40 KB
EVENT_BYTES: Final = 128 << 10  # events.jsonl: per proof in the pack
MAX_RATIO: Final = 200  # JSON deflates ~5-20x; zeros ~1000x
RATIO_FLOOR: Final = 1 << 20  # small members may deflate well: only larger ones are judged
CHUNK: Final = 64 << 10

README: Final = """auditlake evidence pack
=======================

Each file under proofs/ proves that one event is part of its tenant's append-only,
signed log (RFC 9162 Merkle tree, C2SP signed checkpoint).

Check everything with the verifier key you hold independently (not the copy in here):

    auditlake verify-proof this-pack.zip --key 'NAME+HASH+BASE64KEY'

By hand, with nothing but this pack, the key and the two specs: for each proof, decode
`leaf` (base64) and check that it encodes `event`: the byte 0x01, then these 16 fields
in this order, each as a 4-byte big-endian length and its UTF-8 bytes (FF FF FF FF for
null): tenant, event_id, time, received_at, category, action, outcome, severity,
actor_id, actor_type, actor_ip, user_agent, target_type, target_id, source, details
(times as the decimal microseconds since the Unix epoch, UTC; details as stored).
Hash it as SHA-256(0x00 || leaf), fold `inclusion_path` into a root per RFC 9162
section 2.1.3.2, and compare with the root in `checkpoint` (a C2SP tlog-checkpoint),
whose Ed25519 signed-note signature must verify with the key.
"""


def _rows(lake: Lake, tenant: str, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these events of one tenant, in one pass over its files."""
    wanted = set(event_ids)
    found: dict[str, dict[str, Any]] = {}
    table = lake.events_table()
    for f in lake.data_files(table, tenants={tenant}):
        part = lake.read_file(f, filters=[("event_id", "in", sorted(wanted))])
        for row in part.to_pylist():
            found[row["event_id"]] = row
        if len(found) == len(wanted):
            break
    return found


def prove_many(
    lake: Lake, tenant: str, event_ids: Sequence[str], local_keys: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Inclusion proofs of several events against the tenant's latest checkpoint.

    Reads the tenant's rows and its checkpoint once, not once per event.
    """
    check_tenant(tenant)
    if len(event_ids) > MAX_EVENTS:
        raise UsageError(f"at most {MAX_EVENTS} events per evidence pack")
    rows = _rows(lake, tenant, event_ids)
    missing = [e for e in event_ids if e not in rows]
    if missing:
        raise ProofError(f"no event {missing[0]!r} in tenant {tenant}")
    cp = latest_checkpoint(lake, tenant)
    node = TileLog(lake, tenant).node_fn(int(cp["tree_size"]))
    key = verifier_key_for(lake, cp["key_name"], local_keys)
    return [inclusion(rows[event_id], cp, node, key) for event_id in event_ids]


def build_pack(
    lake: Lake,
    events: Sequence[tuple[str, str]],
    *,
    made_by: str,
    note: str = "",
    local_keys: Sequence[str] = (),
) -> bytes:
    """A zip of (tenant, event_id) pairs with their proofs; see the module docstring."""
    if not events:
        raise UsageError("an evidence pack needs at least one event")
    by_tenant: dict[str, list[str]] = {}
    for tenant, event_id in events:
        ids = by_tenant.setdefault(tenant, [])
        if event_id not in ids:
            ids.append(event_id)
    proofs: list[dict[str, Any]] = []
    for tenant, ids in sorted(by_tenant.items()):
        proofs += prove_many(lake, tenant, ids, local_keys)
    buf = io.BytesIO()
    manifest = {
        "format": "auditlake-evidence/1",
        "lake": lake.name,
        "made_by": made_by,
        "made_at": utc_text(datetime.now(UTC)),
        "note": note,
        "tenants": {
            t: {
                "events": len(ids),
                "tree_size": next(p["tree_size"] for p in proofs if p["tenant"] == t),
            }
            for t, ids in sorted(by_tenant.items())
        },
        "event_ids": [p["event_id"] for p in proofs],
    }
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", README)
        zf.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        zf.writestr(
            "events.jsonl",
            b"".join(orjson.dumps(p["event"], option=orjson.OPT_SORT_KEYS) + b"\n" for p in proofs),
        )
        for p in proofs:
            zf.writestr(f"proofs/{p['event_id']}.json", orjson.dumps(p, option=orjson.OPT_INDENT_2))
        for tenant in sorted(by_tenant):
            first = next(p for p in proofs if p["tenant"] == tenant)
            zf.writestr(f"checkpoints/{tenant}.txt", first["checkpoint"])
        keys = sorted({p["verifier_key"] for p in proofs if p["verifier_key"]})
        zf.writestr("verifier_keys.txt", "".join(k + "\n" for k in keys))
    return buf.getvalue()


def read_input(name: str) -> bytes:
    """The bytes of a proof or pack file ('-': stdin), refused past MAX_INPUT_BYTES.

    Raises UsageError for a file too large, OSError when it cannot be read.
    """
    if name == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(name, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{name}: larger than {MAX_INPUT_BYTES >> 20} MiB; not a proof or pack")
    return data


def _member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """One member's bytes, read in chunks and refused as soon as it passes `cap` or
    MAX_RATIO (the header's sizes are checked too, but not trusted)."""
    info = zf.getinfo(name)
    too_big = f"the pack's {name} inflates beyond {cap} bytes; refusing it"
    if info.file_size > cap:
        raise UsageError(too_big)
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(CHUNK):
                out += chunk
                if len(out) > cap:
                    raise UsageError(too_big)
                if len(out) > RATIO_FLOOR and len(out) > MAX_RATIO * max(info.compress_size, 1):
                    raise UsageError(
                        f"the pack's {name} inflates more than {MAX_RATIO} times its "
                        "compressed size (a zip bomb?); refusing it"
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ProofError(f"{name}: cannot be read from the zip ({exc})") from None
    return bytes(out)


def is_pack(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def check_pack(data: bytes, keys: Sequence[VerifierKey]) -> list[str]:
    """Check every proof of a pack with `keys`; returns one line per proof.

    Raises ProofError naming the first proof (or listing) that does not hold, and
    UsageError for a pack past the reading limits (module docstring).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ProofError("not a valid zip file") from None
    with zf:
        if len(zf.infolist()) > MAX_MEMBERS:
            raise UsageError(f"the pack holds more than {MAX_MEMBERS} files; refusing it")
        names = [n for n in zf.namelist() if n.startswith("proofs/") and n.endswith(".json")]
        if not names:
            raise ProofError("the pack holds no proofs/")
        lines = []
        proven: dict[str, Any] = {}
        for name in sorted(names):
            try:
                proof = orjson.loads(_member(zf, name, MAX_MEMBER_BYTES))
            except orjson.JSONDecodeError:
                raise ProofError(f"{name}: not JSON") from None
            try:
                lines.append(check_proof(proof, keys))
            except ProofError as exc:
                raise ProofError(f"{name}: {exc}") from None
            proven[proof["event_id"]] = proof["event"]
        try:
            raw = _member(zf, "events.jsonl", EVENT_BYTES * len(names))
        except KeyError:
            raise ProofError("the pack lacks events.jsonl") from None
        listed = _listed_events(raw)
        ids = [e["event_id"] for e in listed]
        if (
            len(ids) != len(set(ids))
            or set(ids) != set(proven)
            or any(e != proven.get(e["event_id"]) for e in listed)
        ):
            raise ProofError("events.jsonl differs from the proven events")
    return lines


def _listed_events(raw: bytes) -> list[dict[str, Any]]:
    """The events of a pack's events.jsonl; ProofError naming the first line that is
    not a JSON object (an edited pack is a failed pack, not a traceback)."""
    listed = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise ProofError(f"events.jsonl line {number} is not a JSON object")
        if not isinstance(event.get("event_id"), str):
            raise ProofError(f"events.jsonl line {number} has no event_id string")
        listed.append(event)
    return listed
