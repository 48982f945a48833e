"""`search` and `sql` at their edges (#17): an empty result says so, a reversed time range
is a usage error, and a lake holding far-dated events (year 1, year 9999) is read by every
output format and by `SUMMARIZE` without a traceback."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from cli_testkit import AUDITLAKE, TIMEOUT
from testkit import far_dated

from auditlake.cli.commands.query import _table_cells
from lake.secrets import KeyStore
from lake.storage import Lake
from lake.write import append

if TYPE_CHECKING:
    from cli_testkit import DemoLake, Run

NOTHING = "actor:nobody-at-all@example.invalid"
YEAR_1 = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z in epoch microseconds
YEAR_9999 = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z
DAY_US = 86_400_000_000


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_an_empty_search_says_so_on_stderr(run: Run, demo_copy: DemoLake, fmt: str) -> None:
    r = run("search", NOTHING, "--format", fmt)
    assert r.returncode == 0, r
    assert len(r.stderr_lines) == 1 and "no events match" in r.stderr, r
    assert NOTHING in r.stderr
    if fmt == "json":
        assert r.json() == []
    if fmt == "jsonl":
        assert r.stdout == ""


def test_an_empty_search_says_so_on_a_terminal(demo_copy: DemoLake, tmp_path: Path) -> None:
    assert AUDITLAKE
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [AUDITLAKE, "search", NOTHING],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=demo_copy.env,
            cwd=tmp_path,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"no events match" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--since", "2026-11-05", "--until", "2026-11-01"), ("--since", "--until")),
        (("--since", "2026-11-01", "--until", "2026-11-01"), ("--since", "--until")),
        (("created:>=2026-11-05", "--until", "2026-11-01"), ("created:", "--until")),
        (("created:2026-11-05..2026-11-01",), ("created:",)),
    ],
)
def test_a_start_after_the_end_is_a_usage_error(
    run: Run, demo_copy: DemoLake, args: tuple[str, ...], named: tuple[str, ...]
) -> None:
    run("search", *args).assert_usage_error(*named, "not before")


def test_since_before_until_still_searches(run: Run, demo_copy: DemoLake) -> None:
    r = run("search", "--since", "2000-01-01", "--until", "2100-01-01", "--format", "jsonl")
    assert r.returncode == 0 and r.stdout, r


# -- far-dated events already stored ----------------------------------------------------------


@pytest.fixture
def far_lake(demo_copy: DemoLake) -> DemoLake:
    lake = Lake.open(demo_copy.lake)
    signer = KeyStore(demo_copy.home).active()
    append(lake, far_dated("farco", YEAR_1, "ghost-1"), signer)
    append(lake, far_dated("farco", YEAR_9999, "ghost-9999"), signer)
    return demo_copy


def test_summarize_survives_far_dated_events(run: Run, far_lake: DemoLake) -> None:
    r = run("sql", "SUMMARIZE events", "--format", "json")
    assert r.returncode == 0, r
    rows = {row["column_name"]: row for row in r.json()}
    assert rows["event_date"]["column_type"] == "DATE"
    assert (rows["event_date"]["min"], rows["event_date"]["max"]) == ("0001-01-01", "9999-12-31")
    assert rows["time"]["min"].startswith("0001-01-01")
    table = run("sql", "SUMMARIZE SELECT event_date, time FROM events WHERE tenant = 'farco'")
    assert table.returncode == 0 and "0001-01-01" in table.stdout, table


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv", "parquet"])
def test_search_prints_far_dated_events_in_every_format(
    run: Run, far_lake: DemoLake, tmp_path: Path, fmt: str
) -> None:
    out = ["--output", str(tmp_path / "out.parquet")] if fmt == "parquet" else []
    r = run("search", "tenant:farco", "--format", fmt, *out)
    assert r.returncode == 0, r
    if fmt == "table":
        assert "0001-01-01 00:00:00.000" in r.stdout and "9999-12-31 23:59:59.000" in r.stdout
    elif fmt == "json":
        assert sorted(row["time"][:10] for row in r.json()) == ["0001-01-01", "9999-12-31"]


def test_table_cells_show_times_beyond_python_datetime() -> None:
    # Year 10000 is past what the lake accepts now, and past Python's datetime: a result
    # computed in SQL (or a lake from elsewhere) may still hold it.
    beyond = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z
    batch = pa.record_batch(
        [
            pa.array([beyond, YEAR_1, None], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array([beyond // DAY_US, YEAR_1 // DAY_US, None], pa.int32()).cast(pa.date32()),
            pa.array([b"\x01", None, b"\xff"]),
        ],
        names=["time", "day", "raw"],
    )
    assert _table_cells(batch) == [
        ["10000-01-01 00:00:00.000", "10000-01-01", "01"],
        ["0001-01-01 00:00:00.000", "0001-01-01", ""],
        ["", "", "ff"],
    ]
