"""Export formats (lake.query): every format round-trips the events columns exactly, streams, and
writes valid documents for empty results and for arbitrary Arrow types of user SQL.

JSON output is checked against a per-row reference built the slow, obvious way
(`to_pylist` + `row_to_json`), and parsed with the standard library's `json`, not orjson.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.contract import EVENTS_SCHEMA, UsageError
from lake.proofs import format_time, row_to_json
from lake.query import FORMATS, read_export, write_batches

NASTY = [
    'say "hi", then leave',
    "comma,separated,values",
    "line one\nline two\r\nline three\r",
    "back\\slash \\n not a newline \\u0041",
    "tab\there",
    "".join(chr(c) for c in range(32)) + "\x7f",  # every C0 control character, and DEL
    "unicode: é ß 中文 עברית 😀 🏳️‍🌈 \U0010ffff",
    "separators \u2028 and \u2029, BOM \ufeff, NBSP \u00a0",
    "",
    "   leading and trailing spaces   ",
    "'single' quotes and `backticks` and </script>",
    "NULL",
    "null",
    "nan",
]
DETAILS = [
    {},
    {"b": 1, "a": [1, 2, {"z": None, "y": True}]},
    {"msg": 'quote " and back\\slash and \n newline', "emoji": "😀", "ctl": "\x01\x1f"},
    {"nested": {"deep": {"deeper": [[], {}, "", 0, -1.5, 1e-7, 12345678901234567890]}}},
    {"ключ": "значение", "中": "文", "": "empty key"},
]


def canonical(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def events_table(n: int = 60) -> pa.Table:
    """Synthetic stored events: nasty strings, nulls vs empty strings, canonical details."""
    base = datetime(2026, 11, 28, 3, 47, 37, 123456, tzinfo=UTC)
    rows = []
    for i in range(n):
        t = base + timedelta(seconds=i * 3607, microseconds=i * 7919)
        if i == 3:
            t = t.replace(microsecond=0)  # .000000 must survive
        if i == 4:
            t = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)  # before the epoch
        nasty = NASTY[i % len(NASTY)]
        rows.append(
            {
                "tenant": "acme" if i % 2 else "globex",
                "event_date": t.date(),
                "event_id": f"0190f1d2-0000-7000-8000-{i:012d}",
                "time": t,
                "received_at": t + timedelta(microseconds=1),
                "category": "authentication",
                "action": "user.login",
                "outcome": "success",
                "severity": "info",
                "actor_id": nasty,
                "actor_type": None if i % 5 == 0 else "user",
                "actor_ip": None if i % 3 == 0 else "" if i % 3 == 1 else "203.0.113.7",
                "user_agent": NASTY[(i + 3) % len(NASTY)] if i % 4 else None,
                "target_type": "" if i % 6 == 0 else "account",
                "target_id": nasty[::-1] if i % 7 else None,
                "source": None if i % 2 else nasty,
                "details": None if i % 8 == 0 else canonical(DETAILS[i % len(DETAILS)]),
                "seq": i,
                "batch_id": f"batch-{i // 10}",
                "leaf_hash": bytes([i, 0, 255, 16, *range(28)]),
            }
        )
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def batches_of(table: pa.Table, sizes: tuple[int, ...] = (7, 0, 1, 20)) -> list[pa.RecordBatch]:
    """Uneven batches, an empty one among them, cut as slices (non-zero array offsets)."""
    out: list[pa.RecordBatch] = []
    start = 0
    for size in (*sizes, table.num_rows):
        part = table.slice(start, size).combine_chunks().to_batches()
        out.extend(part or [pa.RecordBatch.from_pylist([], schema=table.schema)])
        start += size
    assert sum(b.num_rows for b in out) == table.num_rows
    return out


def export(batches: Any, fmt: str, **kwargs: Any) -> tuple[bytes, int]:
    out = io.BytesIO()
    n = write_batches(batches, fmt, out, **kwargs)
    return out.getvalue(), n


def json_rows(data: bytes, fmt: str) -> list[dict[str, Any]]:
    if fmt == "json":
        rows = json.loads(data.decode("utf-8"))
        assert isinstance(rows, list)
        return rows
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def reference(table: pa.Table) -> list[dict[str, Any]]:
    """The per-row reference: `row_to_json` of each row, details as the object."""
    out = []
    for row in table.to_pylist():
        obj = row_to_json(row)
        obj["details"] = None if row["details"] is None else orjson.loads(row["details"])
        out.append(obj)
    return out


# -------------------------------------------------------------------- the events columns


@pytest.mark.parametrize("fmt", FORMATS)
def test_events_round_trip_exactly(fmt: str) -> None:
    table = events_table()
    data, n = export(batches_of(table), fmt)
    assert n == table.num_rows
    back = read_export(io.BytesIO(data), fmt, EVENTS_SCHEMA)
    assert back.schema == EVENTS_SCHEMA
    for name in EVENTS_SCHEMA.names:
        assert back.column(name).equals(table.column(name)), name
    assert back.equals(table)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_rows_equal_the_per_row_reference(fmt: str) -> None:
    table = events_table()
    data, _ = export(batches_of(table), fmt)
    rows = json_rows(data, fmt)
    assert rows == reference(table)
    assert all(list(row) == EVENTS_SCHEMA.names for row in rows)  # keys in column order
    assert all(isinstance(row["details"], dict | None) for row in rows)
    if fmt == "json":
        assert data.startswith(b"[\n{") and data.endswith(b"}\n]\n")
        assert data.count(b"\n") == table.num_rows + 2  # "[", one object per line, "]"
    else:
        assert data.count(b"\n") == table.num_rows


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_details_are_spliced_verbatim(fmt: str) -> None:
    # Not canonical on purpose: the text must come out byte for byte, not re-serialised.
    text = '{"z":1,"a":{"y":"\\u00e9","x":[1.0,2e3]},"q":"\\"\\\\"}'
    batch = pa.record_batch(
        {"details": [text, None], "n": [1, 2]},
    )
    data, _ = export([batch], fmt)
    if fmt == "csv":
        assert text.replace('"', '""').encode() in data
    else:
        assert b'{"details":' + text.encode() + b',"n":1}' in data
        assert b'{"details":null,"n":2}' in data
        assert json_rows(data, fmt)[0]["details"] == json.loads(text)


@pytest.mark.parametrize("position", ["first", "middle", "last", "alone"])
def test_details_keeps_its_column_position(position: str) -> None:
    layouts: dict[str, dict[str, Any]] = {
        "first": {"details": ['{"k":1}'], "a": [1], "b": ["x"]},
        "middle": {"a": [1], "details": ['{"k":1}'], "b": ["x"]},
        "last": {"a": [1], "b": ["x"], "details": ['{"k":1}']},
        "alone": {"details": ['{"k":1}']},
    }
    columns = layouts[position]
    data, _ = export([pa.record_batch(columns)], "jsonl")
    row = json.loads(data)
    assert list(row) == list(columns)
    assert row["details"] == {"k": 1}


def test_details_as_a_json_extension_column_are_spliced_too() -> None:
    details = pa.ExtensionArray.from_storage(pa.json_(), pa.array(['{"a":[1]}', None]))
    data, _ = export([pa.record_batch({"details": details})], "jsonl")
    assert data == b'{"details":{"a":[1]}}\n{"details":null}\n'


def test_details_that_are_not_json_objects_are_refused() -> None:
    batch = pa.record_batch({"details": ['{"ok":1}', "not json"]})
    with pytest.raises(UsageError, match="details"):
        export([batch], "jsonl")
    # a details column that is not text is an ordinary column
    data, _ = export([pa.record_batch({"details": [1, None]})], "jsonl")
    assert json_rows(data, "jsonl") == [{"details": 1}, {"details": None}]


def test_csv_is_rfc4180_with_the_textual_forms() -> None:
    table = events_table()
    data, _ = export(batches_of(table), "csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == EVENTS_SCHEMA.names
    assert len(rows) == table.num_rows + 1
    for got, want in zip(rows[1:], table.to_pylist(), strict=True):
        assert got[EVENTS_SCHEMA.names.index("time")] == format_time(want["time"])
        assert got[EVENTS_SCHEMA.names.index("leaf_hash")] == want["leaf_hash"].hex()
        assert got[EVENTS_SCHEMA.names.index("event_date")] == want["event_date"].isoformat()
        details = got[EVENTS_SCHEMA.names.index("details")]
        assert details == (want["details"] or "")
        assert got[EVENTS_SCHEMA.names.index("actor_id")] == want["actor_id"]
    # null is an empty unquoted field, an empty string is ""
    lines = data.decode().split("\n")
    assert any(',"",' in line for line in lines)
    assert any(",," in line for line in lines)


# ----------------------------------------------------------------------------- escaping


def test_polars_json_escaping_is_valid_json_for_every_character() -> None:
    """Every code point below 0x800 on its own, the surrogates' neighbours, non-BMP ones,
    and one string of every Unicode scalar value, as values and in column names: the
    standard library's `json` parses them back to the same text."""
    chars = [chr(c) for c in range(0x800)] + [
        "\ud7ff", "\ue000", "\ufffe", "\uffff", "\U00010000", "😀", "\U0010ffff"
    ]  # fmt: skip
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    values = [*chars, "".join(chars), every, '"', "\\", '\\"', "\\u0000", "</", ""]
    names = ["plain", 'we"ird\\ name\n😀', "\x00"]
    batch = pa.record_batch(
        [pa.array(values), pa.array(values[::-1], pa.large_string()), pa.array(values)],
        names=names,
    )
    for fmt in ("json", "jsonl"):
        data, _ = export([batch], fmt)
        data.decode("utf-8")  # valid UTF-8
        rows = json_rows(data, fmt)
        assert [r["plain"] for r in rows] == values
        assert [r['we"ird\\ name\n😀'] for r in rows] == values[::-1]
        assert [r["\x00"] for r in rows] == values
        if fmt == "jsonl":  # raw newlines only between objects
            assert data.count(b"\n") == len(values)


