"""Parquet time columns at the edges of Python's datetime (#17 A1, found by the red team):
an instant inside year 9999 in UTC but past it in its column's zone, and an instant past
9999 in UTC, are named errors with exit 2, never an OverflowError traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from cli_testkit import Run

LAST_SECOND_OF_9999 = 253_402_300_799  # 9999-12-31T23:59:59Z in epoch seconds


def write(path: Path, times: pa.Array) -> Path:
    pq.write_table(
        pa.table(
            {
                "tenant": ["acme"],
                "time": times,
                "category": ["authentication"],
                "action": ["login"],
                "outcome": ["success"],
                "actor_id": ["u1"],
            }
        ),
        path,
    )
    return path


def test_a_zoned_time_past_9999_locally_is_judged_in_utc(run: Run, tmp_path: Path) -> None:
    assert run("init").returncode == 0
    zoned = pa.array([LAST_SECOND_OF_9999], pa.timestamp("s", tz="+14:00"))
    result = run("ingest", write(tmp_path / "late.parquet", zoned))

    assert result.returncode == 2, result
    assert "event 0: time: '9999-12-31T23:59:59+00:00' is more than 24h ahead" in result.stderr


def test_a_zoned_time_of_today_is_stored_as_its_instant(run: Run, tmp_path: Path) -> None:
    assert run("init").returncode == 0
    zoned = pa.array([1_764_900_000], pa.timestamp("s", tz="+14:00"))
    assert run("ingest", write(tmp_path / "ok.parquet", zoned)).returncode == 0
    found = run("search", "--tenant", "acme", "--format", "json")
    assert [e["time"] for e in found.json()] == ["2025-12-05T02:00:00.000000Z"]


def test_a_time_past_9999_in_utc_is_a_named_error(run: Run, tmp_path: Path) -> None:
    assert run("init").returncode == 0
    far = pa.array([(LAST_SECOND_OF_9999 + 10**6) * 1000], pa.timestamp("ms", tz="UTC"))
    result = run("ingest", write(tmp_path / "far.parquet", far))

    result.assert_usage_error("far.parquet", "outside years 1-9999")
