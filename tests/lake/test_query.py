"""The query layer on a real lake: tenant isolation, the SQL gate, search, paging, read audit.

Every attack here runs against a real DuckDB connection built by `QuerySession` over a
real Delta lake; a test passes only if the attack returns no row of another tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from lake_testkit import Built, LakeAndHome

from lake.contract import (
    READ_AUDIT_TENANT,
    RESERVED_TENANT_MESSAGE,
    UsageError,
    check_event,
    validate,
)
from lake.query import QuerySession, ReadAudit, SearchFilter, parse_query
from lake.secrets import AccessDenied, Principal
from lake.storage import optimize
from lake.verify import verify_lake
from lake.write import append

MINE = "contoso"
OTHERS = ("globex", "northwind")


class World(LakeAndHome):
    """A lake copy, its config home, and sessions for principals."""

    def rows(self, session: QuerySession, sql: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = session.sql(sql).to_arrow().to_pylist()
        return rows

    def other_file(self) -> str:
        files = self.lake.data_files(self.lake.events_table(), tenants={OTHERS[0]})
        return str(Path(self.lake.base) / "events" / files[0].path)


@pytest.fixture
def world(built_lake: Built, tmp_path: Path) -> World:
    w = World(built_lake, tmp_path)
    w.policy.grant("bob", MINE, "viewer")
    w.policy.grant("carol", MINE, "auditor")
    return w


# -- isolation ------------------------------------------------------------------------------


def test_views_hold_only_the_granted_tenant(world: World) -> None:
    bob = world.session("bob")
    assert world.rows(bob, "SELECT DISTINCT tenant FROM events") == [{"tenant": MINE}]
    assert world.rows(bob, f"SELECT count(*) AS n FROM events WHERE tenant <> '{MINE}'") == [
        {"n": 0}
    ]
    admin = world.session("admin")
    total = world.rows(admin, "SELECT count(DISTINCT tenant) AS n FROM events")
    assert total == [{"n": 3}]  # the operator sees every tenant (the read audit aside)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{other}')",
        "SELECT * FROM parquet_scan('{other}')",
        "WITH x AS (SELECT * FROM read_parquet('{other}')) SELECT count(*) FROM x",
        "SELECT * FROM read_parquet('{lake}/events/**/*.parquet', hive_partitioning=true)",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('{other}')",
        "SELECT * FROM glob('{lake}/**')",
        "SELECT * FROM read_json_auto('{lake}/_auditlake/lake.json')",
    ],
)
def test_file_access_is_refused(world: World, sql: str) -> None:
    bob = world.session("bob")
    with pytest.raises(AccessDenied, match="outside the principal's data"):
        bob.sql(sql.format(other=world.other_file(), lake=world.lake.base)).to_arrow()


def test_delta_scan_cannot_be_loaded(world: World) -> None:
    # The delta extension is not installed, and autoloading is off: no download, no rows.
    bob = world.session("bob")
    with pytest.raises(UsageError):
        bob.sql(f"SELECT * FROM delta_scan('{world.lake.base}/events')").to_arrow()


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("COPY (SELECT * FROM events) TO '/tmp/leak.csv'", "COPY"),
        ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
        ("SET enable_external_access = true", "SET"),
        ("RESET lock_configuration", "SET"),
        ("INSTALL delta", "LOAD"),
        ("LOAD delta", "LOAD"),
        ("CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet('x')", "CREATE"),
        ("DROP VIEW events", "DROP"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CALL pragma_version()", "CALL"),
        ("INSERT INTO checkpoints SELECT * FROM checkpoints", "INSERT"),
        ("EXPORT DATABASE '/tmp/dump'", "EXPORT"),
        ("EXPLAIN ANALYZE CREATE OR REPLACE VIEW events AS SELECT 1 AS tenant", "EXPLAIN"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.csv'", "EXPLAIN"),
        ("/* hi */ EXPLAIN ANALYZE DROP VIEW events", "EXPLAIN"),
    ],
)
def test_statements_other_than_select_are_refused(world: World, sql: str, kind: str) -> None:
    bob = world.session("bob")
    with pytest.raises(UsageError, match=rf"refused: {kind}"):
        bob.sql(sql)


def test_explain_of_a_select_still_works(world: World) -> None:
    bob = world.session("bob")
    for sql in ("EXPLAIN SELECT count(*) FROM events", "explain analyze SELECT 1"):
        assert bob.sql(sql).to_arrow().num_rows >= 1


def test_one_statement_at_a_time(world: World) -> None:
    bob = world.session("bob")
    with pytest.raises(UsageError, match="one statement at a time"):
        bob.sql("SELECT 1; SET enable_external_access = true")


def test_redefining_views_is_impossible_and_they_still_hold_only_mine(world: World) -> None:
    bob = world.session("bob")
    with pytest.raises(UsageError):
        bob.sql("CREATE OR REPLACE VIEW events AS SELECT 1 AS tenant")
    assert world.rows(bob, "SELECT DISTINCT tenant FROM events") == [{"tenant": MINE}]


def test_configuration_is_locked(world: World) -> None:
    bob = world.session("bob")
    rows = world.rows(
        bob,
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('enable_external_access', 'lock_configuration') ORDER BY name",
    )
    assert rows == [
        {"name": "enable_external_access", "value": "false"},
        {"name": "lock_configuration", "value": "true"},
    ]


def test_search_of_another_tenant_is_refused(world: World) -> None:
    bob = world.session("bob")
    for other in OTHERS:
        with pytest.raises(AccessDenied, match="may not read the events"):
            bob.search(parse_query(f"tenant:{other}")).to_arrow()
    # Without a tenant, search covers exactly the granted one.
    got = bob.search(SearchFilter(), limit=None).to_arrow()
    assert set(got.column("tenant").to_pylist()) == {MINE}


def test_a_tenant_prefix_covers_only_granted_tenants(world: World) -> None:
    bob = world.session("bob")
    got = bob.search(parse_query("tenant:co*"), limit=None).to_arrow()
    assert got.num_rows > 0 and set(got.column("tenant").to_pylist()) == {MINE}
    assert bob.search(parse_query("tenant:g*"), limit=None).to_arrow().num_rows == 0
    assert bob.search(parse_query("tenant:*"), limit=None).to_arrow().num_rows == got.num_rows


def test_a_principal_without_grants_is_refused_not_answered_empty(world: World) -> None:
    # #17 B14: an empty answer looked like "no events"; the refusal names the reason.
    eve = world.session("eve")
    for view in ("events", "checkpoints", "alerts", "query_audit"):
        with pytest.raises(AccessDenied, match="'eve' holds no grant"):
            eve.sql(f"SELECT count(*) AS n FROM {view}")
    with pytest.raises(AccessDenied, match="'eve' holds no grant"):
        eve.search(SearchFilter(), limit=None)
    with pytest.raises(UsageError):
        eve.sql(f"SELECT * FROM read_parquet('{world.other_file()}')").to_arrow()


def test_roles_decide_checkpoints_and_the_read_audit(world: World) -> None:
    bob, carol = world.session("bob"), world.session("carol")
    assert world.rows(bob, "SELECT count(*) AS n FROM checkpoints") == [{"n": 0}]
    tenants = world.rows(carol, "SELECT DISTINCT tenant FROM checkpoints")
    assert tenants == [{"tenant": MINE}]
    # The read audit is its own tenant: a viewer does not see it; an auditor sees only
    # the reads of the tenants it audits (tests below), the reserved tenant not at all...
    assert world.rows(bob, "SELECT count(*) AS n FROM query_audit") == [{"n": 0}]
    mine = world.rows(carol, "SELECT DISTINCT target_id FROM query_audit")
    assert mine == [{"target_id": MINE}]
    # ...and a '*' grant does not include it.
    world.policy.grant("dave", "*", "auditor")
    dave = world.session("dave")
    seen = world.rows(dave, "SELECT DISTINCT tenant FROM events ORDER BY 1")
    assert [r["tenant"] for r in seen] == sorted([MINE, *OTHERS])
    audit_rows = f"SELECT count(*) AS n FROM events WHERE tenant = '{READ_AUDIT_TENANT}'"
    assert world.rows(dave, audit_rows) == [{"n": 0}]
    with pytest.raises(AccessDenied):
        dave.search(parse_query(f"tenant:{READ_AUDIT_TENANT}"))
    world.policy.grant("dave", READ_AUDIT_TENANT, "auditor")
    dave = world.session("dave")
    recorded = world.rows(dave, "SELECT count(*) AS n FROM query_audit")[0]["n"]
    assert isinstance(recorded, int) and recorded > 0


def test_grant_revoke_and_list(world: World) -> None:
    assert ("bob", MINE, "viewer") in world.policy.list()
    world.policy.grant("bob", MINE, "investigator")
    assert world.policy.principal("bob").grants == {MINE: "investigator"}
    assert world.policy.revoke("bob", MINE) == 1
    assert world.policy.principal("bob").grants == {}
    assert world.policy.revoke("bob") == 0
    assert (world.home / "access.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match="unknown role"):
        world.policy.grant("bob", MINE, "root")
    with pytest.raises(UsageError, match="invalid tenant"):
        world.policy.grant("bob", "../etc", "viewer")
    with pytest.raises(UsageError, match="invalid principal"):
        world.policy.grant("bob smith", MINE, "viewer")
    with pytest.raises(UsageError, match="local operator"):
        world.policy.grant("admin", MINE, "viewer")


def test_principal_permissions_are_cumulative() -> None:
    from lake.secrets import Permission, Role

    p = Principal("x", {"a": Role.VIEWER, "b": Role.AUDITOR, "*": Role.INVESTIGATOR})
    assert p.may(Permission.READ_EVENTS, "a") and not p.may(Permission.READ_ALERTS, "a")
    assert p.may(Permission.VERIFY, "b") and not p.may(Permission.MANAGE_KEYS, "b")
    assert p.may(Permission.PROVE, "zzz")  # through '*'
    assert not p.may(Permission.READ_EVENTS, READ_AUDIT_TENANT)


# -- injection ------------------------------------------------------------------------------

NASTY = [
    "x' OR '1'='1",
    "'; DROP VIEW events; --",
    '" OR 1=1 --',
    "%",
    "_",
    "\\",
    "') UNION SELECT * FROM read_csv('/etc/passwd') --",
]


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize(
    "field", ["actors", "actions", "ips", "targets", "sources", "event_ids", "text"]
)
def test_injection_in_search_filters_matches_nothing(world: World, field: str, value: str) -> None:
    bob = world.session("bob")
    one: dict[str, Any] = {field: (value,)}
    got = bob.search(SearchFilter(**one), limit=None).to_arrow()
    expected = 0
    if field == "text":  # a literal, case-insensitive substring: '_' and '%' are not wildcards
        rows = bob.search(SearchFilter(), limit=None).to_arrow().to_pylist()
        cols = ("actor_id", "target_id", "actor_ip", "user_agent", "source", "details")
        expected = sum(1 for r in rows if any(value.lower() in (r[c] or "").lower() for c in cols))
    assert got.num_rows == expected
    assert set(got.column("tenant").to_pylist()) <= {MINE}
    assert world.rows(bob, "SELECT DISTINCT tenant FROM events") == [{"tenant": MINE}]


@pytest.mark.parametrize("value", NASTY)
def test_injection_in_tenant_or_enum_filters_is_a_usage_error(world: World, value: str) -> None:
    bob = world.session("bob")
    for text in (f'tenant:"{value}"', f'category:"{value}"', f'outcome:"{value}"'):
        quoted = text.replace("\\", "\\\\")
        with pytest.raises(UsageError):
            bob.search(parse_query(quoted)).to_arrow()


def test_injection_in_a_cursor_is_a_usage_error(world: World) -> None:
    bob = world.session("bob")
    with pytest.raises(UsageError, match="invalid cursor"):
        bob.search(SearchFilter(), cursor="' OR 1=1 --").to_arrow()


# -- search results -------------------------------------------------------------------------


def test_search_matches_sql_and_is_newest_first(world: World) -> None:
    admin = world.session("admin")
    got = admin.search(
        parse_query(f"tenant:{MINE} outcome:failure action:login"), limit=None
    ).to_arrow()
    expected = world.rows(
        admin,
        f"SELECT event_id FROM events WHERE tenant = '{MINE}' AND outcome = 'failure' "
        "AND action = 'login' ORDER BY time DESC, seq DESC",
    )
    assert got.column("event_id").to_pylist() == [r["event_id"] for r in expected]
    assert got.num_rows > 0
    times = got.column("time").to_pylist()
    assert times == sorted(times, reverse=True)
    assert got.schema.names[:3] == ["tenant", "event_date", "event_id"]


def test_search_time_range_and_free_text(world: World) -> None:
    admin = world.session("admin")
    everything = admin.search(parse_query(f"tenant:{MINE}"), limit=None).to_arrow()
    times = sorted(everything.column("time").to_pylist())
    lo, hi = times[len(times) // 4], times[3 * len(times) // 4]
    f = SearchFilter(tenants=(MINE,), since=lo, until=hi)
    got = admin.search(f, limit=None).to_arrow()
    assert got.num_rows == sum(1 for t in times if lo <= t < hi)
    # free text finds an actor id by substring, case-insensitively
    actor = everything.column("actor_id")[0].as_py()
    hits = admin.search(SearchFilter(tenants=(MINE,), text=(actor[2:8].upper(),)), limit=None)
    assert actor in hits.to_arrow().column("actor_id").to_pylist()


def test_pagination_is_exact_while_events_are_appended(world: World) -> None:
    admin = world.session("admin")
    filt = parse_query(f"tenant:{MINE}")
    full = admin.search(filt, limit=None).to_arrow().column("event_id").to_pylist()
    seen: list[str] = []
    cursor = None
    pages = 0
    base = datetime.now(UTC) - timedelta(days=1)
    while True:
        page = admin.search(filt, limit=97, cursor=cursor)
        got = page.to_arrow()
        seen += got.column("event_id").to_pylist()
        pages += 1
        mid = got.column("time")[got.num_rows // 2].as_py()
        # Between pages, other writers append events that sort everywhere in the order:
        # newest, oldest, and inside the page just read.
        burst = [
            _event(MINE, base + timedelta(minutes=pages)),
            _event(MINE, datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=pages)),
            _event(MINE, mid),
        ]
        append(world.lake, validate(burst, namespace=f"p{pages}".encode()).table, world.signer)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == full  # same rows, same order, nothing twice, nothing missing
    assert pages == -(-len(full) // 97)
    fresh = admin.search(filt, limit=None).to_arrow().num_rows
    assert fresh == len(full) + 3 * pages  # a new search sees what was appended


def _event(tenant: str, at: datetime) -> dict[str, object]:
    return {
        "tenant": tenant,
        "time": at.isoformat(),
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": "late.writer@example.test"},
    }


def test_a_cursor_belongs_to_its_search(world: World) -> None:
    admin = world.session("admin")
    page = admin.search(parse_query(f"tenant:{MINE}"), limit=10)
    page.to_arrow()
    assert page.next_cursor
    with pytest.raises(UsageError, match="different search"):
        admin.search(parse_query(f"tenant:{MINE} outcome:failure"), cursor=page.next_cursor)


# -- the read audit -------------------------------------------------------------------------


def test_every_query_is_recorded_and_the_records_verify(world: World) -> None:
    bob = world.session("bob")
    bob.search(parse_query("outcome:failure")).to_arrow()
    bob.sql("SELECT count(*) FROM events").to_arrow()
    with pytest.raises(UsageError):
        bob.sql("SET enable_external_access = true")
    with pytest.raises(AccessDenied):
        bob.search(parse_query(f"tenant:{OTHERS[0]}"))
    admin = world.session("admin")
    rows = world.rows(
        admin,
        "SELECT actor_id, action, category, outcome, json_extract_string(details, '$.interface')"
        " AS interface, json_extract_string(details, '$.query') AS query FROM query_audit "
        "WHERE actor_id = 'bob' ORDER BY seq",
    )
    assert [(r["interface"], r["outcome"]) for r in rows] == [
        ("test.search", "success"),
        ("test.sql", "success"),
        ("test.sql", "failure"),
        ("test.search", "failure"),
    ]
    assert all(r["action"] == "audit.query" and r["category"] == "admin_action" for r in rows)
    assert rows[1]["query"] == "SELECT count(*) FROM events"
    report = verify_lake(world.lake, [world.signer.verifier_key])
    assert report.ok, report.findings
    assert READ_AUDIT_TENANT in [t.tenant for t in report.tenants]


def test_no_ingest_path_accepts_the_reserved_tenant() -> None:
    event = _event(READ_AUDIT_TENANT, datetime(2026, 11, 1, tzinfo=UTC))
    result = validate([event], namespace=b"x")
    assert result.table.num_rows == 0
    assert [str(i) for i in result.rejected[0].issues] == [
        f"event 0: tenant: {RESERVED_TENANT_MESSAGE}"
    ]
    assert [i.message for i in check_event(event)] == [RESERVED_TENANT_MESSAGE]


# -- optimize -------------------------------------------------------------------------------


def test_optimize_compacts_and_verify_still_passes(world: World) -> None:
    lake = world.lake
    extra = [_event(MINE, datetime(2026, 11, 20, 12, i, tzinfo=UTC)) for i in range(30)]
    for k in range(3):  # several small batches into the same partitions
        append(lake, validate(extra[k::3], namespace=bytes([k])).table, world.signer)
    admin = world.session("admin")
    before = admin.search(SearchFilter(), limit=None).to_arrow()
    files_before = len(lake.data_files(lake.events_table()))
    result = optimize(lake)
    files_after = len(lake.data_files(lake.events_table()))
    assert result.files_removed > 0 and files_after < files_before
    partitions = {(f.tenant, f.event_date) for f in lake.data_files(lake.events_table())}
    assert files_after == len(partitions)  # one file per partition
    after = admin.search(SearchFilter(), limit=None).to_arrow()
    key = ["tenant", "seq"]
    assert after.sort_by([(k, "ascending") for k in key]).equals(
        before.sort_by([(k, "ascending") for k in key])
    )
    report = verify_lake(lake, [world.signer.verifier_key])
    assert report.ok, report.findings
    # nothing left to compact (the read audit of the searches above did add files)
    assert optimize(lake, tenants=[MINE]).files_removed == 0


def test_sql_results_stream_as_arrow_and_polars(world: World) -> None:
    bob = world.session("bob")
    result = bob.sql("SELECT tenant, count(*) AS n FROM events GROUP BY tenant")
    frame = result.to_polars()
    assert frame.columns == ["tenant", "n"] and frame["tenant"].to_list() == [MINE]
    reader = bob.sql("SELECT event_id FROM events").reader()
    assert isinstance(reader, pa.RecordBatchReader)
    assert sum(b.num_rows for b in reader) > 0


def test_a_failed_audit_write_keeps_the_records(world: World) -> None:
    audit = ReadAudit(world.lake, world.signer, source="test", buffered=True)
    bob = QuerySession(world.lake, world.policy.principal("bob"), audit, interface="test")
    bob.search(parse_query("outcome:failure")).to_arrow()
    events = Path(world.lake.base) / "events"
    events.rename(events.with_name("events-away"))  # the lake cannot take the write
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever storage raises
            audit.flush()
    finally:
        events.with_name("events-away").rename(events)
    assert audit.flush() == 1  # the same record, written once the lake takes writes again