# ------------------------------------------------------------------------- empty results


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_results_are_valid_documents(fmt: str) -> None:
    empty = pa.RecordBatchReader.from_batches(EVENTS_SCHEMA, iter([]))
    from_reader, n = export(empty, fmt)
    from_list, _ = export([], fmt, schema=EVENTS_SCHEMA)
    assert n == 0
    assert from_reader == from_list
    if fmt == "json":
        assert json.loads(from_reader) == []
    elif fmt == "jsonl":
        assert from_reader == b""
    elif fmt == "csv":
        assert from_reader.decode().splitlines() == [
            ",".join(f'"{n}"' for n in EVENTS_SCHEMA.names)
        ]
    else:
        parquet = pq.read_table(pa.BufferReader(from_reader))
        assert parquet.num_rows == 0
        assert parquet.schema.equals(EVENTS_SCHEMA, check_metadata=False)
    back = read_export(io.BytesIO(from_reader), fmt, EVENTS_SCHEMA)
    assert back.equals(EVENTS_SCHEMA.empty_table())


def test_empty_batches_only_still_make_valid_documents() -> None:
    empty = pa.RecordBatch.from_pylist([], schema=EVENTS_SCHEMA)
    assert json.loads(export([empty, empty], "json")[0]) == []
    assert export([empty], "jsonl")[0] == b""
    assert export([empty], "csv")[0].count(b"\n") == 1
    assert pq.read_table(pa.BufferReader(export([empty], "parquet")[0])).num_rows == 0


