"""Field-level encryption at rest, and crypto-shredding that keeps every proof valid.

When a lake is created with encryption, `details`, `actor_ip` and `user_agent` are stored
as AES-256-GCM ciphertext under data keys (DEKs) per tenant and subject (actor). DEKs live
in the lake only wrapped (AES-256-GCM) by a master key (KEK) that never enters it: the config home's
`master.key` (0600) or `AUDITLAKE_MASTER_KEY` (base64). Each value is bound to its place
by the associated data (tenant, event id, field), so ciphertexts cannot be swapped.

The Merkle leaf covers the stored ciphertext. Destroying a subject's or a tenant's DEKs
(`keys shred`, e.g. for a GDPR erasure) therefore leaves every checkpoint and proof valid
while those fields become unreadable; reads return them as NULL. Queries decrypt transparently for
principals allowed to read the tenant (a DuckDB function holding only their DEKs).

Stored form of an encrypted value: `enc1:<key id>:<base64url(nonce || ciphertext+tag)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lake.errors import ConfigError, StorageError
from lake.schema import READ_AUDIT_TENANT
from lake.storage import Lake

FIELDS: Final = ("details", "actor_ip", "user_agent")
PREFIX: Final = "enc1:"
MASTER_FILE: Final = "master.key"
DEK_DIR: Final = "_auditlake/dek"


def master_key(home: Path, *, create: bool = False) -> bytes:
    """The KEK: $AUDITLAKE_MASTER_KEY (base64), else `<home>/master.key` (0600)."""
    env = os.environ.get("AUDITLAKE_MASTER_KEY")
    if env:
        try:
            key = base64.b64decode(env, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("AUDITLAKE_MASTER_KEY is not base64") from None
        if len(key) != 32:
            raise ConfigError("AUDITLAKE_MASTER_KEY must hold 32 bytes")
        return key
    path = home / MASTER_FILE
    if not path.exists():
        if not create:
            raise ConfigError(
                f"this lake is encrypted and there is no master key at {path} "
                "(nor AUDITLAKE_MASTER_KEY)"
            )
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the master key {path} is readable by others; run: chmod 600 {path}")
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) != 32:
        raise ConfigError(f"{path} does not hold a 32-byte key")
    return key


def encrypted(lake: Lake) -> bool:
    return bool(lake.meta.get("encryption", {}).get("enabled"))


class Keyring:
    """Per-tenant key files of data keys, unwrapped with the KEK.

    Each tenant's file `_auditlake/dek/<tenant>.json` holds `{"keys": {key_id: {"wrapped":
    …, "subject": sha256(tenant, actor_id) | null}}}`. With subject keys (the default for
    encrypted lakes) every actor of a tenant has its own data key, so one person's fields
    can be shredded (a GDPR erasure) and everyone else's stay readable; shredding the
    tenant destroys all its keys. Ciphertexts name their key id, so reading needs no
    lookup by subject.
    """

    def __init__(self, lake: Lake, kek: bytes) -> None:
        self.lake = lake
        self._kek = AESGCM(kek)
        self._docs: dict[str, dict[str, Any]] = {}
        self._ciphers: dict[tuple[str, str], AESGCM | None] = {}
        self.per_subject = bool(lake.meta.get("encryption", {}).get("subject_keys", True))

    def _path(self, tenant: str) -> str:
        return f"{DEK_DIR}/{tenant}.json"

    def _doc(self, tenant: str) -> dict[str, Any]:
        if tenant not in self._docs:
            try:
                doc = orjson.loads(self.lake.read_bytes(self._path(tenant)))
            except FileNotFoundError:
                doc = {"keys": {}}
            self._docs[tenant] = doc if isinstance(doc.get("keys"), dict) else {"keys": {}}
        return self._docs[tenant]

    def _save(self, tenant: str) -> None:
        self.lake.write_bytes(self._path(tenant), orjson.dumps(self._docs[tenant]))

    @staticmethod
    def subject_id(tenant: str, subject: str) -> str:
        return hashlib.sha256(f"{tenant}\0{subject}".encode()).hexdigest()

    def cipher(self, tenant: str, key_id: str) -> AESGCM | None:
        """The data key `key_id` of a tenant; None once shredded (or unknown)."""
        if (tenant, key_id) not in self._ciphers:
            entry = self._doc(tenant)["keys"].get(key_id)
            if entry is None:
                self._ciphers[(tenant, key_id)] = None
            else:
                try:
                    blob = base64.b64decode(entry["wrapped"])
                    raw = self._kek.decrypt(blob[:12], blob[12:], f"{tenant}\0{key_id}".encode())
                except (InvalidTag, KeyError, ValueError):
                    raise StorageError(
                        f"a data key of tenant {tenant!r} does not open with this master key"
                    ) from None
                self._ciphers[(tenant, key_id)] = AESGCM(raw)
        return self._ciphers[(tenant, key_id)]

    def key_for(self, tenant: str, subject: str | None) -> tuple[str, AESGCM]:
        """The key new values of (tenant, subject) are sealed with, made on first use."""
        want = self.subject_id(tenant, subject) if self.per_subject and subject else None
        doc = self._doc(tenant)
        for key_id, entry in doc["keys"].items():
            if entry.get("subject") == want:
                found = self.cipher(tenant, key_id)
                if found is not None:
                    return key_id, found
        key_id = os.urandom(8).hex()
        raw = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = nonce + self._kek.encrypt(nonce, raw, f"{tenant}\0{key_id}".encode())
        doc["keys"][key_id] = {"wrapped": base64.b64encode(wrapped).decode(), "subject": want}
        self._save(tenant)
        self._ciphers[(tenant, key_id)] = AESGCM(raw)
        return key_id, AESGCM(raw)

    def shred(self, tenant: str, subject: str | None = None) -> int:
        """Destroy the tenant's data keys (or one subject's); returns how many went.

        Those fields become unreadable for good; every proof still verifies.
        """
        doc = self._doc(tenant)
        want = self.subject_id(tenant, subject) if subject is not None else None
        gone = [k for k, e in doc["keys"].items() if subject is None or e.get("subject") == want]
        for key_id in gone:
            del doc["keys"][key_id]
            self._ciphers[(tenant, key_id)] = None
        self._save(tenant)
        return len(gone)

    # -- values ---------------------------------------------------------------------------

    def encrypt_table(self, table: pa.Table) -> pa.Table:
        """Encrypt FIELDS of validated events (needs tenant, event_id and actor_id).

        One AES-GCM call per non-null value (≈2-3 µs each); only lakes created with
        encryption pay it.
        """
        tenants = table.column("tenant").to_pylist()
        ids = table.column("event_id").to_pylist()
        actors = table.column("actor_id").to_pylist()
        # The lake's own log (read audit, retention records) stays in the clear: verifiers
        # without the master key must be able to read which seq ranges were removed.
        keys = [
            None if t == READ_AUDIT_TENANT else self.key_for(t, a)
            for t, a in zip(tenants, actors, strict=True)
        ]
        for name in FIELDS:
            if name not in table.column_names:
                continue
            values = table.column(name).to_pylist()
            out: list[str | None] = []
            for tenant, event_id, value, key in zip(tenants, ids, values, keys, strict=True):
                if value is None or key is None:
                    out.append(value)
                    continue
                key_id, cipher = key
                nonce = os.urandom(12)
                ct = cipher.encrypt(nonce, value.encode(), f"{tenant}\0{event_id}\0{name}".encode())
                out.append(f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + ct).decode()}")
            table = table.set_column(
                table.schema.get_field_index(name), name, pa.array(out, pa.string())
            )
        return table

    def decrypt_array(
        self, tenants: Iterable[Any], ids: Iterable[Any], field: str, values: Iterable[Any]
    ) -> list[str | None]:
        """Plaintexts of stored values (plain values pass through; shredded → None)."""
        out: list[str | None] = []
        for tenant, event_id, value in zip(tenants, ids, values, strict=True):
            if value is None or not str(value).startswith(PREFIX):
                out.append(value)
                continue
            _, key_id, blob = str(value).split(":", 2)
            cipher = self.cipher(tenant, key_id) if tenant is not None else None
            if cipher is None:
                out.append(None)
                continue
            raw = base64.urlsafe_b64decode(blob)
            try:
                plain = cipher.decrypt(
                    raw[:12], raw[12:], f"{tenant}\0{event_id}\0{field}".encode()
                )
            except InvalidTag:
                out.append(None)
                continue
            out.append(plain.decode())
        return out


def register_decrypt(con: Any, keyring: Keyring, tenants: Iterable[str]) -> None:
    """`al_decrypt(tenant, event_id, field, value)` in a DuckDB connection, holding only
    the DEKs of `tenants` (others decrypt to NULL)."""
    from duckdb.sqltypes import VARCHAR

    allowed = set(tenants)

    def fn(t: pa.Array, i: pa.Array, f: pa.Array, v: pa.Array) -> pa.Array:
        tenants_ = [x if x in allowed else None for x in t.to_pylist()]
        field = f[0].as_py() if len(f) else ""
        return pa.array(
            keyring.decrypt_array(tenants_, i.to_pylist(), field, v.to_pylist()), pa.string()
        )

    con.create_function(
        "al_decrypt", fn, [VARCHAR, VARCHAR, VARCHAR, VARCHAR], VARCHAR, type="arrow",
        side_effects=False, null_handling="special",  # a shredded value comes back NULL
    )  # fmt: skip


def decrypted_select(columns: Iterable[str], source: str = "") -> str:
    """A SELECT list that decrypts FIELDS with al_decrypt and passes the rest through."""
    prefix = f"{source}." if source else ""
    out = []
    for c in columns:
        if c in FIELDS:
            out.append(
                f'al_decrypt({prefix}tenant, {prefix}event_id, \'{c}\', {prefix}"{c}") AS "{c}"'
            )
        else:
            out.append(f'{prefix}"{c}"')
    return ", ".join(out)


def keyring_for(lake: Lake, home: Path | None = None) -> Keyring:
    """The lake's keyring (cached on the Lake object), with the KEK of `home`."""
    ring = getattr(lake, "_keyring", None)
    if ring is None:
        from lake.config import config_home

        ring = Keyring(lake, master_key(home or config_home()))
        lake._keyring = ring  # type: ignore[attr-defined]
    return ring
