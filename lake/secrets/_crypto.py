"""Field-level encryption at rest, and crypto-shredding that keeps every proof valid.

When a lake is created with encryption, `details`, `actor_ip` and `user_agent` are stored
as AES-256-GCM ciphertext under data keys (DEKs) per tenant and subject (actor). DEKs live
in the lake only wrapped (AES-256-GCM) by a master key (KEK) that never enters it: the config home's
`master.key` (0600) or `AUDITLAKE_MASTER_KEY` (base64). Each value is bound to its place
by the associated data (tenant, event id, field), so ciphertexts cannot be swapped.

The Merkle leaf covers the stored ciphertext. Destroying a subject's or a tenant's DEKs
(`keys shred`, e.g. for a GDPR erasure) therefore leaves every checkpoint and proof valid
while those fields become unreadable; reads return them as NULL. A shred also rotates the
master key (lake/secrets/_masterkey.py), so an older copy of the wrapped DEKs cannot bring them
back, and it is refused under a legal hold. Queries decrypt transparently for
principals allowed to read the tenant (a DuckDB function holding only their DEKs).

Stored form of an encrypted value: `enc1:<key id>:<base64url(nonce || ciphertext+tag)>`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lake.contract import READ_AUDIT_TENANT, Alert, ConfigError, StorageError, UsageError
from lake.secrets import _masterkey as masterkey
from lake.storage import Lake, load_policy, paths

FIELDS: Final = ("details", "actor_ip", "user_agent")
ALERT_FIELDS: Final = ("title", "group")  # alerts quote the events' sealed fields
ERASED: Final = "(erased by keys shred)"
CIPHER_PREFIX: Final = "enc1:"
MASTER_FILE: Final = masterkey.MASTER_FILE


def master_key(home: Path, *, create: bool = False) -> bytes:
    """The current KEK: $AUDITLAKE_MASTER_KEY (base64), else `<home>/master.key` (0600)."""
    return masterkey.load(home, create=create).current


def encrypted(lake: Lake) -> bool:
    return bool(lake.meta.get("encryption", {}).get("enabled"))


class Keyring:
    """Per-tenant key files of data keys, unwrapped with the KEK.

    Each tenant's file `_auditlake/dek/<tenant>.json` holds `{"kek": master key id,
    "keys": {key_id: {"wrapped": …, "subject": sha256(tenant, actor_id) | null}}}` (files
    written before master keys rotated have no "kek": the one master key wraps them). With
    subject keys (the default for encrypted lakes) every actor of a tenant has its own
    data key, so one person's fields can be shredded (a GDPR erasure) and everyone else's
    stay readable; shredding the tenant destroys all its keys. Ciphertexts name their key
    id, so reading needs no lookup by subject.
    """

    def __init__(self, lake: Lake, keks: masterkey.MasterKeys | bytes) -> None:
        self.lake = lake
        if isinstance(keks, bytes):
            keks = masterkey.MasterKeys(keks, {masterkey.kek_id(keks): keks})
        self._keks = keks
        self._home: Path | None = None  # where the master keys live (None: not rotatable)
        self._docs: dict[str, dict[str, Any]] = {}
        self._ciphers: dict[tuple[str, str], AESGCM | None] = {}
        self.per_subject = bool(lake.meta.get("encryption", {}).get("subject_keys", True))

    def _path(self, tenant: str) -> str:
        return paths.dek_file(tenant)

    def _doc(self, tenant: str) -> dict[str, Any]:
        if tenant not in self._docs:
            try:
                doc = orjson.loads(self.lake.read_bytes(self._path(tenant)))
            except FileNotFoundError:
                doc = {"keys": {}}
            self._docs[tenant] = doc if isinstance(doc.get("keys"), dict) else {"keys": {}}
        return self._docs[tenant]

    def _save(self, tenant: str) -> None:
        self._docs[tenant].setdefault("kek", self._keks.current_id)
        self.lake.write_bytes(self._path(tenant), orjson.dumps(self._docs[tenant]))

    def _kek_of(self, tenant: str) -> AESGCM:
        """The master key that wraps this tenant's data keys, as its key file names it."""
        want = self._doc(tenant).get("kek")
        if want is None:  # written before any rotation: wrapped by the only master key
            return AESGCM(self._keks.current)
        key = self._keks.by_id.get(str(want))
        if key is None:
            raise StorageError(
                f"the data keys of tenant {tenant!r} are wrapped by master key {want}, which "
                "this config home does not hold (destroyed by `keys shred`: a copy of the "
                "lake from before a shred stays unreadable; or another config home)"
            )
        return AESGCM(key)

    def _unwrap(self, tenant: str, key_id: str, entry: dict[str, Any]) -> bytes:
        try:
            blob = base64.b64decode(entry["wrapped"])
            raw: bytes = self._kek_of(tenant).decrypt(
                blob[:12], blob[12:], f"{tenant}\0{key_id}".encode()
            )
        except (InvalidTag, KeyError, ValueError):
            raise StorageError(
                f"a data key of tenant {tenant!r} does not open with this master key"
            ) from None
        return raw

    @staticmethod
    def _wrap(kek: AESGCM, tenant: str, key_id: str, raw: bytes) -> str:
        nonce = os.urandom(12)
        wrapped = nonce + kek.encrypt(nonce, raw, f"{tenant}\0{key_id}".encode())
        return base64.b64encode(wrapped).decode()

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
                self._ciphers[(tenant, key_id)] = AESGCM(self._unwrap(tenant, key_id, entry))
        return self._ciphers[(tenant, key_id)]

    def key_for(self, tenant: str, subject: str | None) -> tuple[str, AESGCM]:
        """The key new values of (tenant, subject) are sealed with, made on first use."""
        want = self.subject_id(tenant, subject) if self.per_subject and subject else None
        for fresh in (False, True):
            if fresh:  # before adding a key: the file as it is now (a shred may have
                self._docs.pop(tenant, None)  # rotated its master key since we read it)
            doc = self._doc(tenant)
            for key_id, entry in doc["keys"].items():
                if entry.get("subject") == want:
                    found = self.cipher(tenant, key_id)
                    if found is not None:
                        return key_id, found
        key_id = os.urandom(8).hex()
        raw = AESGCM.generate_key(bit_length=256)
        # All keys of one file share the master key the file names (mid-rotation, that
        # may be the next one).
        wrapped = self._wrap(self._kek_of(tenant), tenant, key_id, raw)
        doc["keys"][key_id] = {"wrapped": wrapped, "subject": want}
        self._save(tenant)
        self._ciphers[(tenant, key_id)] = AESGCM(raw)
        return key_id, AESGCM(raw)

    def check_shred(self, tenant: str) -> None:
        """Refuse a shred that cannot be done as promised, before anything changes.

        Under a legal hold (as retention refuses removal), and when the master key comes
        from the environment: a shred must rotate it, or a restored older copy of the
        lake's wrapped data keys would bring the fields back.
        """
        hold = load_policy(self.lake).holds.get(tenant)
        if hold is not None:
            raise UsageError(
                f"tenant {tenant!r} is under legal hold ({hold.reason}, set by "
                f"{hold.set_by} at {hold.set_at}): shredding would "
                "destroy held fields; `hold clear` first"
            )
        if self._home is None and not self._keks.from_env:
            raise ConfigError(
                "this keyring holds a master key but not the config home it came from, so "
                "it cannot rotate it: open it with keyring_for(lake, home) to shred"
            )
        if self._keks.from_env or self._home is None:
            raise ConfigError(
                f"keys shred must rotate the master key, and {masterkey.ENV} cannot be rotated "
                "by auditlake: move the key into the config home's master.key (0600) and unset "
                "the variable"
            )

    def shred(self, tenant: str, subject: str | None = None) -> int:
        """Destroy the tenant's data keys (or one subject's); returns how many went.

        Those fields become unreadable for good; every proof still verifies. The master
        key is rotated (lake/secrets/_masterkey.py): every surviving data key of every tenant is
        re-wrapped under a new one and the old one destroyed, so restoring an older copy
        of the wrapped keys cannot bring the shredded ones back.
        """
        self.check_shred(tenant)
        assert self._home is not None
        self._docs.clear()  # the files as they are now, not as this process first read them
        # Unwrap everything first: an unreadable key file stops us before any change.
        plain: dict[str, dict[str, tuple[bytes, Any]]] = {}
        for name in self._tenants_with_keys() | {tenant}:
            doc = self._doc(name)
            plain[name] = {
                key_id: (self._unwrap(name, key_id, entry), entry.get("subject"))
                for key_id, entry in doc["keys"].items()
            }
        want = self.subject_id(tenant, subject) if subject is not None else None
        gone = [k for k, (_, subj) in plain[tenant].items() if subject is None or subj == want]
        for key_id in gone:
            del plain[tenant][key_id]
            self._ciphers[(tenant, key_id)] = None
        new = masterkey.begin_rotation(self._home)
        new_id, new_kek = masterkey.kek_id(new), AESGCM(new)
        for name, keys in sorted(plain.items()):
            doc = {
                "kek": new_id,
                "keys": {
                    key_id: {"wrapped": self._wrap(new_kek, name, key_id, raw), "subject": subj}
                    for key_id, (raw, subj) in keys.items()
                },
            }
            self.lake.write_bytes(self._path(name), orjson.dumps(doc))
            self._sync(self._path(name))
            self._docs[name] = doc
        masterkey.finish_rotation(self._home)
        self._keks = masterkey.MasterKeys(new, {new_id: new})
        return len(gone)

    def _tenants_with_keys(self) -> set[str]:
        """Every tenant with a key file in the lake."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.lake.full_path(paths.DEK_DIR), allow_not_found=True)
        return {
            info.base_name.removesuffix(".json")
            for info in self.lake.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.endswith(".json")
            and not info.base_name.startswith(".")
        }  # fmt: skip

    def _sync(self, rel: str) -> None:
        """Make a written key file durable before the old master key goes (local lakes;
        an object store's PUT is durable once it returns)."""
        if not self.lake.is_local:
            return
        path = Path(self.lake.full_path(rel))
        for target, flags in ((path, os.O_RDONLY), (path.parent, os.O_RDONLY)):
            fd = os.open(target, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

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
                out.append(_seal_value(key_id, cipher, value, f"{tenant}\0{event_id}\0{name}"))
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
            if value is None or not str(value).startswith(CIPHER_PREFIX):
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


def _seal_value(key_id: str, cipher: AESGCM, value: str, aad: str) -> str:
    """`enc1:<key id>:<base64url(nonce + ciphertext)>`: one stored value sealed under
    `cipher` with a fresh 12-byte nonce, `aad` (who and which field) bound to it."""
    nonce = os.urandom(12)
    ct = cipher.encrypt(nonce, value.encode(), aad.encode())
    return f"{CIPHER_PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + ct).decode()}"


def alert_subject(group: str | None) -> str | None:
    """Whose data key seals an alert: the actor it is grouped by, if any (so shredding
    that person erases their alerts' titles and groups too), else the tenant's."""
    if not group:
        return None
    try:
        keys = orjson.loads(group)
    except orjson.JSONDecodeError:
        return None
    actor = keys.get("actor_id") if isinstance(keys, dict) else None
    return actor if isinstance(actor, str) else None


def seal_alerts(ring: Keyring, alerts: Sequence[Alert]) -> list[Alert]:
    """Alerts with ALERT_FIELDS encrypted as stored values are (the alert's id in the
    associated data): an alert's title and group quote the events' encrypted fields
    ("Password spray from 203.0.113.99"), so on an encrypted lake they are sealed too."""
    return [_seal_alert(ring, a) for a in alerts]


def open_alerts(ring: Keyring, alerts: Sequence[Alert]) -> list[Alert]:
    """Alerts with ALERT_FIELDS decrypted; a shredded title reads ERASED, a group None."""
    if not alerts:
        return []
    tenants = [a.tenant for a in alerts]
    ids = [a.alert_id for a in alerts]
    plain = {
        name: ring.decrypt_array(tenants, ids, name, [getattr(a, name) for a in alerts])
        for name in ALERT_FIELDS
    }
    return [
        replace(a, group=group, title=ERASED if title is None else title)
        for a, group, title in zip(alerts, plain["group"], plain["title"], strict=True)
    ]


def _seal_alert(ring: Keyring, alert: Alert) -> Alert:
    if alert.tenant == READ_AUDIT_TENANT:
        return alert
    key_id, cipher = ring.key_for(alert.tenant, alert_subject(alert.group))

    def seal(name: str, value: str | None) -> str | None:
        if value is None or value.startswith(CIPHER_PREFIX):
            return value
        return _seal_value(key_id, cipher, value, f"{alert.tenant}\0{alert.alert_id}\0{name}")

    title = seal("title", alert.title)
    assert title is not None
    return replace(alert, title=title, group=seal("group", alert.group))


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


def decrypted_select(
    columns: Iterable[str],
    source: str = "",
    *,
    fields: Iterable[str] = FIELDS,
    id_column: str = "event_id",
) -> str:
    """A SELECT list that decrypts `fields` with al_decrypt and passes the rest through
    (events: FIELDS by event_id; alerts: ALERT_FIELDS by alert_id)."""
    prefix = f"{source}." if source else ""
    sealed = set(fields)
    out = []
    for c in columns:
        if c in sealed:
            call = f"al_decrypt({prefix}tenant, {prefix}{id_column}, '{c}', {prefix}\"{c}\")"
            if c == "title":  # not null in the alerts table: a shredded one says so
                call = f"coalesce({call}, '{ERASED}')"
            out.append(f'{call} AS "{c}"')
        else:
            out.append(f'{prefix}"{c}"')
    return ", ".join(out)


def keyring_for(lake: Lake, home: Path | None = None) -> Keyring:
    """The lake's keyring (cached on the Lake object), with the KEK of `home`."""
    ring = getattr(lake, "_keyring", None)
    if ring is None:
        from lake.secrets._config import config_home

        home = home or config_home()
        ring = Keyring(lake, masterkey.load(home))
        ring._home = home
        lake._keyring = ring  # type: ignore[attr-defined]
    return ring