def test_empty_parquet_without_a_schema_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="schema"):
        export(iter([]), "parquet")
    assert export(iter([]), "csv")[0] == b""  # no schema, no header: an empty CSV


# -------------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_are_written_as_they_arrive(fmt: str) -> None:
    table = events_table(40)
    out = io.BytesIO()
    seen: list[int] = []

    def produce() -> Iterator[pa.RecordBatch]:
        yield from table.slice(0, 20).to_batches()
        seen.append(len(out.getvalue()))  # the generator is not exhausted yet
        yield from table.slice(20).to_batches()
        seen.append(len(out.getvalue()))

    assert write_batches(produce(), fmt, out) == 40
    first_batch_only, _ = export(table.slice(0, 20).to_batches(), fmt)
    assert 0 < seen[0] < len(out.getvalue())  # the first batch was out before the second
    if fmt in ("jsonl", "csv"):  # the first batch's bytes, exactly, before the second
        assert out.getvalue()[: seen[0]] == first_batch_only
    assert read_export(io.BytesIO(out.getvalue()), fmt, EVENTS_SCHEMA).equals(table)


# ---------------------------------------------------------------- types of arbitrary SQL


UUID_A = uuid.UUID("0190f1d2-0000-7000-8000-00000000002a")
UUID_B = uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")


