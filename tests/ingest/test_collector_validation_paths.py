"""The collector's NDJSON validation (`scan_jsonl` by blocks) against the old path.

`validate_body` once ran `parse_jsonl` + `validate` on a request body; it now takes the
file ingestor's block-wise path (`lake.contract.validate_jsonl`). These tests hold it to the
old path's output over many bodies: the same table (rows, order, assigned ids, schema) and
the same issues (index, field, message, line, order), including every edge a request can
carry. The old path is called directly here as the reference.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import blocks_of

import lake.contract._wire as wire
from ingest.demo import generate
from ingest.request_body import NDJSON, check_body, denied_issues, validate_body
from lake.contract import READ_AUDIT_TENANT, Issue, parse_jsonl, validate, validate_jsonl

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server

BASE: list[dict[str, Any]] = generate(
    tenants=("northwind", "contoso"),
    days=1,
    events_per_tenant_per_day=12,
    seed=3,
    incidents=False,
).events


def reference(body: bytes, max_events: int) -> tuple[pa.Table, list[Issue]]:
    """The collector's NDJSON path before the switch: parse every line, then validate."""
    namespace = hashlib.sha256(body).digest()
    records, lines, issues = parse_jsonl(body)
    if len(records) > max_events:
        return pa.table({}), [Issue(max_events, "(request)", f"more than {max_events} events")]
    result = validate(records, namespace=namespace, lines=lines, pre_issues=issues)
    return result.table, result.issues


def assert_same_as_reference(body: bytes, max_events: int = 10_000) -> tuple[pa.Table, list[Issue]]:
    want_table, want_issues = reference(body, max_events)
    table, issues = validate_body(body, NDJSON, max_events)
    assert issues == want_issues
    assert table.schema.equals(want_table.schema, check_metadata=True)
    assert table.equals(want_table)
    return table, issues


# Changes that make an event invalid (each names a field) or odd but valid.
MUTATIONS: dict[str, Any] = {
    "no id": lambda e, prior: e.pop("id", None),
    "bad outcome": lambda e, prior: e.update(outcome="maybe"),
    "bad tenant": lambda e, prior: e.update(tenant="Not A Tenant"),
    "reserved tenant": lambda e, prior: e.update(tenant=READ_AUDIT_TENANT),
    "time not a time": lambda e, prior: e.update(time="yesterday"),
    "time no instant": lambda e, prior: e.update(time="2024-02-30T10:00:00Z"),
    "time nanoseconds": lambda e, prior: e.update(time="2024-02-03T10:00:00.1234567Z"),
    "time zero nanos": lambda e, prior: e.update(time="2024-02-03T10:00:00.1234560+02:00"),
    "severity a number": lambda e, prior: e.update(severity=5),
    "severity absent": lambda e, prior: e.pop("severity", None),
    "actor a string": lambda e, prior: e.update(actor="alice"),
    "actor absent": lambda e, prior: e.pop("actor", None),
    "actor id empty": lambda e, prior: (
        isinstance(e.get("actor"), dict) and e["actor"].update(id="")
    ),
    "actor extra": lambda e, prior: (
        isinstance(e.get("actor"), dict) and e["actor"].update(colour="blue")
    ),
    "target absent": lambda e, prior: e.pop("target", None),
    "extra field": lambda e, prior: e.update(colour="blue"),
    "details a list": lambda e, prior: e.update(details=[1, 2]),
    "details too big": lambda e, prior: e.update(details={"x": "y" * 17_000}),
    "details big int": lambda e, prior: e.update(details={"n": 2**70}),
    "action not a verb": lambda e, prior: e.update(action="Log In"),
    "id with a space": lambda e, prior: e.update(id="has space"),
    "id empty": lambda e, prior: e.update(id=""),
    "string too long": lambda e, prior: e.update(source="s" * 5_000),
    "repeat an id": lambda e, prior: (
        prior and e.update(id=prior[-1].get("id", "x"), tenant=prior[-1].get("tenant", "northwind"))
    ),
    "same id, other tenant": lambda e, prior: (
        prior
        and e.update(
            id=prior[-1].get("id", "x"),
            tenant="contoso" if prior[-1].get("tenant") == "northwind" else "northwind",
        )
    ),
}
# Lines that are not events, or not JSON objects.
ODD_LINES = [
    b"",
    b"  ",
    b"\t",
    b"\r",
    b"{bad",
    b'{"tenant": "northwind", oops',
    b"[1, 2]",
    b"7",
    b"null",
    b'"text"',
    b"\xff\xfe{}",
    b"\xef\xbb\xbf{}",
    b'{"tenant": "\\ud800"}',
    b"{}",
]


