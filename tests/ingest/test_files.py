"""Tests for ingest.files: every input format from real files, stdin sniffing, rejects.

All inputs are real files in tmp_path (or bytes passed as stdin would be); the validation
rules themselves are covered in tests/lake/test_wire.py, so here the point is that each
format reaches them with the right event index, line and field.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from ingest_testkit import base_columns, ev, ids, jsonl_bytes, parquet_bytes, rows, write

from ingest.files import load, write_rejects
from ingest.formats import detect_format
from lake.contract import UsageError, ValidationError

# ---------------------------------------------------------------------------------------
# JSON Lines and JSON arrays.


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
def test_jsonl_file(tmp_path: Path, suffix: str) -> None:
    data = jsonl_bytes(ev(), ev(action="logout", actor={"id": "u2"}))
    path = write(tmp_path, "events" + suffix, data)
    inp = load(path)
    assert inp.format == "jsonl"
    assert inp.name == path
    assert inp.total == 2
    assert inp.digest == hashlib.sha256(data).hexdigest()
    assert [r["action"] for r in rows(inp)] == ["login", "logout"]
    assert inp.validated.rejected == []


def test_jsonl_file_reports_lines(tmp_path: Path) -> None:
    data = orjson.dumps(ev()) + b"\n\n" + b"{oops\n" + orjson.dumps(ev(tenant="X")) + b"\n"
    inp = load(write(tmp_path, "e.jsonl", data))
    assert inp.total == 3
    assert [(r.index, r.line, [i.field for i in r.issues]) for r in inp.validated.rejected] == [
        (1, 3, ["(event)"]),
        (2, 4, ["tenant"]),
    ]


def test_json_array_file(tmp_path: Path) -> None:
    data = orjson.dumps([ev(), ev(outcome="nope"), ev(outcome="failure")])
    inp = load(write(tmp_path, "events.json", data))
    assert inp.format == "json"
    assert inp.total == 3
    assert [r["outcome"] for r in rows(inp)] == ["success", "failure"]
    (r,) = inp.validated.rejected
    assert (r.index, r.line) == (1, None)
    assert [(i.field, i.line) for i in r.issues] == [("outcome", None)]


def test_json_non_array_document_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "one.json", orjson.dumps(ev()))
    with pytest.raises(ValidationError) as err:
        load(path)
    assert err.value.source == path
    assert [(i.index, i.field, i.message) for i in err.value.issues] == [
        (0, "(document)", "expected an array of events, got an object")
    ]


def test_json_malformed_document_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", b"[" + orjson.dumps(ev()) + b",")
    with pytest.raises(ValidationError) as err:
        load(path)
    (issue,) = err.value.issues
    assert issue.field == "(document)"
    assert issue.message.startswith("not valid JSON")
    assert err.value.source == path


# ---------------------------------------------------------------------------------------
# Formats, extensions, missing files.


def test_unknown_extension_asks_for_format(tmp_path: Path) -> None:
    path = write(tmp_path, "events.txt", jsonl_bytes(ev()))
    with pytest.raises(UsageError) as err:
        load(path)
    message = str(err.value)
    assert "'.txt'" in message
    assert "--format" in message
    assert "jsonl, json, csv, parquet" in message


def test_no_extension_asks_for_format(tmp_path: Path) -> None:
    path = write(tmp_path, "events", jsonl_bytes(ev()))
    with pytest.raises(UsageError, match=r"'\(none\)'.*--format"):
        load(path)


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "events.txt", jsonl_bytes(ev()))
    inp = load(path, "jsonl")
    assert inp.format == "jsonl"
    assert inp.validated.table.num_rows == 1


def test_unknown_explicit_format(tmp_path: Path) -> None:
    path = write(tmp_path, "events.jsonl", jsonl_bytes(ev()))
    with pytest.raises(UsageError, match="unknown format 'xml'; choose one of"):
        load(path, "xml")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.jsonl")
    with pytest.raises(UsageError, match="no such file") as err:
        load(path)
    assert path in str(err.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        load(str(tmp_path))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"PAR1\x15\x04", "parquet"),
        (b"[", "json"),
        (b"  \n\t[{", "json"),
        (b'{"tenant"', "jsonl"),
        (b"\n\n{", "jsonl"),
        (b"", "jsonl"),
    ],
)
def test_stdin_format_is_sniffed(head: bytes, expected: str) -> None:
    assert detect_format("-", None, head) == expected


def test_stdin_sniffing_ignores_extension_rules_and_explicit_wins() -> None:
    assert detect_format("-", "csv", b"[") == "csv"
    assert detect_format("x.csv", None, b"[") == "csv"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (jsonl_bytes(ev(), ev(action="logout")), "jsonl"),
        (b"  " + orjson.dumps([ev(), ev(action="logout")]), "json"),
    ],
)
def test_load_stdin_bytes(data: bytes, fmt: str) -> None:
    inp = load("-", data=data)
    assert (inp.name, inp.format, inp.total) == ("stdin", fmt, 2)
    assert inp.validated.table.num_rows == 2


def test_load_stdin_parquet_bytes() -> None:
    table = pa.table({**base_columns(1), "time": ["2024-03-01T12:00:00Z"], "actor_id": ["u"]})
    inp = load("-", data=parquet_bytes(table))
    assert (inp.name, inp.format) == ("stdin", "parquet")
    assert inp.validated.table.num_rows == 1


def test_stdin_validation_error_names_stdin() -> None:
    with pytest.raises(ValidationError) as err:
        load("-", data=b'  {"not": "an array"}', fmt="json")
    assert err.value.source == "stdin"


# ---------------------------------------------------------------------------------------
# Deterministic ids.


def test_same_bytes_give_the_same_ids(tmp_path: Path) -> None:
    data = jsonl_bytes(ev(), ev(action="logout"), ev(id="client-1"))
    first = ids(load(write(tmp_path, "a.jsonl", data)))
    again = ids(load(write(tmp_path, "a.jsonl", data)))
    renamed = ids(load(write(tmp_path, "b.ndjson", data)))
    from_stdin = ids(load("-", data=data))
    assert first == again == renamed == from_stdin
    assert first[2] == "client-1"


def test_csv_and_parquet_ids_are_deterministic_too(tmp_path: Path) -> None:
    csv_data = b"tenant,time,category,action,outcome,actor_id\n" + (
        b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1\n" * 3
    )
    assert ids(load(write(tmp_path, "a.csv", csv_data))) == ids(load("-", "csv", csv_data))
    table = pa.table({**base_columns(1), "time": ["2024-03-01T12:00:00Z"], "actor_id": ["u"]})
    pq_data = parquet_bytes(table)
    assert ids(load(write(tmp_path, "a.parquet", pq_data))) == ids(load("-", data=pq_data))


# ---------------------------------------------------------------------------------------
# Rejects file.


def test_write_rejects_jsonl(tmp_path: Path) -> None:
    bad_event = ev(tenant="BAD", outcome="meh")
    data = (
        orjson.dumps(ev())
        + b"\n\n"
        + orjson.dumps(bad_event)
        + b"\n"
        + b"{broken\n"
        + orjson.dumps(ev(id="dup"))
        + b"\n"
        + orjson.dumps(ev(id="dup"))
        + b"\n"
    )
    inp = load(write(tmp_path, "in.jsonl", data))
    out = tmp_path / "in.rejects.jsonl"
    assert write_rejects(out, inp) == 3
    lines = out.read_bytes().splitlines()
    assert len(lines) == 3
    records = [orjson.loads(line) for line in lines]
    assert [set(r) for r in records] == [{"input", "index", "line", "errors", "event"}] * 3

    first, second, third = records
    assert (first["index"], first["line"], first["event"]) == (1, 3, bad_event)
    assert first["errors"] == [
        {
            "index": 1,
            "field": "tenant",
            "message": first["errors"][0]["message"],
            "line": 3,
        },
        {
            "index": 1,
            "field": "outcome",
            "message": "unknown value 'meh'; expected one of success, failure, unknown",
            "line": 3,
        },
    ]
    assert "is not a valid tenant id" in first["errors"][0]["message"]
    # A line that is not JSON is written back as its text.
    assert (second["index"], second["line"], second["event"]) == (2, 4, "{broken")
    assert second["errors"][0]["field"] == "(event)"
    assert (third["index"], third["line"]) == (4, 6)
    assert third["errors"][0]["field"] == "id"
    assert third["event"] == ev(id="dup")


def test_write_rejects_without_rejects_writes_an_empty_file(tmp_path: Path) -> None:
    inp = load(write(tmp_path, "ok.jsonl", jsonl_bytes(ev())))
    out = tmp_path / "rejects.jsonl"
    assert write_rejects(out, inp) == 0
    assert out.read_bytes() == b""


def test_write_rejects_for_json_array_has_null_line(tmp_path: Path) -> None:
    inp = load(write(tmp_path, "in.json", orjson.dumps([ev(), 5, ev(severity="fatal")])))
    out = tmp_path / "rejects.jsonl"
    assert write_rejects(out, inp) == 2
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["index"], r["line"], r["event"]) for r in records] == [
        (1, None, 5),
        (2, None, ev(severity="fatal")),
    ]
    assert records[0]["errors"] == [
        {"index": 1, "field": "(event)", "message": "expected an object, got a number"}
    ]


@pytest.mark.slow
def test_parallel_jsonl_validation_equals_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks in worker processes must give exactly the one-process result."""
    import ingest.files as files

    lines = []
    for i in range(400):
        e = ev(action=f"a{i % 7}")
        if i % 5:
            e.pop("id", None)  # most get assigned ids, keyed by global position
        else:
            e["id"] = f"client-{i % 60}"  # repeats across chunks: duplicates to reject
        lines.append(orjson.dumps(e))
        if i % 97 == 0:
            lines.append(b"")  # blank lines shift line numbers, not indexes
        if i % 131 == 0:
            lines.append(b"{not json")
    data = b"\n".join(lines) + b"\n"
    path = write(tmp_path, "big.jsonl", data)
    whole = files.load(path, workers=1)
    monkeypatch.setattr(files, "CHUNK_BYTES", 1500)  # many chunks, ids repeat across them
    one = files.load(path, workers=1)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 0)
    many = files.load(path, workers=3)
    assert one.validated.table.equals(whole.validated.table)
    assert [str(i) for i in one.validated.issues] == [str(i) for i in whole.validated.issues]
    assert many.validated.table.equals(one.validated.table)
    assert [(r.index, r.line, [str(i) for i in r.issues]) for r in many.validated.rejected] == [
        (r.index, r.line, [str(i) for i in r.issues]) for r in one.validated.rejected
    ]
    assert many.total == one.total
    assert any("duplicate id" in str(i) for i in one.validated.issues)