def odd_table() -> pa.Table:
    ny = pa.timestamp("us", tz="America/New_York")
    return pa.table(
        {
            "count": pa.array([3, None, -(2**63)], pa.int64()),
            "u8": pa.array([255, 0, None], pa.uint8()),
            "ratio": [0.1 + 0.2, float("nan"), float("-inf")],
            "f32": pa.array([0.1, None, 1e30], pa.float32()),
            "flag": [True, None, False],
            "naive": pa.array(
                [datetime(2026, 1, 2, 3, 4, 5, 6), None, datetime(1, 1, 1)], pa.timestamp("us")
            ),
            "ns": pa.array([1, None, -1], pa.timestamp("ns", tz="UTC")),
            "secs": pa.array([datetime(2026, 1, 2, 3, 4, 5), None, None], pa.timestamp("s")),
            "zoned": pa.array([datetime(2026, 7, 1, 12, tzinfo=UTC), None, None], ny),
            "day64": pa.array([date(2026, 1, 2), None, date(1970, 1, 1)], pa.date64()),
            "view": pa.array(["a,b", None, ""], pa.string_view()),
            "large": pa.array(['q"', None, ""], pa.large_string()),
            "blob": pa.array([b"\x00\xff", None, b""], pa.large_binary()),
            "tags": pa.array([["a", None], None, []], pa.list_(pa.string())),
            "times": pa.array(
                [[datetime(2026, 1, 1, tzinfo=UTC)], [None], None],
                pa.list_(pa.timestamp("us", tz="UTC")),
            ),
            "point": pa.array(
                [{"x": 1, "h": b"\x0a"}, None, {"x": None, "h": None}],
                pa.struct([("x", pa.int64()), ("h", pa.binary())]),
            ),
            "money": pa.array([Decimal("12.30"), None, Decimal("-0.01")], pa.decimal128(12, 2)),
            "kind": pa.array(["x", "y", "x"]).dictionary_encode(),
            "lag": pa.array([timedelta(milliseconds=1500), None, timedelta(0)], pa.duration("ms")),
            "clock": pa.array([time(1, 2, 3, 4), None, time(0)], pa.time64("us")),
            "props": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
            "span": pa.array(
                [pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([0, 0, -5])],
                pa.month_day_nano_interval(),
            ),
            "nothing": pa.nulls(3),
            "uid": pa.ExtensionArray.from_storage(
                pa.uuid(), pa.array([UUID_A.bytes, None, UUID_B.bytes], pa.binary(16))
            ),
        }
    )


