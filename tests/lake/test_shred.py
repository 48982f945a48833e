"""`lake.write.shred`: refused before anything changes, recorded before the keys go."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

import lake.api as al
from lake.contract import READ_AUDIT_TENANT, UsageError, validate
from lake.secrets import FIELDS, KeyStore, Principal, master_key
from lake.storage import Lake
from lake.write import set_hold, shred

ADMIN = Principal("admin", {}, operator=True)


def _records(lake: Lake) -> list[tuple[str, str, dict[str, object]]]:
    """(action, target, details) of the lake's own signed records, in log order."""
    rows = lake.read_rows(lake.data_files(lake.events_table(), tenants={READ_AUDIT_TENANT}))
    ordered = rows.sort_by("seq").to_pylist()
    return [(r["action"], r["target_id"], orjson.loads(r["details"] or "{}")) for r in ordered]


def _make(root: Path, keys: KeyStore, encrypt: bool) -> Lake:
    signer = keys.generate("k") if keys.active_name() is None else keys.active()
    extra = {"encryption": {"enabled": True, "fields": list(FIELDS)}} if encrypt else None
    lake = Lake.init(root, "shred", signer.verifier_key.encode(), extra=extra)
    events = [
        {"tenant": "acme", "time": "2026-11-02T10:00:00Z", "category": "authentication",
         "action": "login", "outcome": "failure", "actor": {"id": actor, "ip": "203.0.113.7"},
         "details": {"who": actor}}
        for actor in ("victim@x", "bystander@x")
    ]  # fmt: skip
    from lake.write import append

    append(lake, validate(events, namespace=b"acme").table, signer)
    return lake


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeyStore:
    home = tmp_path / "home"
    monkeypatch.setenv("AUDITLAKE_HOME", str(home))
    monkeypatch.delenv("AUDITLAKE_MASTER_KEY", raising=False)
    master_key(home, create=True)  # in the config home: a shred rotates it
    return KeyStore(home)


def test_shredding_a_subject_records_only_its_hash_then_erases_its_fields(
    tmp_path: Path, keys: KeyStore
) -> None:
    lake = _make(tmp_path / "lake", keys, encrypt=True)
    assert shred(lake, keys, ADMIN, "acme", "victim@x") == 1
    [(action, target, details)] = _records(lake)
    assert (action, target) == ("key.shred", "acme")
    digest = hashlib.sha256(b"acme\0victim@x").hexdigest()
    assert details == {"subject_sha256": digest, "tenant": "acme"}  # never the subject
    rows = al.open(lake.base, home=keys.home).sql(
        "SELECT actor_id, details FROM events WHERE tenant = 'acme' ORDER BY actor_id"
    )
    got = dict(zip(rows["actor_id"], rows["details"], strict=True))
    assert got["victim@x"] is None and "bystander@x" in str(got["bystander@x"])


def test_a_lake_without_encryption_is_refused_and_nothing_is_recorded(
    tmp_path: Path, keys: KeyStore
) -> None:
    lake = _make(tmp_path / "lake", keys, encrypt=False)
    with pytest.raises(UsageError, match="not created with --encrypt"):
        shred(lake, keys, ADMIN, "acme")
    assert _records(lake) == []


def test_a_held_tenant_is_refused_before_the_record(tmp_path: Path, keys: KeyStore) -> None:
    lake = _make(tmp_path / "lake", keys, encrypt=True)
    set_hold(lake, keys.active(), ADMIN, "acme", "matter 7")
    with pytest.raises(UsageError, match="legal hold"):
        shred(lake, keys, ADMIN, "acme")
    assert [a for a, _, _ in _records(lake)] == ["hold.set"]


def test_a_bad_tenant_id_is_refused(tmp_path: Path, keys: KeyStore) -> None:
    lake = _make(tmp_path / "lake", keys, encrypt=True)
    with pytest.raises(UsageError):
        shred(lake, keys, ADMIN, "../etc")
    assert _records(lake) == []
