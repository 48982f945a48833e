"""`lake.api`: the Python surface notebooks use, scoped and audited like the CLI."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from lake_testkit import Built
from testkit import far_dated

import lake.api as al
from lake.contract import ProofError, validate
from lake.proofs import check_pack
from lake.secrets import AccessDenied, AccessPolicy, KeyStore
from lake.storage import Lake
from lake.write import append


@pytest.fixture
def copy(built_lake: Built, tmp_path: Path) -> tuple[Path, Path]:
    copy = built_lake.copy_with_home(tmp_path)
    copy.policy.grant("bob", "contoso", "investigator")
    return copy.root, copy.home


def test_events_are_a_scoped_lazy_frame(copy: tuple[Path, Path]) -> None:
    path, home = copy
    with al.open(path, as_="bob", home=home) as s:
        frame = s.events()
        assert isinstance(frame, pl.LazyFrame)
        got = frame.select("tenant").unique().collect()["tenant"].to_list()
        assert got == ["contoso"]
        assert s.tenants() == ["contoso"]
        with pytest.raises(AccessDenied):
            s.events(tenant="globex")
        counts = s.sql("SELECT tenant, count(*) AS n FROM events GROUP BY 1")
        n = s.events().select(pl.len()).collect().item()
        assert counts.to_dicts() == [{"tenant": "contoso", "n": n}]
    admin = al.open(path, home=home)
    recorded = admin.sql(
        "SELECT json_extract_string(details, '$.interface') AS i, outcome FROM query_audit "
        "WHERE actor_id = 'bob' ORDER BY seq"
    ).rows()
    assert recorded == [
        ("notebook.events", "success"),
        ("notebook.events", "failure"),  # the refused tenant:globex
        ("notebook.sql", "success"),
        ("notebook.events", "success"),
    ]


def test_time_travel_by_version_and_time(copy: tuple[Path, Path]) -> None:
    path, home = copy
    lake = Lake.open(path)
    before_version = lake.events_table().version()
    moment = datetime.now(UTC)
    signer = KeyStore(home).active()
    late = [{"tenant": "contoso", "time": "2026-11-01T00:00:00Z", "category": "authentication",
             "action": "login", "outcome": "success", "actor": {"id": "late@x"}}]  # fmt: skip
    append(lake, validate(late, namespace=b"late").table, signer)
    s = al.open(path, as_="bob", home=home)
    now_n = s.events().select(pl.len()).collect().item()
    then_n = s.events(version=before_version).select(pl.len()).collect().item()
    assert now_n == then_n + 1
    assert s.sql("SELECT count(*) AS n FROM events", as_of=moment)["n"][0] == then_n
    assert s.sql("SELECT count(*) AS n FROM events", version=before_version)["n"][0] == then_n
    with pytest.raises(Exception, match="time zone"):
        s.sql("SELECT 1", as_of=moment.replace(tzinfo=None) - timedelta(0))


def test_prove_check_evidence_and_verify(copy: tuple[Path, Path]) -> None:
    path, home = copy
    s = al.open(path, as_="bob", home=home)
    row = s.search("outcome:failure", limit=1).to_arrow().to_pylist()[0]
    assert "leaf 0" not in s.check(row["event_id"], tenant="contoso")  # a real, checked proof
    pack = s.evidence([("contoso", row["event_id"])], Path(path).parent / "case.zip", note="x")
    keys = [KeyStore(home).active().verifier_key]
    assert len(check_pack(pack.read_bytes(), keys)) == 1
    assert "events.jsonl" in zipfile.ZipFile(pack).namelist()
    with pytest.raises(AccessDenied):
        s.prove(row["event_id"], tenant="globex")
    with pytest.raises(Exception, match="may verify no tenant"):
        s.verify()  # an investigator does not verify
    AccessPolicy(home).grant("bob", "contoso", "auditor")
    report = al.open(path, as_="bob", home=home).verify()
    assert report.ok and [t.tenant for t in report.tenants] == ["contoso"]
    with pytest.raises(ProofError):
        s.check("no-such-event", tenant="contoso")


def test_times_carry_one_time_zone_label_everywhere(copy: tuple[Path, Path]) -> None:
    path, home = copy
    s = al.open(path, home=home)
    from_sql = s.sql("SELECT time, max(time) OVER () AS newest FROM events LIMIT 3")
    from_events = s.events().select("time").head(3).collect()
    from_search = s.search("", limit=3).to_polars()
    assert from_sql.schema["time"] == from_events.schema["time"] == from_search.schema["time"]
    assert from_sql.schema["newest"] == pl.Datetime("us", "UTC")
    joined = from_events.join(from_sql.select("time"), on="time")  # comparable, not an error
    assert joined.height >= 0


def test_readers_survive_far_dated_events(copy: tuple[Path, Path]) -> None:
    path, home = copy
    lake, signer = Lake.open(path), KeyStore(home).active()
    year_1, year_9999 = -62_135_596_800_000_000, 253_402_300_799_000_000
    append(lake, far_dated("contoso", year_1, "ghost-1"), signer)
    append(lake, far_dated("contoso", year_9999, "ghost-9999"), signer)
    with al.open(path, as_="bob", home=home) as s:
        summary = s.sql("SUMMARIZE events").to_dicts()
        day = next(r for r in summary if r["column_name"] == "event_date")
        assert (day["column_type"], day["min"], day["max"]) == ("DATE", "0001-01-01", "9999-12-31")
        ghosts = s.events().filter(pl.col("actor_id").str.starts_with("ghost")).collect()
        assert sorted(ghosts["time"].dt.year().to_list()) == [1, 9999]
        found = s.search("actor:ghost*", limit=None).to_polars()
        assert sorted(found["event_date"].dt.year().to_list()) == [1, 9999]


def test_the_read_audit_reads_back_as_the_records_written(copy: tuple[Path, Path]) -> None:
    path, home = copy
    with al.open(path, as_="bob", home=home, interface="tui") as s:
        s.search("outcome:failure", limit=1).to_arrow()
        with pytest.raises(AccessDenied):
            s.events(tenant="globex")
    with al.open(path, home=home) as admin:
        records = admin.read_audit(limit=10)
        mine_hidden = admin.read_audit(limit=50, hide_interface="notebook")
    by_bob = [r for r in records if r.principal == "bob"]
    assert all(isinstance(r, al.ReadRecord) for r in records)
    assert [(r.interface, r.query, r.tenants, r.outcome) for r in by_bob] == [
        ("tui.events", "tenant:globex", ("globex",), "failure"),  # newest first
        ("tui.search", "outcome:failure", ("contoso",), "success"),
    ]
    assert by_bob[0].reason is not None and "globex" in by_bob[0].reason
    assert by_bob[1].reason is None
    assert by_bob[0].time >= by_bob[1].time and by_bob[0].time.tzinfo is not None
    # The admin's own notebook reads (its read_audit query above) are left out, bob's stay.
    assert all(
        not (r.principal == "admin" and r.interface.startswith("notebook.")) for r in mine_hidden
    )
    assert {r.interface for r in mine_hidden if r.principal == "bob"} == {
        "tui.events",
        "tui.search",
    }