ODD_JSON = [
    {
        "count": 3,
        "u8": 255,
        "ratio": 0.30000000000000004,
        "f32": pytest.approx(0.1, rel=1e-7),
        "flag": True,
        "naive": "2026-01-02T03:04:05.000006Z",
        "ns": "1970-01-01T00:00:00.000000Z",
        "secs": "2026-01-02T03:04:05.000000Z",
        "zoned": "2026-07-01T12:00:00.000000Z",
        "day64": "2026-01-02",
        "view": "a,b",
        "large": 'q"',
        "blob": "00ff",
        "tags": ["a", None],
        "times": ["2026-01-01T00:00:00.000000Z"],
        "point": {"x": 1, "h": "0a"},
        "money": "12.30",
        "kind": "x",
        "lag": 1500,
        "clock": "01:02:03.000004",
        "props": [{"key": "k", "value": 1}],
        "span": {"months": 1, "days": 2, "nanoseconds": 3},
        "nothing": None,
        "uid": str(UUID_A),
    },
    {
        "count": None,
        "u8": 0,
        "ratio": None,  # NaN
        "f32": None,
        "flag": None,
        "naive": None,
        "ns": None,
        "secs": None,
        "zoned": None,
        "day64": None,
        "view": None,
        "large": None,
        "blob": None,
        "tags": None,
        "times": [None],
        "point": None,
        "money": None,
        "kind": "y",
        "lag": None,
        "clock": None,
        "props": None,
        "span": None,
        "nothing": None,
        "uid": None,
    },
    {
        "count": -(2**63),
        "u8": None,
        "ratio": None,  # -inf
        "f32": pytest.approx(1e30, rel=1e-7),
        "flag": False,
        "naive": "0001-01-01T00:00:00.000000Z",
        "ns": "1969-12-31T23:59:59.999999Z",  # floored, as a datetime would be
        "secs": None,
        "zoned": None,
        "day64": "1970-01-01",
        "view": "",
        "large": "",
        "blob": "",
        "tags": [],
        "times": None,
        "point": {"x": None, "h": None},
        "money": "-0.01",
        "kind": "x",
        "lag": 0,
        "clock": "00:00:00.000000",
        "props": [],
        "span": {"months": 0, "days": 0, "nanoseconds": -5},
        "nothing": None,
        "uid": str(UUID_B),
    },
]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_arbitrary_types_as_json(fmt: str) -> None:
    table = odd_table()
    data, n = export(table.to_batches(max_chunksize=2), fmt)
    assert n == 3
    assert json_rows(data, fmt) == ODD_JSON


def test_arbitrary_types_as_csv() -> None:
    table = odd_table()
    data, _ = export(table.to_batches(max_chunksize=2), "csv")
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert header == table.column_names
    first = dict(zip(header, rows[0], strict=True))
    assert first["naive"] == "2026-01-02T03:04:05.000006Z"
    assert first["zoned"] == "2026-07-01T12:00:00.000000Z"
    assert first["blob"] == "00ff"
    assert json.loads(first["tags"]) == ["a", None]
    assert json.loads(first["point"]) == {"x": 1, "h": "0a"}
    assert first["money"] == "12.30"
    assert first["view"] == "a,b"
    assert first["nothing"] == ""
    assert rows[1][header.index("ratio")] == "nan"
    assert all(v == "" for k, v in zip(header, rows[1], strict=True) if k not in {
        "u8", "ratio", "kind", "times"
    })  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_arbitrary_types_read_back(fmt: str) -> None:
    table = odd_table()
    data, _ = export(table.to_batches(max_chunksize=2), fmt)
    # The written forms have microseconds: compare the ns column at that precision.
    want = table.set_column(
        table.schema.get_field_index("ns"),
        "ns",
        pa.array([0, None, -1000], pa.timestamp("ns", tz="UTC")),
    )
    back = read_export(io.BytesIO(data), fmt, table.schema)
    for name in table.column_names:
        got, expected = back.column(name), want.column(name)
        if name in ("ratio", "f32") and fmt in ("json", "jsonl"):
            continue  # JSON has no NaN or infinity: they come back null
        if name in ("ratio", "f32"):
            assert str(got.to_pylist()) == str(expected.to_pylist()), name  # nan != nan
        elif fmt == "parquet" and name == "ns":
            assert got.equals(table.column(name)), name  # Parquet keeps nanoseconds
        else:
            assert got.equals(expected), name


