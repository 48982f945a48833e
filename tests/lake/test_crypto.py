"""Field-level encryption on a real lake: ciphertext at rest, plaintext to readers,
verify after crypto-shredding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lake_testkit import new_lake

import lake.api as al
from detect.model import rule_from_dict
from detect.runner import run
from lake.contract import validate
from lake.query import QuerySession, parse_query
from lake.secrets import (
    CIPHER_PREFIX,
    FIELDS,
    AccessPolicy,
    KeyStore,
    TrustStore,
    keyring_for,
    master_key,
)
from lake.storage import Lake
from lake.verify import verify_lake
from lake.write import append


def _events(tenant: str, n: int = 6) -> list[dict[str, object]]:
    return [
        {"tenant": tenant, "time": f"2026-11-02T10:0{i}:00Z", "category": "authentication",
         "action": "login", "outcome": "failure",
         "actor": {"id": "victim@x", "ip": f"203.0.113.{i}", "user_agent": "curl/8"},
         "details": {"reason": "bad password", "attempt": i}}
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def enc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Lake, Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("AUDITLAKE_HOME", str(home))
    master_key(home, create=True)  # in the config home: a shred rotates it
    lake, signer = new_lake(tmp_path / "lake", home, "enc", encrypted=True)
    for tenant in ("acme", "beta"):
        append(lake, validate(_events(tenant), namespace=tenant.encode()).table, signer)
    return lake, home


def test_fields_are_ciphertext_at_rest_and_plaintext_to_readers(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    stored = pq.read_table(next((Path(lake.base) / "events").rglob("*.parquet")))
    for field in FIELDS:
        assert all(str(v).startswith(CIPHER_PREFIX) for v in stored.column(field).to_pylist())
    assert b"bad password" not in b"".join(
        p.read_bytes() for p in Path(lake.base).rglob("*.parquet")
    )
    s = al.open(lake.base, home=home)
    got = s.search("ip:203.0.113.3").to_arrow().to_pylist()
    assert [(r["tenant"], r["actor_ip"], r["user_agent"]) for r in got] == [
        ("beta", "203.0.113.3", "curl/8"), ("acme", "203.0.113.3", "curl/8")
    ]  # fmt: skip
    assert (
        s.sql("SELECT count(*) AS n FROM events WHERE details LIKE '%bad password%'")["n"][0] == 12
    )
    frame = s.events(tenant="acme").collect()
    assert set(frame["user_agent"].to_list()) == {"curl/8"}
    assert verify_lake(lake, TrustStore(home).keys()).ok
    # Detection sees plaintext too.
    rule = rule_from_dict({"id": "t.ip", "title": "t", "kind": "threshold", "threshold": 6,
                           "match": "ip:203.0.113.*", "group_by": ["actor_id"]}, "x")  # fmt: skip
    assert {a.tenant for a in run(lake, [rule]).new} == {"acme", "beta"}


def test_a_principal_gets_only_its_tenants_plaintext(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    AccessPolicy(home).grant("bob", "acme", "viewer")
    bob = QuerySession(lake, AccessPolicy(home).principal("bob"), None)
    rows = bob.search(parse_query("outcome:failure"), limit=None).to_arrow().to_pylist()
    assert {r["tenant"] for r in rows} == {"acme"} and rows[0]["actor_ip"].startswith("203.")


def _add_bystander(lake: Lake, home: Path) -> None:
    """Two events of acme by another subject, whose fields a shred must leave readable."""
    bystander = _events("acme", 2)
    for event in bystander:
        event["actor"] = {"id": "bystander@x", "ip": "192.0.2.9"}
    append(lake, validate(bystander, namespace=b"other").table, KeyStore(home).active())


def test_shredding_one_subject_leaves_everyone_else_readable(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    _add_bystander(lake, home)
    assert keyring_for(lake, home).shred("acme", "victim@x") == 1
    fresh = Lake.open(lake.base)
    assert verify_lake(fresh, TrustStore(home).keys()).ok
    rows = al.open(fresh.base, home=home).sql(
        "SELECT actor_id, bool_and(details IS NULL) AS gone FROM events "
        "WHERE tenant = 'acme' GROUP BY 1 ORDER BY 1"
    )
    assert rows.rows() == [("bystander@x", False), ("victim@x", True)]


def test_crypto_shredding_keeps_proofs_and_hides_the_fields(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    keyring_for(lake, home).shred("acme")
    fresh = Lake.open(lake.base)  # a new reader: no key in memory
    report = verify_lake(fresh, TrustStore(home).keys())
    assert report.ok, report.findings
    s = al.open(fresh.base, home=home)
    rows = s.sql(
        "SELECT tenant, details, actor_ip, user_agent, actor_id FROM events ORDER BY tenant"
    )
    acme = rows.filter(rows["tenant"] == "acme")
    beta = rows.filter(rows["tenant"] == "beta")
    assert acme["details"].null_count() == 6 and acme["actor_ip"].null_count() == 6
    assert acme["actor_id"].to_list() == ["victim@x"] * 6  # not an encrypted field
    assert beta["details"].null_count() == 0
    from lake.proofs import check_proof, prove

    event_id = s.search("tenant:acme", limit=1).to_arrow().column("event_id")[0].as_py()
    assert "trusted key" in check_proof(prove(fresh, "acme", event_id), TrustStore(home).keys())


def test_retention_on_an_encrypted_lake_stays_verifiable_without_the_master_key(
    enc: tuple[Lake, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from lake.secrets import Principal
    from lake.write import apply, set_policy

    lake, home = enc
    operator = Principal("admin", {}, operator=True)
    signer = KeyStore(home).active()
    now = datetime(2026, 11, 10, tzinfo=UTC)
    set_policy(lake, signer, operator, "acme", days=3, now=now)
    assert [r.tenant for r in apply(lake, signer, operator, now=now)] == ["acme"]
    # An outside verifier holds the public key only: no master key in its environment.
    (home / "master.key").unlink()
    report = verify_lake(Lake.open(lake.base), TrustStore(home).keys())
    assert report.ok, report.findings
    audit = Lake.open(lake.base)
    rows = audit.read_rows(audit.data_files(audit.events_table(), tenants={"auditlake"}))
    assert not any(str(d).startswith(CIPHER_PREFIX) for d in rows.column("details").to_pylist())


def _plain(lake: Lake, home: Path) -> dict[tuple[str, str], object]:
    """(tenant, actor) -> whether its details read back, from a fresh reader."""
    rows = al.open(Lake.open(lake.base).base, home=home).sql(
        "SELECT tenant, actor_id, bool_and(details IS NOT NULL) AS readable FROM events "
        "WHERE tenant <> 'auditlake' GROUP BY 1, 2"
    )
    return {(t, a): r for t, a, r in rows.rows()}


def test_a_shred_that_stops_halfway_loses_no_surviving_key(enc: tuple[Lake, Path]) -> None:
    from lake.secrets import _masterkey as masterkey

    lake, home = enc
    _add_bystander(lake, home)
    first = (home / "master.key").read_bytes()
    # A crash right after step (1): the new key exists, nothing is re-wrapped yet.
    masterkey.begin_rotation(home)
    everyone = {
        ("acme", "victim@x"): True,
        ("acme", "bystander@x"): True,
        ("beta", "victim@x"): True,
    }
    assert _plain(lake, home) == everyone
    # A failure after step (2), before the old key is renamed away: something is in the
    # way of master.key.old (a directory cannot be overwritten as a key file).
    (home / "master.key.old").mkdir()
    (home / "master.key.old" / "x").write_bytes(b"x")
    with pytest.raises(OSError):
        keyring_for(Lake.open(lake.base), home).shred("acme", "victim@x")
    assert (home / "master.key").read_bytes() == first  # not rotated yet...
    assert _plain(lake, home) == {**everyone, ("acme", "victim@x"): False}  # ...but shredded
    # The next shred resumes the rotation and finishes it.
    shutil.rmtree(home / "master.key.old")
    assert keyring_for(Lake.open(lake.base), home).shred("beta", "nobody@x") == 0
    assert sorted(p.name for p in home.glob("master.key*")) == ["master.key"]
    assert (home / "master.key").read_bytes() != first
    assert _plain(lake, home) == {**everyone, ("acme", "victim@x"): False}
    assert verify_lake(Lake.open(lake.base), TrustStore(home).keys()).ok


def test_shredding_under_a_legal_hold_is_refused_by_the_library(enc: tuple[Lake, Path]) -> None:
    from lake.contract import UsageError
    from lake.secrets import Principal
    from lake.write import set_hold

    lake, home = enc
    set_hold(lake, KeyStore(home).active(), Principal("admin", {}, operator=True), "acme", "c-1")
    with pytest.raises(UsageError, match="legal hold"):
        keyring_for(lake, home).shred("acme", "victim@x")
    assert _plain(lake, home)[("acme", "victim@x")] is True
