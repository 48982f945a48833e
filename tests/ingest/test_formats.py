"""Tests for CSV and Parquet inputs (ingest.formats): nested and flat columns, details,
time zones, line numbers of errors, files that are not what they claim.

All inputs are real files in tmp_path; the validation rules themselves are covered in
tests/lake/test_wire.py, so here the point is that each format reaches them with the
right event index, line and field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from ingest_testkit import CSV_NESTED_HEADER, base_columns, parquet_bytes, rows, write

from ingest.files import load
from lake.contract import UsageError, ValidationError

# ---------------------------------------------------------------------------------------
# CSV.


def test_csv_with_nested_headers(tmp_path: Path) -> None:
    data = CSV_NESTED_HEADER + (
        b"acme,2024-03-01T12:00:00+01:00,authentication,login,success,u1,user,doc-1,"
        b'"{""b"": 2, ""a"": {""d"": 1, ""c"": ""\xc3\xa9""}}"\n'
        b"acme,2024-03-01T12:00:00Z,authentication,logout,success,u2,,,\n"
    )
    inp = load(write(tmp_path, "e.csv", data))
    assert inp.format == "csv"
    assert inp.validated.rejected == []
    first, second = rows(inp)
    assert first["time"] == datetime(2024, 3, 1, 11, tzinfo=UTC)
    assert (first["actor_id"], first["actor_type"], first["target_id"]) == ("u1", "user", "doc-1")
    assert first["target_type"] is None
    # details given as JSON text become canonical JSON
    assert first["details"] == '{"a":{"c":"é","d":1},"b":2}'
    # empty cells are absent fields, not empty strings
    assert (second["actor_type"], second["target_id"], second["details"]) == (None, None, None)
    assert second["severity"] == "info"


def test_csv_with_flat_stored_column_names(tmp_path: Path) -> None:
    data = (
        b"tenant,event_id,time,category,action,outcome,severity,actor_id,actor_type,actor_ip,"
        b"user_agent,target_type,target_id,source\n"
        b"acme,e-1,2024-03-01T12:00:00Z,admin_action,role.grant,failure,high,alice,admin,"
        b"10.0.0.1,curl/8,user,bob,console\n"
    )
    inp = load(write(tmp_path, "flat.csv", data))
    assert inp.validated.rejected == []
    (row,) = rows(inp)
    assert {k: row[k] for k in row if k not in ("time", "event_date")} == {
        "tenant": "acme",
        "event_id": "e-1",
        "category": "admin_action",
        "action": "role.grant",
        "outcome": "failure",
        "severity": "high",
        "actor_id": "alice",
        "actor_type": "admin",
        "actor_ip": "10.0.0.1",
        "user_agent": "curl/8",
        "target_type": "user",
        "target_id": "bob",
        "source": "console",
        "details": None,
    }


def test_csv_bad_details_json_names_the_field_and_line(tmp_path: Path) -> None:
    data = CSV_NESTED_HEADER + (
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1,,,\n"
        b'acme,2024-03-01T12:00:00Z,authentication,login,success,u2,,,"{not json"\n'
        b'acme,2024-03-01T12:00:00Z,authentication,login,success,u3,,,"[1, 2]"\n'
    )
    inp = load(write(tmp_path, "e.csv", data))
    assert [r["actor_id"] for r in rows(inp)] == ["u1"]
    bad_json, not_object = inp.validated.rejected
    assert (bad_json.index, bad_json.line) == (1, 3)
    (issue,) = bad_json.issues
    assert (issue.index, issue.field, issue.line) == (1, "details", 3)
    assert issue.message.startswith("is not valid JSON")
    assert (not_object.index, not_object.line) == (2, 4)
    assert [(i.field, i.message) for i in not_object.issues] == [
        ("details", "expected an object, got an array")
    ]


def test_csv_validation_errors_carry_line_numbers(tmp_path: Path) -> None:
    data = (
        b"tenant,time,category,action,outcome,actor_id\n"
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1\n"
        b"acme,2024-03-01T12:00:00Z,authentication,login,meh,u1\n"
        b"acme,2024-03-01T12:00:00Z,authentication,login,success\n"  # short row
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1,surplus\n"
    )
    inp = load(write(tmp_path, "e.csv", data))
    got = [(i.index, i.line, i.field, i.message) for i in inp.validated.issues]
    assert got == [
        (1, 3, "outcome", "unknown value 'meh'; expected one of success, failure, unknown"),
        (2, 4, "actor", "is required"),
        (3, 5, "(event)", "more cells than header columns"),
    ]


def test_csv_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    data = (
        b"tenant,time,category,action,outcome,actor_id\n"
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1\n"
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,\xff\xfe\n"
    )
    path = write(tmp_path, "e.csv", data)
    with pytest.raises(ValidationError) as err:
        load(path)
    assert err.value.source == path
    (issue,) = err.value.issues
    assert (issue.index, issue.line, issue.field) == (1, 3, "(event)")
    bad_at = data.index(b"\xff")
    assert issue.message == f"not valid UTF-8 at byte {bad_at}"


def test_csv_with_bom_is_read_and_invalid_utf8_after_it_names_the_right_line(
    tmp_path: Path,
) -> None:
    header = b"\xef\xbb\xbftenant,time,category,action,outcome,actor_id\n"
    row = b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1\n"
    inp = load(write(tmp_path, "bom.csv", header + row))
    assert inp.validated.rejected == []
    assert rows(inp)[0]["tenant"] == "acme"  # the BOM is not glued to the first header

    # The bad byte starts line 3; the BOM's three bytes must not shift it onto line 2.
    data = header + row + b"\xffcme,2024\n"
    with pytest.raises(ValidationError) as err:
        load(write(tmp_path, "bom-bad.csv", data))
    (issue,) = err.value.issues
    assert (issue.index, issue.line) == (1, 3)
    bad_at = data.index(b"\xff")
    assert issue.message == f"not valid UTF-8 at byte {bad_at}"


# ---------------------------------------------------------------------------------------
# Parquet.

TZ_PARIS = "Europe/Paris"


def test_parquet_with_nested_struct_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            **base_columns(2),
            "time": ["2024-03-01T12:00:00Z", "2024-03-01T23:30:00-01:00"],
            "actor": pa.array(
                [{"id": "u1", "type": "user", "ip": "10.0.0.1"}, {"id": "u2"}],
                pa.struct([("id", pa.string()), ("type", pa.string()), ("ip", pa.string())]),
            ),
            "target": pa.array(
                [{"type": "doc", "id": "d1"}, None],
                pa.struct([("type", pa.string()), ("id", pa.string())]),
            ),
            "details": pa.array(
                [{"z": 1, "a": "x"}, None], pa.struct([("z", pa.int64()), ("a", pa.string())])
            ),
        }
    )
    inp = load(write(tmp_path, "nested.parquet", parquet_bytes(table)))
    assert inp.format == "parquet"
    assert inp.validated.rejected == []
    first, second = rows(inp)
    assert (first["actor_id"], first["actor_type"], first["actor_ip"]) == ("u1", "user", "10.0.0.1")
    assert (first["target_type"], first["target_id"]) == ("doc", "d1")
    assert first["details"] == '{"a":"x","z":1}'
    assert (second["actor_id"], second["actor_type"], second["target_id"]) == ("u2", None, None)
    assert second["event_date"] == date(2024, 3, 2)


def test_parquet_with_flat_columns_and_details_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            **base_columns(1),
            "event_id": ["e-7"],
            "time": ["2024-03-01T12:00:00Z"],
            "actor_id": ["alice"],
            "actor_type": ["admin"],
            "user_agent": ["curl/8"],
            "target_type": ["user"],
            "target_id": ["bob"],
            "details": ['{"b": 1, "a": 2}'],
        }
    )
    inp = load(write(tmp_path, "flat.pq", parquet_bytes(table)))
    assert inp.format == "parquet"
    assert inp.validated.rejected == []
    (row,) = rows(inp)
    assert row["event_id"] == "e-7"
    assert (row["actor_id"], row["actor_type"], row["user_agent"]) == ("alice", "admin", "curl/8")
    assert (row["target_type"], row["target_id"]) == ("user", "bob")
    assert row["details"] == '{"a":2,"b":1}'


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_parquet_tz_aware_timestamp_column(tmp_path: Path, unit: str) -> None:
    instants = [
        datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC),
        datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-1))),
    ]
    table = pa.table(
        {
            **base_columns(2),
            "time": pa.array(instants, pa.timestamp(unit, tz=TZ_PARIS)),
            "actor_id": ["u1", "u2"],
        }
    )
    inp = load(write(tmp_path, "tz.parquet", parquet_bytes(table)))
    assert inp.validated.rejected == []
    got = rows(inp)
    assert [r["time"] for r in got] == instants
    assert [r["event_date"] for r in got] == [date(2024, 3, 1), date(2024, 3, 2)]


def test_parquet_naive_timestamp_is_rejected(tmp_path: Path) -> None:
    table = pa.table(
        {
            **base_columns(2),
            "time": pa.array(
                [datetime(2024, 3, 1, 12), datetime(2024, 3, 1, 13)], pa.timestamp("us")
            ),
            "actor_id": ["u1", "u2"],
        }
    )
    inp = load(write(tmp_path, "naive.parquet", parquet_bytes(table)))
    assert inp.validated.table.num_rows == 0
    assert [r.index for r in inp.validated.rejected] == [0, 1]
    for r in inp.validated.rejected:
        assert r.line is None
        assert ("time", "timestamp has no time zone") in [(i.field, i.message) for i in r.issues]


def test_parquet_nanosecond_digits_are_refused_not_truncated(tmp_path: Path) -> None:
    table = pa.table(
        {
            **base_columns(1),
            "time": pa.array([1_709_294_400_123_456_789], pa.timestamp("ns", tz="UTC")),
            "actor_id": ["u1"],
        }
    )
    path = write(tmp_path, "ns.parquet", parquet_bytes(table))
    with pytest.raises(UsageError, match="sub-microsecond") as err:
        load(path)
    assert path in str(err.value)
    assert "'time'" in str(err.value)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = write(tmp_path, "junk.parquet", b"PAR1 this is not parquet")
    with pytest.raises(UsageError, match="not a readable Parquet file") as err:
        load(path)
    assert not isinstance(err.value, ValidationError)
