"""Outside witnesses: a second party that cosigns each tenant's checkpoints (C2SP).

A witness keeps, per log (checkpoint origin), the largest tree head it has seen and
cosigns a newer one only when a consistency proof shows the new tree extends the old.
So a log that forks (shows different histories to different people) or rolls back
(removes its newest batches) cannot get a cosignature for it, and a verifier that
requires N cosignatures from witnesses it trusts notices. This is what CloudTrail's digest
chain lacks: deleting the newest digests there goes unnoticed.

Formats are the C2SP ones, so any tlog tooling can check them:

- cosignature (c2sp.org/tlog-cosignature, Ed25519): a signed-note signature line
  `— <witness name> base64(keyID(4) || timestamp(8, big-endian) || sig(64))`, keyID =
  SHA-256(name || "\\n" || 0x04 || public key)[:4], over
  `cosignature/v1\\ntime <timestamp>\\n` + the checkpoint body;
- witness protocol (c2sp.org/tlog-witness): `POST /add-checkpoint` with body
  `old <size>\\n` + consistency proof hashes (base64, one a line) + `\\n` + the signed
  checkpoint; 200 with the cosignature line, 409 with the witness's size when `old` is
  not it, 422 for a bad proof, 403 when no configured log key signed the checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lake.contract import NoteError, ProofError, UsageError
from lake.log import Checkpoint, VerifierKey, parse_note, verify_consistency, verify_note

COSIGNATURE_ALG: Final = 0x04
HEADER: Final = "cosignature/v1\n"
MAX_BODY: Final = 64 * 1024


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_ALG]) + public_key).digest()[
        :4
    ]


def _message(body: str, timestamp: int) -> bytes:
    return f"{HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class CosignerKey:
    """A witness's public key, as a C2SP vkey `name+keyID+base64(0x04 || key)`."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    def encode(self) -> str:
        raw = bytes([COSIGNATURE_ALG]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    @classmethod
    def parse(cls, text: str) -> CosignerKey:
        try:
            name, key_hash, b64 = text.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise UsageError(f"not a witness key (name+hash+base64): {text[:40]!r}") from None
        if len(raw) != 33 or raw[0] != COSIGNATURE_ALG:
            raise UsageError(f"witness key {name!r} is not an Ed25519 cosignature/v1 key")
        key = cls(name, raw[1:])
        if key.key_id.hex() != key_hash:
            raise UsageError(f"witness key {name!r}: its hash does not match the key")
        return key

    def verify(self, body: str, line: str) -> int | None:
        """The timestamp of a valid cosignature line by this key over `body`, else None."""
        prefix = f"— {self.name} "
        if not line.startswith(prefix):
            return None
        try:
            raw = base64.b64decode(line[len(prefix) :].strip(), validate=True)
        except ValueError:
            return None
        if len(raw) != 4 + 8 + 64 or raw[:4] != self.key_id:
            return None
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                raw[12:], _message(body, timestamp)
            )
        except InvalidSignature:
            return None
        return int(timestamp)