# ---------------------------------------------------------------------------------------
# #17: ids from content, repeated keys and columns, time bounds.

ID_LESS = ev(source="web", details={"b": [1, {"x": "y"}], "a": "z"})


def _csv_of(*events: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["tenant", "time", "category", "action", "outcome", "actor_id", "source", "details"]
    )
    for e in events:
        cells = [e[k] for k in ("tenant", "time", "category", "action", "outcome")]
        writer.writerow(
            [*cells, e["actor"]["id"], e["source"], orjson.dumps(e["details"]).decode()]
        )
    return out.getvalue().encode()


def _id_of(table: pa.Table, action: str = "login") -> str:
    (found,) = [r["event_id"] for r in table.to_pylist() if r["action"] == action]
    return str(found)


def test_the_same_id_less_event_gets_the_same_id_by_every_route(tmp_path: Path) -> None:
    from ingest.request_body import NDJSON, validate_body

    others = [ev(id="o1", action="logout"), ev(id="o2", action="role.grant")]
    routes = {
        "jsonl file": load(write(tmp_path, "a.jsonl", jsonl_bytes(ID_LESS, *others))),
        "json array, third": load(write(tmp_path, "b.json", orjson.dumps([*others, ID_LESS]))),
        "csv": load(write(tmp_path, "c.csv", _csv_of(ID_LESS))),
        "stdin jsonl, second": load("-", data=jsonl_bytes(others[0], ID_LESS)),
    }
    got = {name: _id_of(inp.validated.table) for name, inp in routes.items()}
    # The collector's own entry point, both body types, the event at other positions.
    for content_type, body in (
        (NDJSON, jsonl_bytes(*others, ID_LESS)),
        ("application/json", orjson.dumps([others[1], ID_LESS])),
    ):
        table, issues = validate_body(body, content_type, 100)
        assert issues == []
        got[f"collector {content_type}"] = _id_of(table)
    assert len(set(got.values())) == 1, got


