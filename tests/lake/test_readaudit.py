"""The read audit and the locked connection at their edges (#17 A6, A7, B16).

A6: a `.tmp` symlink in the working directory must open nothing (DuckDB's default temp
directory was `<cwd>/.tmp`, which a locked connection may read). A7: on an encrypted lake
the recorded queries carry no value of an encrypted field, in the Parquet files or the
Delta log. B16: an auditor of a tenant sees the reads that touched it, and only those.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pytest
from lake_testkit import Built, EncryptedAppend, LakeAndHome, new_lake

import lake.api as al
from lake.contract import READ_AUDIT_TENANT, validate
from lake.query import (
    TOKEN_PREFIX,
    ReadAudit,
    Redactor,
    locked_connection,
    parse_query,
    release,
)
from lake.secrets import (
    FIELDS,
    AccessDenied,
    KeyStore,
    keyring_for,
    master_key,
)
from lake.storage import Lake
from lake.write import append

MINE = "contoso"
OTHER = "globex"


class World(LakeAndHome):
    def files(self, tenant: str) -> list[str]:
        return [f.path for f in self.lake.data_files(self.lake.events_table(), tenants={tenant})]


@pytest.fixture
def world(built_lake: Built, tmp_path: Path) -> World:
    w = World(built_lake, tmp_path)
    w.policy.grant("bob", MINE, "viewer")
    w.policy.grant("carol", MINE, "auditor")
    w.policy.grant("gina", OTHER, "viewer")
    return w


# -- A6: the temp directory ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["lake", "other-tenant"])
def test_a_tmp_symlink_in_the_working_directory_opens_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    bob = world.session("bob")
    bob.search(parse_query("actor:x"))  # a row in the read audit
    other = world.files(OTHER)[0]
    audit = world.files(READ_AUDIT_TENANT)[0]
    if target == "lake":
        (work / ".tmp").symlink_to(world.root)
        paths = [f"events/{other}", f"events/{audit}"]
    else:
        (work / ".tmp").symlink_to(world.root / "events" / f"tenant={OTHER}")
        paths = [other.split("/", 1)[1]]
    for rel in paths:
        for path in (f".tmp/{rel}", f"{work}/.tmp/{rel}", f"./.tmp/{rel}"):
            with pytest.raises(AccessDenied, match="outside the principal's data"):
                bob.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow()
    with pytest.raises(AccessDenied):
        bob.sql("SELECT * FROM glob('.tmp/**')").to_arrow()
    temp = bob.sql("SELECT current_setting('temp_directory') AS d").to_arrow()["d"][0].as_py()
    assert not Path(temp).resolve().is_relative_to(work.resolve())
    assert Path(temp).stat().st_mode & 0o777 == 0o700
    dirs = bob.sql("SELECT current_setting('allowed_directories') AS d").to_arrow()
    assert all(not Path(d).resolve().is_relative_to(work) for d in dirs["d"][0].as_py())
    bob.close()
    assert not Path(temp).exists()  # removed with the connection


def test_every_locked_connection_has_a_fresh_private_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "x.csv").write_text("a\n1\n")
    one, two = locked_connection([]), locked_connection([])
    dirs = [str(c.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
            for c in (one, two)]  # fmt: skip
    assert dirs[0] != dirs[1] and all(os.listdir(d) == [] for d in dirs)
    with pytest.raises(Exception, match="Permission Error"):
        one.execute("SELECT * FROM read_csv('.tmp/x.csv')")
    release(one)
    release(two)
    assert not any(Path(d).exists() for d in dirs)


# -- B16: the read audit per tenant ---------------------------------------------------------


def test_an_auditor_sees_the_reads_of_its_tenant_and_only_those(world: World) -> None:
    world.policy.grant("multi", MINE, "viewer")
    world.policy.grant("multi", OTHER, "viewer")
    bob, gina, multi = world.session("bob"), world.session("gina"), world.session("multi")
    bob.search(parse_query("actor:bob-was-here"))
    gina.search(parse_query("actor:gina-was-here"))
    multi.sql("SELECT count(*) FROM events")  # over both tenants
    carol = world.session("carol")
    rows = carol.sql(
        "SELECT actor_id, target_id, details FROM query_audit ORDER BY time"
    ).to_arrow().to_pylist()  # fmt: skip
    who = [r["actor_id"] for r in rows]
    assert "bob" in who and "multi" in who and "gina" not in who
    assert not any("gina-was-here" in r["details"] for r in rows)
    multi_row = next(r for r in rows if r["actor_id"] == "multi")
    assert multi_row["target_id"] == MINE  # only its part of a read over two tenants
    assert f'"tenants":["{MINE}"]' in multi_row["details"].replace(" ", "")
    # The copy is all there is: the reserved tenant's files stay out of reach.
    audit_file = Path(world.lake.base) / "events" / world.files(READ_AUDIT_TENANT)[0]
    with pytest.raises(AccessDenied):
        carol.sql(f"SELECT * FROM read_parquet('{audit_file}')").to_arrow()
    # A viewer (no auditor role) sees none of it; the auditor sees new reads.
    assert bob.sql("SELECT count(*) AS n FROM query_audit").to_arrow()["n"][0].as_py() == 0
    before = carol.sql("SELECT count(*) AS n FROM query_audit").to_arrow()["n"][0].as_py()
    bob.search(parse_query("actor:again"))
    after = carol.sql("SELECT count(*) AS n FROM query_audit").to_arrow()["n"][0].as_py()
    assert after > before


# -- A7: encrypted lakes --------------------------------------------------------------------

ADDRESS = "198.51.100.77"


@pytest.fixture
def enc(encrypted_lake: EncryptedAppend) -> tuple[Lake, Path]:
    events: list[dict[str, object]] = [
        {"tenant": "acme", "time": f"2026-11-02T10:0{i}:00Z", "category": "authentication",
         "action": "login", "outcome": "failure",
         "actor": {"id": "victim@x", "ip": ADDRESS, "user_agent": "Secret-Agent/1"},
         "details": {"reason": "bad password"}}
        for i in range(3)
    ]  # fmt: skip
    return encrypted_lake(events)


def test_searches_on_an_encrypted_lake_leave_no_plaintext_value(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    s = al.open(lake.base, home=home)
    assert s.search(f"ip:{ADDRESS}").to_arrow().num_rows == 3
    assert s.search(f'-ip:{ADDRESS} "Secret-Agent"').to_arrow().num_rows == 0
    assert s.sql(f"SELECT count(*) AS n FROM events WHERE actor_ip = '{ADDRESS}'")["n"][0] == 3
    assert (
        s.sql("SELECT count(*) AS n FROM events WHERE user_agent = $$Secret-Agent/1$$")["n"][0] == 3
    )
    with pytest.raises(Exception, match="SQL error"):
        s.sql(f"SELECT CAST('{ADDRESS}' AS INTEGER)")
    s.close()
    for needle in (ADDRESS.encode(), b"Secret-Agent", b"bad password"):
        leaks = [p for p in Path(lake.base).rglob("*") if p.is_file() and needle in p.read_bytes()]
        assert leaks == [], needle
    # What the read audit holds instead: tokens that correlate, and the rest as typed.
    queries = s.sql("SELECT details->>'query' AS q FROM query_audit ORDER BY time")["q"].to_list()
    token = re.search(TOKEN_PREFIX + "[0-9a-f]{32}", queries[0])
    assert token is not None and queries[0].startswith("ip:")
    assert token.group(0) in queries[1]  # the same address, the same token
    assert f"WHERE actor_ip = '{token.group(0)}'" in queries[2]  # one token per value


def test_encrypted_columns_have_no_delta_statistics(enc: tuple[Lake, Path]) -> None:
    lake, _ = enc
    names = set(pa.table(lake.events_table().get_add_actions(flatten=True)).column_names)
    assert "min.seq" in names and "max.event_id" in names
    assert not {f"{m}.{f}" for m in ("min", "max") for f in FIELDS} & names


def test_the_redactor_keeps_sql_shape_and_plain_identifiers() -> None:
    r = Redactor(b"k" * 32)
    out = r.sql(
        'SELECT "actor_ip", "198.51.100.77" FROM events -- 10.0.0.1\n'
        "WHERE x = 'it''s' AND y = E'a\\'b' /* ua */ AND z = 'unterminated"
    )
    assert '"actor_ip"' in out and "198.51" not in out and "10.0.0.1" not in out
    assert "it''s" not in out and "a\\'b" not in out and "unterminated" not in out
    assert out.count(TOKEN_PREFIX) == 6
    assert f"x = '{r.token(chr(39).join(['it', 's']))}'" in out  # the value, unquoted
    assert f"y = '{r.token(chr(39).join(['a', 'b']))}'" in out
    assert "LIKE'" in r.sql("SELECT 1 WHERE name LIKE'x'")  # not an E'…' string
    assert r.search("actor:bob ip:10.0.0.*") == f'actor:bob ip:"{r.token("10.0.0.*")}"'


def test_a_shred_leaves_recorded_tokens_linked_to_no_existing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The master key in the config home (a shred rotates it; one from the environment
    # cannot be rotated, and shredding refuses it).
    home = tmp_path / "home"
    monkeypatch.setenv("AUDITLAKE_HOME", str(home))
    monkeypatch.delenv("AUDITLAKE_MASTER_KEY", raising=False)
    master_key(home, create=True)
    lake, signer = new_lake(tmp_path / "lake", home, "enc", encrypted=True)
    event = {"tenant": "acme", "time": "2026-11-02T10:00:00Z", "category": "authentication",
             "action": "login", "outcome": "failure",
             "actor": {"id": "victim@x", "ip": ADDRESS}}  # fmt: skip
    append(lake, validate([event], namespace=b"acme").table, signer)
    with al.open(lake.base, home=home) as s:
        assert s.search(f"ip:{ADDRESS}").to_arrow().num_rows == 1
        recorded = s.sql("SELECT details->>'query' AS q FROM query_audit")["q"][0]
    assert ADDRESS not in recorded
    assert Redactor(master_key(home)).search(f"ip:{ADDRESS}") == recorded
    keyring_for(lake, home).shred("acme", "victim@x")
    # The key the token was made with is gone: no key that exists gives it again.
    assert Redactor(master_key(home)).search(f"ip:{ADDRESS}") != recorded
    with al.open(Lake.open(lake.base).base, home=home) as s:
        s.search(f"ip:{ADDRESS}").to_arrow()
        later = s.sql("SELECT details->>'query' AS q FROM query_audit ORDER BY time")["q"]
    assert later[-2] != recorded and ADDRESS not in later[-2]


def test_recording_a_proof_needs_no_master_key(
    enc: tuple[Lake, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lake.secrets import Principal

    lake, home = enc
    monkeypatch.delenv("AUDITLAKE_MASTER_KEY")  # an outside auditor: public key only
    audit = ReadAudit(lake, KeyStore(home).active(), source="test", home=home)
    audit.record(Principal("ann"), interface="cli.prove", query="id:x", tenants=["acme"])
    rows = lake.read_rows(lake.data_files(lake.events_table(), tenants={READ_AUDIT_TENANT}))
    assert '"query":"id:x"' in rows.column("details")[0].as_py().replace(" ", "")