def event_line(event: Any) -> bytes:
    try:
        return orjson.dumps(event)
    except TypeError:  # an integer beyond 64 bits: orjson will not write it, json will
        return json.dumps(event).encode()


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, int]:
    """An NDJSON body of valid, invalid, repeated and odd lines, and a max_events near it."""
    lines: list[bytes] = []
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 14))):
        event = orjson.loads(orjson.dumps(draw(st.sampled_from(BASE))))
        for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=2)):
            MUTATIONS[name](event, events)
        events.append(event)
        lines.append(event_line(event))
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(ODD_LINES)))
    if draw(st.booleans()):
        lines = [line + b"\r" for line in lines]
    body = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\n\n"]))
    count = sum(1 for line in body.split(b"\n") if line.strip())
    max_events = draw(st.sampled_from([10_000, count, max(count - 1, 0), count + 1, 1]))
    return body, max_events


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies(), st.sampled_from([1, 2, 3, 1024]))
def test_validate_body_equals_parse_jsonl_then_validate(case: tuple[bytes, int], rows: int) -> None:
    body, max_events = case
    with blocks_of(rows):
        assert_same_as_reference(body, max_events)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies(), st.sampled_from([1, 3, 1024]))
def test_validate_jsonl_equals_validate_in_every_field(case: tuple[bytes, int], rows: int) -> None:
    body, _ = case
    namespace = hashlib.sha256(body).digest()
    records, lines, issues = parse_jsonl(body)
    want = validate(records, namespace=namespace, lines=lines, pre_issues=issues)
    with blocks_of(rows):
        got = validate_jsonl(body, namespace=namespace)
    assert got.table.equals(want.table)
    assert got.rejected == want.rejected  # indexes, raw events, issues, lines, order
    assert got.positions is not None and want.positions is not None
    assert got.positions.tolist() == want.positions.tolist()
    assert got.lines == want.lines


def many(seed: int, n: int, *, bad: int, repeats: int, blanks: int, no_ids: float) -> bytes:
    """A large body (several scan blocks) with scattered bad lines, repeats and blanks."""
    rng = random.Random(seed)
    data = generate(
        tenants=("northwind", "contoso", "fabrikam"),
        days=2,
        events_per_tenant_per_day=n // 6 + 1,
        seed=seed,
        incidents=False,
    ).events[:n]
    events = [dict(e) for e in data]
    for e in events:
        if rng.random() < no_ids:
            e.pop("id", None)
    lines = [orjson.dumps(e) for e in events]
    for _ in range(repeats):
        src, dst = sorted(rng.sample(range(len(events)), 2))
        if "id" in events[src]:
            lines[dst] = orjson.dumps(
                {**events[dst], "id": events[src]["id"], "tenant": events[src]["tenant"]}
            )
    for _ in range(bad):
        at = rng.randrange(len(lines))
        lines[at] = rng.choice([b"{bad", orjson.dumps({**events[at], "outcome": "maybe"})])
    for _ in range(blanks):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice([b"", b"  ", b"\r"]))
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    ("seed", "n", "bad", "repeats", "blanks", "no_ids"),
    [
        (1, 3_000, 0, 0, 0, 0.0),  # valid, every block on the fast path
        (2, 3_000, 0, 0, 0, 1.0),  # every id assigned
        (3, 3_000, 0, 0, 0, 0.3),  # some ids assigned: position runs
        (4, 3_000, 5, 0, 0, 0.3),  # invalid events in some blocks only
        (5, 3_000, 0, 6, 0, 0.0),  # repeated ids across blocks
        (6, 3_000, 0, 0, 9, 0.3),  # blank lines shift lines, not indexes
        (7, 5_000, 4, 4, 4, 0.5),  # all of it together
    ],
)
def test_large_bodies_across_scan_blocks(
    seed: int, n: int, bad: int, repeats: int, blanks: int, no_ids: float
) -> None:
    body = many(seed, n, bad=bad, repeats=repeats, blanks=blanks, no_ids=no_ids)
    table, issues = assert_same_as_reference(body)
    assert bool(issues) == bool(bad or repeats)
    if not issues:
        assert table.num_rows == n
    if repeats and not bad:
        assert {i.field for i in issues} == {"id"}