def test_identical_id_less_events_across_chunks_are_kept_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.files as files

    monkeypatch.setattr(files, "CHUNK_BYTES", 300)  # a chunk or two per event
    data = jsonl_bytes(ID_LESS, ev(id="x"), ID_LESS, ev(action="logout"), ID_LESS)
    with files.open_input(write(tmp_path, "r.jsonl", data)) as spooled:
        table = spooled.read_all()
        assert (spooled.total, spooled.rows, spooled.repeats) == (5, 3, 2)
        assert spooled.rejected == []
    assert [r["action"] for r in table.to_pylist()] == ["login", "login", "logout"]
    assert len(set(table.column("event_id").to_pylist())) == 3


def test_a_client_id_repeated_across_chunks_is_still_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.files as files

    monkeypatch.setattr(files, "CHUNK_BYTES", 200)
    data = jsonl_bytes(ev(id="x"), ev(), ev(id="x", action="logout"))
    with files.open_input(write(tmp_path, "r.jsonl", data)) as spooled:
        assert [(i.index, i.field) for i in spooled.issues] == [(2, "id")]
        assert spooled.repeats == 0


TENANT_TWICE = (
    b'{"tenant":"acme","tenant":"evil","time":"2024-03-01T12:00:00Z","category":'
    b'"authentication","action":"login","outcome":"success","actor":{"id":"u1"}}'
)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (TENANT_TWICE, "tenant"),
        (orjson.dumps(ev())[:-1] + b',"details":{"a":{"k":1,"k":2}}}', "details.a.k"),
        (orjson.dumps(ev()).replace(b'{"id":"u1"}', b'{"id":"u1","id":"root"}'), "actor.id"),
        # An escaped colon elsewhere must not hide the repeat from the colon count.
        (TENANT_TWICE[:-1] + b',"source":"a\\u003ab"}', "tenant"),
    ],
)
def test_repeated_json_keys_are_rejected_not_resolved(
    tmp_path: Path, line: bytes, field: str
) -> None:
    plain = [orjson.dumps(ev(id=f"e{i}")) for i in range(40)]
    for name, data in (
        # Among plain lines, so the block-wise fast path sees it first.
        ("a.jsonl", b"\n".join([*plain[:30], line, *plain[30:]]) + b"\n"),
        ("b.json", b"[" + b",".join([*plain[:30], line, *plain[30:]]) + b"]"),
    ):
        inp = load(write(tmp_path, name, data))
        (issue,) = inp.validated.issues
        assert (issue.index, issue.field) == (30, field)
        assert "appears more than once" in issue.message
        assert inp.validated.table.num_rows == 40  # --skip-invalid keeps the rest


