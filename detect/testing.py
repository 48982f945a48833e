"""Run rules' test cases: events in, expected alerts out (`auditlake detect test`).

Test events are wire events with defaults and a little shorthand, so a case stays short:

    - {actor: alice, outcome: failure, time: "2026-11-02T10:00:00Z", _repeat: 5, _every: 30s}

`actor`/`target` may be plain strings (their id), `ip` sets actor.ip, `_repeat`/`_every`
expand one line into several events, `_received_at` sets when the lake received it
(default: its time). Defaults: tenant `acme`, category `authentication`, action `login`,
outcome `success`, actor `alice`. An expectation is a subset of an alert's fields
(`group` as a mapping); the alerts must match the expectations one to one, in order of
(tenant, first_seen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from detect.engine import alerts, connection
from detect.model import Rule, RuleError, TestCase, parse_duration
from lake.contract import EVENTS_SCHEMA, Alert, finish, validate
from lake.query import release

DEFAULTS: dict[str, Any] = {
    "tenant": "acme",
    "category": "authentication",
    "action": "login",
    "outcome": "success",
}


def _parse_time(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RuleError(f"{where}: time {value!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise RuleError(f"{where}: time {value!r} needs an offset (e.g. Z)")
    return moment.astimezone(UTC)


def expand(
    events: Sequence[dict[str, Any]], where: str
) -> tuple[list[dict[str, Any]], list[datetime]]:
    """Test-case shorthand to wire events, with each event's received_at."""
    out: list[dict[str, Any]] = []
    received: list[datetime] = []
    for i, raw in enumerate(events):
        here = f"{where}: events[{i}]"
        if not isinstance(raw, dict):
            raise RuleError(f"{here}: an event must be a mapping")
        ev = {**DEFAULTS, **{k: v for k, v in raw.items() if not k.startswith("_")}}
        repeat = int(raw.get("_repeat", 1))
        every = parse_duration(raw.get("_every", "1s"), f"{here}: _every")
        actor = ev.pop("actor", "alice")
        actor = {"id": actor} if isinstance(actor, str) else dict(actor)
        if "ip" in ev:
            actor["ip"] = ev.pop("ip")
        if "actor_type" in ev:
            actor["type"] = ev.pop("actor_type")
        ev["actor"] = actor
        if isinstance(ev.get("target"), str):
            ev["target"] = {"id": ev["target"]}
        start = _parse_time(ev.get("time", "2026-11-02T10:00:00Z"), here)
        late = raw.get("_received_at")
        for k in range(repeat):
            at = start + every * k
            one = {**ev, "time": at.isoformat().replace("+00:00", "Z")}
            if isinstance(one.get("actor"), dict) and "{n}" in str(one["actor"].get("id")):
                one["actor"] = {**one["actor"], "id": one["actor"]["id"].replace("{n}", str(k))}
            if isinstance(one.get("target"), dict) and "{n}" in str(one["target"].get("id")):
                one["target"] = {**one["target"], "id": one["target"]["id"].replace("{n}", str(k))}
            out.append(one)
            received.append(_parse_time(late, here) + every * k if late else at)
    return out, received


def events_table(events: Sequence[dict[str, Any]], where: str) -> pa.Table:
    """Validated test events as stored rows (EVENTS_SCHEMA), in an Arrow table."""
    wire, received = expand(events, where)
    result = validate(wire, namespace=where.encode())
    if result.rejected:
        raise RuleError(f"{where}: test event invalid: {result.rejected[0].issues[0]}")
    table = finish(result.table)
    n = table.num_rows
    table = table.append_column("received_at", pa.array(received, pa.timestamp("us", tz="UTC")))
    if "event_date" not in table.column_names:
        table = table.append_column(
            "event_date", pc.cast(pc.cast(table["time"], pa.timestamp("us")), pa.date32())
        )
    table = table.append_column("seq", pa.array(range(n), pa.int64()))
    table = table.append_column("batch_id", pa.array(["test"] * n))
    table = table.append_column("leaf_hash", pa.array([b"\0" * 32] * n, pa.binary(32)))
    return table.select(EVENTS_SCHEMA.names)


def connect(table: pa.Table) -> duckdb.DuckDBPyConnection:
    """A locked-down connection (lake.query's) whose `events` are these rows; it reads no
    file. Close it with lake.query's `release`."""

    def setup(con: duckdb.DuckDBPyConnection) -> None:
        con.register("_test_events", table)
        con.execute("CREATE VIEW events AS SELECT * FROM _test_events")

    return connection([], setup)


@dataclass
class CaseResult:
    rule_id: str
    case: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _matches(alert: Alert, expected: dict[str, Any]) -> list[str]:
    problems = []
    row = alert.to_row()
    for key, want in expected.items():
        got = row.get(key)
        if key == "group":
            got = alert.group_keys()
        if key in ("first_seen", "last_seen") and isinstance(want, str):
            want = _parse_time(want, key)
        if isinstance(want, datetime) and isinstance(got, datetime):
            same = want.astimezone(UTC) == got.astimezone(UTC)
        else:
            same = got == want
        if not same:
            problems.append(f"{key}: expected {want!r}, got {got!r}")
    return problems


def run_case(rule: Rule, case: TestCase) -> CaseResult:
    where = f"rule {rule.id!r} test {case.name!r}"
    table = events_table(case.events, where)
    con = connect(table)
    now = _parse_time(case.now, where) if case.now else None
    if rule.kind == "silence" and now is None:
        raise RuleError(f"{where}: a silence rule's test needs `now:`")
    try:
        found = alerts(con, rule, now=now)
    finally:
        release(con)
    rows = sorted(found, key=_case_order)
    result = CaseResult(rule.id, case.name, True, alerts=rows)
    if len(rows) != len(case.expect):
        result.problems.append(f"expected {len(case.expect)} alert(s), got {len(rows)}")
    for i, (alert, want) in enumerate(zip(rows, case.expect, strict=False)):
        result.problems += [f"alert {i}: {p}" for p in _matches(alert, dict(want))]
    result.ok = not result.problems
    return result


def _case_order(alert: Alert) -> tuple[str, bool, datetime]:
    """(tenant, first_seen), a missing first_seen last (as Arrow's sort puts nulls)."""
    first = alert.first_seen
    return alert.tenant, first is None, first or datetime.min.replace(tzinfo=UTC)


def run_tests(rules: Sequence[Rule]) -> list[CaseResult]:
    return [run_case(r, c) for r in rules for c in r.tests]
