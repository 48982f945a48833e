"""Detection over a lake that already holds an event at the edge of time (year 1 or 9999).

Ingest now refuses such times, but lakes written before that may hold them, and a
detection run must neither crash on one nor stop finding other tenants' attacks. The
far-dated row is built the way validation would build it and appended through
`lake.write.append`, the entry that takes an already-validated table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from detect_testkit import add, failures, new_lake
from testkit import login

from detect.engine import MAX_US, MIN_US, buckets_touched, scan_range
from detect.model import load_rules
from detect.runner import run
from detect.sinks import alert_json
from lake.contract import Alert, validate
from lake.log import NoteSigner, generate_signer
from lake.storage import Lake
from lake.write import append

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY_US = 86_400_000_000
YEAR_1 = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z in epoch microseconds
YEAR_9999 = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z


def brute_force(tenant: str, actor: str, start: datetime) -> list[dict[str, Any]]:
    """Twelve failed logins 30 s apart: auth.brute_force (10 in 10 minutes) fires."""
    return failures(tenant, actor, start, 12, timedelta(seconds=30), "203.0.113.9")


def far_dated(tenant: str, time_us: int, ns: bytes) -> pa.Table:
    """One validated event whose time (and date partition) is moved to `time_us`."""
    table = validate([login(tenant, "ghost", T0, "failure", "203.0.113.9")], namespace=ns).table
    i = table.schema.get_field_index("time")
    table = table.set_column(i, table.schema.field(i), pa.array([time_us], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")))  # fmt: skip
    j = table.schema.get_field_index("event_date")
    day = pa.array([time_us // DAY_US], pa.int32()).cast(pa.date32())
    return table.set_column(j, table.schema.field(j), day)


@pytest.fixture
def signer() -> NoteSigner:
    return generate_signer("far-dated-test")


def stored_times(lake: Lake) -> set[int]:
    files = [str(p) for p in Path(lake.base, "events").rglob("*.parquet")]
    con = duckdb.connect()
    rows = con.execute("SELECT epoch_us(time) FROM read_parquet(?)", [files]).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("time_us", [YEAR_1, YEAR_9999], ids=["year-1", "year-9999"])
def test_a_far_dated_event_blinds_no_tenant(
    tmp_path: Path, signer: NoteSigner, time_us: int
) -> None:
    lake = new_lake(tmp_path / "lake", signer)
    add(lake, brute_force("acme", "victim", T0), signer, "a")
    append(lake, far_dated("beta", time_us, b"b"), signer)
    assert time_us in stored_times(lake)  # really stored, past every validation

    first = run(lake, load_rules())
    assert ("auth.brute_force", "acme") in {(a.rule_id, a.tenant) for a in first.new}
    assert {r.mode for r in first.rules} == {"full"}

    # Incremental runs keep working: one more attack for acme, one more far-dated event
    # in acme's own log, in the same batch.
    later = T0 + timedelta(days=1)
    batch = pa.concat_tables(
        [
            validate(brute_force("acme", "second", later), namespace=b"c").table,
            far_dated("acme", time_us, b"d"),
        ]
    )
    append(lake, batch, signer)
    second = run(lake, load_rules())
    assert {r.mode for r in second.rules} <= {"incremental"}
    assert [a.group for a in second.new if a.rule_id == "auth.brute_force"] == [
        '{"actor_id":"second"}'
    ]
    assert {r.mode for r in run(lake, load_rules()).rules} <= {"idle", "incremental"}


def test_scan_ranges_of_the_edges_of_time_are_finite_and_clamped() -> None:
    rule = next(r for r in load_rules() if r.id == "auth.brute_force")
    for t in (YEAR_1, YEAR_9999, MIN_US * 2, MAX_US * 2):
        lo, hi = buckets_touched(rule, t, t)
        start, end = scan_range(rule, lo, hi)
        assert MIN_US <= start <= end <= MAX_US
        if MIN_US < t < MAX_US:
            assert start <= t < end


def test_alert_times_before_year_1000_keep_four_digit_years() -> None:
    doc = alert_json(Alert.from_row(
        {"tenant": "t", "alert_id": "a", "rule_id": "r", "severity": "low", "title": "x",
         "first_seen": datetime(1, 1, 1, tzinfo=UTC),
         "last_seen": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)}
    ))  # fmt: skip
    assert doc["first_seen"] == "0001-01-01T00:00:00.000000Z"
    assert doc["last_seen"] == "9999-12-31T23:59:59.000000Z"