@pytest.mark.parametrize(
    ("body", "max_events", "over"),
    [
        (b'{"a": 1}\n' * 3, 3, False),
        (b'{"a": 1}\n' * 4, 3, True),
        (b'{"a": 1}\n' * 3 + b"\n\n  \n\r\n", 3, False),  # blank lines are not events
        (b'{"a": 1}\n\n{"a": 1}\n\n{"a": 1}', 3, False),  # no final newline
        (b'{"a": 1}\n\n{"a": 1}\n\n{"a": 1}\n{"a": 1}', 3, True),
        (b"{bad\n" * 4, 3, True),  # lines that are not JSON count: refused unparsed
        (b"", 0, False),
        (b"\n", 0, False),
        (b"x", 0, True),
    ],
)
def test_more_than_max_events_is_refused_as_before(
    body: bytes, max_events: int, over: bool
) -> None:
    _, issues = assert_same_as_reference(body, max_events)
    refused = [Issue(max_events, "(request)", f"more than {max_events} events")]
    assert (issues == refused) is over


def test_a_body_past_the_limit_is_refused_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a body past the limit was parsed")

    monkeypatch.setattr(wire, "scan_jsonl", no_scan)
    body = b'{"tenant": "northwind", oops\n' * 10_001
    table, issues = validate_body(body, NDJSON, 10_000)
    assert issues == [Issue(10_000, "(request)", "more than 10000 events")]
    assert table.num_rows == 0


def old_denied(table: pa.Table, tenants: frozenset[str]) -> list[Issue]:
    """The collector's tenant check before it went columnar."""
    names = table.column("tenant").to_pylist() if table.num_rows else []
    return [
        Issue(i, "tenant", f"this token may not write tenant {t!r}")
        for i, t in enumerate(names)
        if t not in tenants
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["northwind", "contoso", "globex", "initech"]), max_size=40),
    st.sets(st.sampled_from(["northwind", "contoso", "globex"])),
    st.integers(1, 5),
)
def test_denied_tenants_equal_the_old_check(
    tenants: list[str], allowed: set[str], chunks: int
) -> None:
    column = pa.chunked_array(
        [pa.array(tenants[k::chunks], pa.string()) for k in range(chunks)], pa.string()
    )
    table = pa.table({"tenant": column})
    got = denied_issues(table, frozenset(allowed))
    assert got == old_denied(table, frozenset(allowed))


def test_tenants_are_checked_only_in_a_body_without_issues() -> None:
    allowed = frozenset({"northwind", "contoso"})
    events = [dict(e) for e in BASE[:3]]
    events[1]["tenant"] = "globex"
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    table, issues, denied = check_body(body, NDJSON, 10_000, allowed)
    assert issues == []
    assert denied == old_denied(table, allowed)
    assert [(d.index, d.field) for d in denied] == [(1, "tenant")]
    events[2]["outcome"] = "maybe"  # a 400 comes before a 403
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    _, issues, denied = check_body(body, NDJSON, 10_000, allowed)
    assert [(i.index, i.field) for i in issues] == [(2, "outcome")]
    assert denied == []


def test_a_denied_tenant_still_gets_403_with_the_same_issues(server: Server) -> None:
    events = [dict(e) for e in BASE[:4]]
    events[1]["tenant"] = "globex"
    events[3]["tenant"] = "initech"
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    status, answer = server.post(body)
    assert status == 403
    assert answer == {
        "error": "token not allowed for these tenants; nothing was kept",
        "errors": [
            {"index": 1, "field": "tenant", "message": "this token may not write tenant 'globex'"},
            {"index": 3, "field": "tenant", "message": "this token may not write tenant 'initech'"},
        ],
    }
    # The same body as a JSON array: the same answer.
    assert server.post(orjson.dumps(events), content_type="application/json") == (403, answer)
    # Allowed tenants only: accepted.
    allowed = [e for e in events if e["tenant"] in ("northwind", "contoso")]
    status, answer = server.post(b"\n".join(orjson.dumps(e) for e in allowed) + b"\n")
    assert (status, answer) == (202, {"accepted": len(allowed)})