class Cosigner:
    """A witness's private key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = private_key
        pub = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key = CosignerKey(name, pub)

    def cosign(self, body: str, timestamp: int | None = None) -> str:
        ts = int(time.time()) if timestamp is None else timestamp
        sig = self._key.sign(_message(body, ts))
        raw = self.key.key_id + struct.pack(">Q", ts) + sig
        return f"— {self.name} {base64.b64encode(raw).decode()}"


class WitnessError(Exception):
    """A refused request, with its HTTP status (tlog-witness) and a body."""

    def __init__(self, status: int, message: str, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else message + "\n"


@dataclass(frozen=True)
class AddCheckpoint:
    old: int
    proof: list[bytes]
    note: str


def parse_request(body: bytes) -> AddCheckpoint:
    if len(body) > MAX_BODY:
        raise WitnessError(400, "request too large")
    try:
        text = body.decode("utf-8")
        head, note = text.split("\n\n", 1)
        lines = head.split("\n")
        if not lines[0].startswith("old "):
            raise ValueError("first line must be 'old <size>'")
        old = int(lines[0][4:])
        proof = [base64.b64decode(x, validate=True) for x in lines[1:] if x]
    except (UnicodeDecodeError, ValueError) as exc:
        raise WitnessError(400, f"malformed request: {exc}") from None
    if old < 0 or any(len(h) != 32 for h in proof):
        raise WitnessError(400, "malformed request: bad size or hash")
    return AddCheckpoint(old, proof, note)


def encode_request(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


@dataclass(frozen=True)
class TreeHead:
    """What a witness keeps per log: the largest tree head it cosigned, and when.

    On disk one compact JSON object: {"origin", "size", "root" (base64), "cosigned_at"
    (Unix seconds)}.
    """

    origin: str
    size: int
    root: bytes
    cosigned_at: int

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TreeHead:
        return cls(
            str(doc["origin"]),
            int(doc["size"]),
            base64.b64decode(doc["root"]),
            int(doc["cosigned_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "cosigned_at": self.cosigned_at,
        }


class Witness:
    """The witness's state and rules; `add_checkpoint` is the whole protocol.

    Args:
        state_dir: where the latest tree head of each log is kept (one JSON file per
            origin, written atomically).
        cosigner: the witness's own key.
        log_keys: verifier keys of the logs it witnesses; a checkpoint signed by none of
            them is refused.
    """

    def __init__(
        self, state_dir: Path, cosigner: Cosigner, log_keys: Sequence[VerifierKey]
    ) -> None:
        self.state_dir = state_dir
        self.cosigner = cosigner
        self.log_keys = list(log_keys)
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, origin: str) -> Path:
        return self.state_dir / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".json")

    def latest(self, origin: str) -> TreeHead | None:
        """The largest tree head of `origin` this witness cosigned, if any."""
        path = self._path(origin)
        if not path.exists():
            return None
        return TreeHead.from_json(orjson.loads(path.read_bytes()))

    def add_checkpoint(self, body: bytes) -> str:
        req = parse_request(body)
        try:
            verified = verify_note(req.note, self.log_keys)
            cp = Checkpoint.parse(verified.text)
        except NoteError as exc:
            raise WitnessError(403, f"checkpoint not signed by a known log key: {exc}") from None
        with self._lock:
            state = self.latest(cp.origin)
            size = state.size if state else 0
            if req.old != size:
                raise WitnessError(409, f"witness is at size {size}", f"{size}\n")
            if cp.tree_size < size:
                raise WitnessError(409, "rollback: the checkpoint is older than seen", f"{size}\n")
            if state is not None:
                try:
                    if cp.tree_size == size:
                        if cp.root_hash != state.root or req.proof:
                            raise ProofError("a different root for the same size (a fork)")
                    else:
                        verify_consistency(size, cp.tree_size, state.root, cp.root_hash, req.proof)
                except ProofError as exc:
                    raise WitnessError(422, f"not consistent with size {size}: {exc}") from None
            line = self.cosigner.cosign(cp.body())
            head = TreeHead(cp.origin, cp.tree_size, cp.root_hash, int(time.time()))
            path = self._path(cp.origin)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(orjson.dumps(head.to_json()))
            tmp.replace(path)
        return line + "\n"


def cosignatures_in(note: str, keys: Sequence[CosignerKey]) -> dict[str, int]:
    """Valid cosignatures in a (cosigned) checkpoint note: witness name → timestamp."""
    try:
        body, sigs = parse_note(note)
    except NoteError:
        return {}
    found: dict[str, int] = {}
    lines = [f"— {s.name} {base64.b64encode(s.key_hash + s.signature).decode()}" for s in sigs]
    for key in keys:
        for line in lines:
            ts = key.verify(body, line)
            if ts is not None:
                found[key.name] = ts
    return found