@pytest.mark.parametrize(
    ("extra", "clash"),
    [
        ("actor_id,tenant", "tenant"),
        ("actor_id,actor.id", "actor.id"),
        ("actor.id,user_agent,actor_user_agent", "actor_user_agent"),
        ("actor_id,id,event_id", "event_id"),
    ],
)
def test_csv_columns_that_name_one_field_twice_are_rejected(
    tmp_path: Path, extra: str, clash: str
) -> None:
    header = "tenant,time,category,action,outcome," + extra
    cells = "acme,2024-03-01T12:00:00Z,authentication,login,success,u1,x,y"
    row = ",".join(cells.split(",")[: header.count(",") + 1])
    with pytest.raises(ValidationError) as caught:
        load(write(tmp_path, "d.csv", f"{header}\n{row}\n".encode()))
    (issue,) = caught.value.issues
    assert (issue.field, issue.line) == (clash, 1)
    assert "keep one" in issue.message


def test_parquet_columns_that_name_one_field_twice_are_rejected(tmp_path: Path) -> None:
    base = {**base_columns(1), "time": ["2024-03-01T12:00:00Z"]}
    both = pa.table({**base, "actor_id": ["u"], "actor.id": ["root"]})
    with pytest.raises(ValidationError, match=r"actor\.id"):
        load(write(tmp_path, "a.parquet", parquet_bytes(both)))
    names = [*base, "actor_id", "tenant"]
    arrays = [pa.array(v) for v in base.values()] + [pa.array(["u"]), pa.array(["evil"])]
    twice = pa.Table.from_arrays(arrays, names=names)
    with pytest.raises(ValidationError, match="repeats column 'tenant'"):
        load(write(tmp_path, "b.parquet", parquet_bytes(twice)))