def test_parquet_keeps_types_and_plain_views() -> None:
    table = odd_table()
    data, _ = export(table.to_batches(max_chunksize=2), "parquet")
    parquet = pq.read_table(pa.BufferReader(data))
    types = dict(zip(parquet.column_names, parquet.schema.types, strict=True))
    assert types["view"] == pa.string()
    assert types["large"] == pa.large_string()
    assert types["naive"] == pa.timestamp("us")
    assert types["money"] == pa.decimal128(12, 2)
    assert pa.types.is_struct(types["span"])  # Parquet has no month-day-nano interval
    assert pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0).column(0).compression == (
        "ZSTD"
    )


def test_types_polars_cannot_encode_take_the_fallback_path() -> None:
    union = pa.UnionArray.from_sparse(
        pa.array([0, 1, 0], pa.int8()),
        [pa.array([1, 2, 3]), pa.array(["a", "b", "c"])],
    )
    batch = pa.record_batch(
        {
            "t": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 3, pa.timestamp("us", tz="UTC")),
            "u": union,
            "details": ['{"a":1}', None, "{}"],
            "h": [b"\x01", None, b""],
        }
    )
    for fmt in ("json", "jsonl"):
        rows = json_rows(export([batch], fmt)[0], fmt)
        assert rows == [
            {"t": "2026-01-01T00:00:00.000000Z", "u": 1, "details": {"a": 1}, "h": "01"},
            {"t": "2026-01-01T00:00:00.000000Z", "u": "b", "details": None, "h": None},
            {"t": "2026-01-01T00:00:00.000000Z", "u": 3, "details": {}, "h": ""},
        ]
    _, *rows_csv = csv.reader(io.StringIO(export([batch], "csv")[0].decode()))
    assert [r[1] for r in rows_csv] == ["1", '"b"', "3"]


def test_duplicate_column_names_stay_in_order() -> None:
    batch = pa.record_batch(
        [pa.array([1]), pa.array(["x"]), pa.array([2]), pa.array(['{"k":0}'])],
        names=["a", "b", "a", "details"],
    )
    data, _ = export([batch], "jsonl")
    assert data == b'{"a":1,"b":"x","a":2,"details":{"k":0}}\n'


# ----------------------------------------------------------------------------- mistakes


def test_unknown_format_lists_the_formats() -> None:
    with pytest.raises(UsageError, match="json, jsonl, csv, parquet"):
        export([], "xml")
    with pytest.raises(UsageError, match="json, jsonl, csv, parquet"):
        read_export(io.BytesIO(b""), "yaml", EVENTS_SCHEMA)


def test_batches_must_share_the_schema() -> None:
    a = pa.record_batch({"n": [1]})
    b = pa.record_batch({"m": ["x"]})
    with pytest.raises(UsageError, match="batch 1"):
        export([a, b], "jsonl")
    with pytest.raises(UsageError, match="not a batch"):
        export([a, "row"], "jsonl")
    # A batch that only differs in nullability is cast to the given schema.
    table = events_table(5)
    loose = pa.schema([f.with_nullable(True) for f in EVENTS_SCHEMA])
    data, n = export(table.cast(loose).to_batches(), "parquet", schema=EVENTS_SCHEMA)
    assert n == 5
    assert pq.read_table(pa.BufferReader(data)).schema.equals(EVENTS_SCHEMA)


def test_an_unreadable_export_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        read_export(io.BytesIO(b'{"not": "an array"}'), "json", EVENTS_SCHEMA)
    with pytest.raises(UsageError):
        read_export(io.BytesIO(b'{"time": "yesterday"}\n'), "jsonl", EVENTS_SCHEMA)


def test_read_export_takes_a_path(tmp_path: Any) -> None:
    table = events_table(10)
    for fmt in FORMATS:
        path = tmp_path / f"out.{fmt}"
        with path.open("wb") as f:
            write_batches(table.to_batches(), fmt, f)
        assert read_export(path, fmt, EVENTS_SCHEMA).equals(table)
        assert read_export(str(path), fmt, EVENTS_SCHEMA).equals(table)