def test_far_dated_events_are_rejected_in_every_format(tmp_path: Path) -> None:
    far = ev(time="9999-12-31T23:59:59-23:59")
    table = pa.table({**base_columns(1), "time": [far["time"]], "actor_id": ["u1"]})
    near = pa.table({**base_columns(1), "time": ["2024-03-01T12:00:00Z"], "actor_id": ["u1"]})
    for name, data in (
        ("a.jsonl", jsonl_bytes(ev(), far)),
        ("b.json", orjson.dumps([ev(), far])),
        ("c.csv", b"tenant,time,category,action,outcome,actor_id\n"
         b"acme,2024-03-01T12:00:00Z,authentication,login,success,u1\n"
         b"acme,9999-12-31T23:59:59-23:59,authentication,login,success,u1\n"),
        ("d.parquet", parquet_bytes(pa.concat_tables([near, table]))),
    ):  # fmt: skip
        (issue,) = load(write(tmp_path, name, data)).validated.issues
        assert (issue.index, issue.field) == (1, "time"), name
        assert "ahead of this machine's clock" in issue.message


def test_closed_stdin_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when descriptor 0 is closed
    with pytest.raises(UsageError, match="standard input is closed"):
        load("-")


def test_fingerprints_do_not_depend_on_the_longest_key_beside_them() -> None:
    # Chunks pad keys to their own longest one; a key must fingerprint alike in each, or a
    # repeated id in two chunks goes unnoticed (an assigned UUID beside a short client id).
    from ingest.fingerprints import fingerprints

    alone = fingerprints(pa.array(["acme"]), pa.array(["x"]), 7)
    beside = fingerprints(pa.array(["acme", "acme"]), pa.array(["x", "y" * 40]), 7)
    assert alone[0] == beside[0]


def test_the_collectors_entry_point_refuses_far_dated_events_and_repeated_keys() -> None:
    # The collector validates bodies with the same lake.wire functions as file ingest.
    from ingest.request_body import NDJSON, validate_body

    far = ev(id="far", time="9999-12-31T23:59:59-23:59")
    for content_type, body in (
        (NDJSON, jsonl_bytes(ev(id="ok"), far)),
        ("application/json", orjson.dumps([ev(id="ok"), far])),
    ):
        _, issues = validate_body(body, content_type, 100)
        assert [(i.index, i.field) for i in issues] == [(1, "time")], content_type
        assert "ahead of this machine's clock" in issues[0].message
    _, issues = validate_body(TENANT_TWICE + b"\n", NDJSON, 100)
    assert [(i.index, i.field) for i in issues] == [(0, "tenant")]
    with pytest.raises(ValidationError) as caught:
        validate_body(b"[" + TENANT_TWICE + b"]", "application/json", 100)
    assert [(i.index, i.field) for i in caught.value.issues] == [(0, "tenant")]


def test_repeated_keys_inside_a_csv_details_cell_are_rejected(tmp_path: Path) -> None:
    data = (
        b"tenant,time,category,action,outcome,actor_id,details\n"
        b'acme,2024-03-01T12:00:00Z,authentication,login,success,u1,"{""a"": 1}"\n'
        b'acme,2024-03-01T12:00:00Z,authentication,login,success,u1,"{""a"": 1, ""a"": 2}"\n'
    )
    (issue,) = load(write(tmp_path, "d.csv", data)).validated.issues
    assert (issue.index, issue.field, issue.line) == (1, "details.a", 3)
