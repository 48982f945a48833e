"""Tests for lake.contract's validation (lake.contract.validate): every rule of the wire contract.

Over 600 lines on purpose: one table of cases per rule of the contract, read top to bottom
against docs/events.md.

Each bad-input case checks that the rejection names the event (index), the field, the
line (for JSON Lines) and a reason a person can act on. Expected values (enums, limits,
patterns) are written out here from the spec, not imported, so a drift shows up.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lake_testkit import json_values
from testkit import blocks_of
from testkit import minimal_event as ev

import lake.contract._wire as wire
import lake.contract._wire_exact as exact
import lake.contract._wire_fast as fast
from ingest.demo import generate
from lake.contract import (
    ACTOR_FIELDS,
    OUTPUT_SCHEMA,
    TARGET_FIELDS,
    WIRE_FIELDS,
    Issue,
    UsageError,
    Validated,
    ValidationError,
    assign_ids,
    assign_missing_ids,
    finish,
    parse_json_array,
    parse_jsonl,
    time_window,
    validate,
)
from lake.spec import check_event, format_duration, parse_duration

NS = b"test-namespace"


def run(*events: Any, lines: list[int] | None = None, namespace: bytes = NS) -> Validated:
    return validate(list(events), namespace=namespace, lines=lines)


def only_issues(event: Any) -> list[Issue]:
    """Issues of a single-event input; the event must be rejected."""
    v = run(event)
    assert v.table.num_rows == 0, "expected the event to be rejected"
    assert [r.index for r in v.rejected] == [0]
    return v.rejected[0].issues


def fields_of(issues: list[Issue]) -> list[str]:
    return [i.field for i in issues]


def accepted_row(event: dict[str, Any]) -> dict[str, Any]:
    v = run(event)
    assert v.rejected == [], v.issues
    assert v.table.num_rows == 1
    row: dict[str, Any] = v.table.to_pylist()[0]
    return row


def jsonl(*lines: bytes) -> Validated:
    records, line_numbers, issues = parse_jsonl(b"\n".join(lines))
    return validate(records, namespace=NS, lines=line_numbers, pre_issues=issues)


# ---------------------------------------------------------------------------------------
# The happy path: what a valid event becomes.


def test_fully_populated_event_maps_onto_stored_columns() -> None:
    row = accepted_row(
        ev(
            id="0190a5b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
            time="2024-03-01T12:34:56.789012+00:00",
            category="admin_action",
            action="role.grant",
            outcome="failure",
            severity="high",
            actor={"id": "alice", "type": "admin", "ip": "10.0.0.7", "user_agent": "curl/8.5"},
            target={"type": "user", "id": "bob"},
            source="admin-console",
            details={"role": "owner"},
        )
    )
    assert row == {
        "tenant": "acme",
        "event_date": date(2024, 3, 1),
        "event_id": "0190a5b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
        "time": datetime(2024, 3, 1, 12, 34, 56, 789012, tzinfo=UTC),
        "category": "admin_action",
        "action": "role.grant",
        "outcome": "failure",
        "severity": "high",
        "actor_id": "alice",
        "actor_type": "admin",
        "actor_ip": "10.0.0.7",
        "user_agent": "curl/8.5",
        "target_type": "user",
        "target_id": "bob",
        "source": "admin-console",
        "details": '{"role":"owner"}',
    }


def test_optional_fields_absent_are_null_and_finish_gives_the_strict_schema() -> None:
    v = run(ev())
    row = v.table.to_pylist()[0]
    for name in ("actor_type", "actor_ip", "user_agent", "target_type", "target_id", "source"):
        assert row[name] is None
    assert row["details"] is None
    strict = finish(v.table)
    assert strict.schema == OUTPUT_SCHEMA


def test_empty_input_is_an_empty_table() -> None:
    v = run()
    assert v.table.num_rows == 0
    assert v.rejected == []
    assert v.table.schema.names == OUTPUT_SCHEMA.names


@pytest.mark.parametrize("severity", ["info", "low", "medium", "high", "critical"])
def test_every_severity_is_accepted(severity: str) -> None:
    assert accepted_row(ev(severity=severity))["severity"] == severity


def test_severity_defaults_to_info_when_absent_or_null() -> None:
    assert accepted_row(ev())["severity"] == "info"
    assert accepted_row(ev(severity=None))["severity"] == "info"


@pytest.mark.parametrize(
    "category", ["authentication", "admin_action", "key_change", "flag_change", "account_recovery"]
)
def test_every_category_is_accepted(category: str) -> None:
    assert accepted_row(ev(category=category))["category"] == category


@pytest.mark.parametrize("outcome", ["success", "failure", "unknown"])
def test_every_outcome_is_accepted(outcome: str) -> None:
    assert accepted_row(ev(outcome=outcome))["outcome"] == outcome


@pytest.mark.parametrize("actor_type", ["user", "admin", "service", "system"])
def test_every_actor_type_is_accepted(actor_type: str) -> None:
    row = accepted_row(ev(actor={"id": "x", "type": actor_type}))
    assert row["actor_type"] == actor_type


# ---------------------------------------------------------------------------------------
# Unknown fields.


def test_unknown_top_level_fields_are_each_reported() -> None:
    issues = only_issues(ev(user="bob", extra=1))
    assert {(i.index, i.field, i.message) for i in issues} == {
        (0, "user", "unknown field"),
        (0, "extra", "unknown field"),
    }


def test_stored_column_names_are_not_wire_fields() -> None:
    # A user copying a stored row back in must be told which names are wrong.
    issues = only_issues(ev(actor_id="u1", event_date="2024-03-01"))
    assert sorted(fields_of(issues)) == ["actor_id", "event_date"]
    assert all(i.message == "unknown field" for i in issues)


def test_unknown_field_inside_actor() -> None:
    issues = only_issues(ev(actor={"id": "u1", "email": "a@example.com"}))
    assert [(i.index, i.field, i.message) for i in issues] == [(0, "actor.email", "unknown field")]


def test_unknown_field_inside_target() -> None:
    issues = only_issues(ev(target={"id": "t1", "name": "doc"}))
    assert [(i.index, i.field, i.message) for i in issues] == [(0, "target.name", "unknown field")]


# ---------------------------------------------------------------------------------------
# Wrong types.

WRONG_VALUES = [
    (42, "a number"),
    (4.5, "a number"),
    (True, "a boolean"),
    ({"a": 1}, "an object"),
    (["a"], "an array"),
]
STRING_FIELDS = [
    "tenant",
    "id",
    "time",
    "category",
    "action",
    "outcome",
    "severity",
    "source",
    "actor.id",
    "actor.type",
    "actor.ip",
    "actor.user_agent",
    "target.type",
    "target.id",
]


def _with(field: str, value: Any) -> dict[str, Any]:
    if "." in field:
        obj, sub = field.split(".")
        inner = {"id": "x"} if obj == "actor" else {}
        inner[sub] = value
        return ev(**{obj: inner})
    return ev(**{field: value})


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize(("value", "kind"), WRONG_VALUES, ids=[k for _, k in WRONG_VALUES])
def test_wrong_type_for_each_string_field(field: str, value: Any, kind: str) -> None:
    issues = only_issues(_with(field, value))
    # Exactly one complaint: the type. No "is required" piled on for a required field.
    assert [(i.index, i.field, i.message) for i in issues] == [
        (0, field, f"expected a string, got {kind}")
    ]


@pytest.mark.parametrize("field", ["actor", "target", "details"])
@pytest.mark.parametrize(
    ("value", "kind"),
    [("x", "a string"), (1, "a number"), (False, "a boolean"), ([{}], "an array")],
)
def test_wrong_type_for_each_object_field(field: str, value: Any, kind: str) -> None:
    issues = only_issues(ev(**{field: value}))
    assert [(i.index, i.field, i.message) for i in issues] == [
        (0, field, f"expected an object, got {kind}")
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [(1, "a number"), ("x", "a string"), ([], "an array"), (None, "null"), (True, "a boolean")],
)
def test_an_event_that_is_not_an_object(value: Any, kind: str) -> None:
    issues = only_issues(value)
    # One issue only: no "tenant is required" etc. for something that is not an event.
    assert [(i.index, i.field, i.message) for i in issues] == [
        (0, "(event)", f"expected an object, got {kind}")
    ]


# ---------------------------------------------------------------------------------------
# Required fields.


@pytest.mark.parametrize("field", ["tenant", "time", "category", "action", "outcome", "actor"])
def test_each_missing_required_field_is_reported(field: str) -> None:
    issues = only_issues(ev(**{field: ...}))
    assert [(i.index, i.field, i.message) for i in issues] == [(0, field, "is required")]


@pytest.mark.parametrize("field", ["tenant", "time", "category", "action", "outcome", "actor"])
def test_explicit_null_counts_as_missing(field: str) -> None:
    issues = only_issues(ev(**{field: None}))
    assert [(i.field, i.message) for i in issues] == [(field, "is required")]


def test_missing_actor_id_is_reported() -> None:
    issues = only_issues(ev(actor={"type": "user"}))
    assert [(i.index, i.field, i.message) for i in issues] == [(0, "actor.id", "is required")]
    issues = only_issues(ev(actor={}))
    assert [(i.field, i.message) for i in issues] == [("actor.id", "is required")]


def test_empty_actor_id_is_rejected() -> None:
    # An empty actor id is no actor at all; CSV input (where empty cells are absent) and
    # JSON input must agree.
    issues = only_issues(ev(actor={"id": ""}))
    assert [(i.index, i.field, i.message) for i in issues] == [(0, "actor.id", "must not be empty")]


def test_an_empty_object_reports_every_required_field() -> None:
    issues = only_issues({})
    assert fields_of(issues) == ["tenant", "time", "category", "action", "outcome", "actor"]
    assert all(i.message == "is required" for i in issues)


def test_target_and_optional_fields_may_be_null() -> None:
    row = accepted_row(ev(target=None, source=None, details=None, id=None))
    assert row["target_id"] is None
    assert row["event_id"]  # assigned


# ---------------------------------------------------------------------------------------
# Tenant ids.

TENANT_REASON = "is not a valid tenant id"


@pytest.mark.parametrize(
    "tenant",
    [
        "Acme",  # uppercase
        "ACME",
        "-acme",  # leading dash
        "_acme",  # leading underscore
        "a" * 64,  # one too long
        "",  # empty
        "../x",  # path traversal
        "..",
        "a/b",
        "a.b",
        "ácme",  # unicode letter
        "acme\u200b",  # zero-width space
        "ａｃｍｅ",  # full-width
        " acme",
        "acme ",
        "acme\n",  # a trailing newline must not slip past a `$` anchor
        "tenant=x",
    ],
)
def test_bad_tenant_ids(tenant: str) -> None:
    issues = only_issues(ev(tenant=tenant))
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.index, issue.field) == (0, "tenant")
    assert TENANT_REASON in issue.message
    # The reason says what *is* allowed, so the user can fix it.
    assert "lower-case letters, digits, '_' and '-'" in issue.message
    assert "at most 63 characters" in issue.message


def test_bad_tenant_message_shortens_long_values() -> None:
    (issue,) = only_issues(ev(tenant="x" * 500))
    assert "…" in issue.message
    assert len(issue.message) < 300


@pytest.mark.parametrize("tenant", ["a", "0", "acme", "a_b-c", "9lives", "a" * 63, "t-" + "0" * 61])
def test_good_tenant_ids(tenant: str) -> None:
    assert accepted_row(ev(tenant=tenant))["tenant"] == tenant


# ---------------------------------------------------------------------------------------
# Timestamps.

NOT_RFC3339 = "is not an RFC 3339 timestamp with an offset"
NOT_REAL = "is not a valid date and time"


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01T12:00:00",  # no offset
        "2024-03-01 12:00:00Z",  # space separator: RFC 3339 allows it, auditlake does not
        "2024-03-01T12:00:00+0200",  # offset without colon
        "2024-03-01T12:00:00+02",  # offset without minutes
        "2024-03-01T12:00Z",  # no seconds
        "2024-03-01",  # date only
        "2024-03-01T12:00:00.Z",  # dot without digits
        "2024-03-01T12:00:00.1234567890Z",  # ten fractional digits
        "1709294400",  # epoch seconds
        "01/03/2024 12:00",
        "",
        "2024-03-01T12:00:00 Z",
    ],
)
def test_malformed_timestamps(value: str) -> None:
    (issue,) = only_issues(ev(time=value))
    assert (issue.index, issue.field) == (0, "time")
    assert issue.message == f"{value!r} {NOT_RFC3339}"


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30T00:00:00Z",  # Feb 30
        "2023-02-29T00:00:00Z",  # not a leap year
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-03-01T25:00:00Z",  # hour 25
        "2024-03-01T24:00:00Z",
        "2024-03-01T12:60:00Z",
        "2024-03-01T12:00:60Z",  # leap second: rejected, not guessed
        "2024-03-01T12:00:00+24:00",
        "2024-03-01T12:00:00+05:99",
    ],
)
def test_well_shaped_but_impossible_timestamps(value: str) -> None:
    (issue,) = only_issues(ev(time=value))
    assert (issue.index, issue.field, issue.message) == (0, "time", f"{value!r} {NOT_REAL}")


def test_impossible_timestamp_is_found_among_good_ones() -> None:
    # The slow path only runs when the vectorised cast fails; it must blame the right event.
    v = run(ev(), ev(time="2024-02-30T00:00:00Z"), ev(id="b"), ev(time="2024-03-01T25:00:00Z"))
    assert [(r.index, fields_of(r.issues)) for r in v.rejected] == [(1, ["time"]), (3, ["time"])]
    assert v.table.num_rows == 2


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01T12:00:00.1234567Z",
        "2024-03-01T12:00:00.000000001Z",
        "2024-03-01T12:00:00.123456789+02:00",
    ],
)
def test_sub_microsecond_digits_are_rejected(value: str) -> None:
    (issue,) = only_issues(ev(time=value))
    assert (issue.field, issue.message) == (
        "time",
        "has sub-microsecond digits, which would be lost; send microseconds",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T12:00:00.123456000Z", datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01T12:00:00.1234560Z", datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01T12:00:00.000000000Z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00.5Z", datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-03-01t12:00:00z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01t12:00:00.25+01:00", datetime(2024, 3, 1, 11, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-01T12:00:00-00:00", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T12:00:00-05:30", datetime(2024, 3, 1, 17, 30, tzinfo=UTC)),
        ("2024-03-01T12:00:00+23:59", datetime(2024, 2, 29, 12, 1, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_timestamps_are_normalised_to_utc_microseconds(value: str, expected: datetime) -> None:
    assert accepted_row(ev(time=value))["time"] == expected


@pytest.mark.parametrize(
    ("value", "utc_date"),
    [
        ("2024-03-01T00:30:00+01:00", date(2024, 2, 29)),  # back over midnight (leap day)
        ("2024-03-01T23:30:00-01:00", date(2024, 3, 2)),  # forward over midnight
        ("2024-12-31T23:59:59.999999-00:01", date(2025, 1, 1)),  # over a year end
        ("2024-03-01T23:59:59.999999Z", date(2024, 3, 1)),
        ("2024-03-02T00:00:00Z", date(2024, 3, 2)),
    ],
)
def test_event_date_is_the_utc_date_of_time(value: str, utc_date: date) -> None:
    assert accepted_row(ev(time=value))["event_date"] == utc_date


def test_the_epoch_is_accepted_and_earlier_times_are_not() -> None:
    assert accepted_row(ev(time="1970-01-01T00:00:00Z"))["event_date"] == date(1970, 1, 1)
    for value in (
        "1969-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:30:00+01:00",
    ):
        (issue,) = only_issues(ev(time=value))
        assert (issue.index, issue.field) == (0, "time")
        assert (
            issue.message == f"{value!r} is before 1970-01-01T00:00:00Z, the earliest time accepted"
        )


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59Z"],
)
def test_far_future_times_are_refused_naming_the_skew(value: str) -> None:
    # -23:59 pushes UTC into year 10000: once accepted, then fatal to the collector.
    (issue,) = only_issues(ev(time=value))
    assert (issue.index, issue.field) == (0, "time")
    assert issue.message.startswith(f"{value!r} is more than 24h ahead of this machine's clock")
    assert "--max-future-skew" in issue.message
    assert [(i.field, i.message) for i in check_event(ev(time=value))] == [
        (issue.field, issue.message)
    ]


def test_future_skew_is_a_keyword_and_bounds_both_paths() -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert run(ev(time=soon)).rejected == []
    for skew in (timedelta(hours=1), timedelta(0)):
        v = validate([ev(time=soon)], max_future_skew=skew)
        (issue,) = v.issues
        assert issue.field == "time"
        assert f"more than {format_duration(skew)} ahead" in issue.message
        assert [i.message for i in check_event(ev(time=soon), max_future_skew=skew)] == [
            issue.message
        ]
        body = orjson.dumps(ev(time=soon))
        assert [i.message for i in wire.validate_jsonl(body, max_future_skew=skew).issues] == [
            issue.message
        ]
    # A skew past the calendar's end still refuses year 10000.
    huge = validate([ev(time="9999-12-31T23:59:59-23:59")], max_future_skew=timedelta(days=10**7))
    assert "9999-12-31T23:59:59.999999Z" in huge.issues[0].message


def test_far_dated_event_among_plain_ones_is_named_by_the_fast_path_input() -> None:
    events = [ev(id=f"e{i}") for i in range(50)]
    events[37] = ev(id="e37", time="9999-12-31T23:59:59-23:59")
    v = validate(events)
    assert [(r.index, fields_of(r.issues)) for r in v.rejected] == [(37, ["time"])]
    body = b"\n".join(orjson.dumps(e) for e in events)
    assert [(r.index, r.line) for r in wire.validate_jsonl(body).rejected] == [(37, 38)]


@pytest.mark.parametrize(
    ("text", "skew"),
    [("24h", timedelta(hours=24)), ("90m", timedelta(minutes=90)), ("0s", timedelta(0)),
     ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2)), (" 15M ", timedelta(minutes=15))],
)  # fmt: skip
def test_parse_duration(text: str, skew: timedelta) -> None:
    assert parse_duration(text) == skew


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "1.5h", "1 h", "1w", "forever"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


def test_skew_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    monkeypatch.setenv("AUDITLAKE_MAX_FUTURE_SKEW", "1h")
    assert "more than 1h ahead" in run(ev(time=soon)).issues[0].message
    monkeypatch.setenv("AUDITLAKE_MAX_FUTURE_SKEW", "soon")
    with pytest.raises(UsageError, match="AUDITLAKE_MAX_FUTURE_SKEW: 'soon' is not a duration"):
        run(ev())


# ---------------------------------------------------------------------------------------
# Enums and the action verb.


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        (
            "category",
            "login",
            "authentication, admin_action, key_change, flag_change, account_recovery",
        ),
        ("category", "Authentication", None),
        ("outcome", "ok", "success, failure, unknown"),
        ("outcome", "", None),
        ("severity", "warning", "info, low, medium, high, critical"),
        ("severity", "INFO", None),
    ],
)
def test_unknown_enum_values(field: str, value: str, allowed: str | None) -> None:
    (issue,) = only_issues(ev(**{field: value}))
    assert (issue.index, issue.field) == (0, field)
    assert issue.message.startswith(f"unknown value {value!r}; expected one of ")
    if allowed:
        assert issue.message.endswith(allowed)


def test_unknown_actor_type() -> None:
    (issue,) = only_issues(ev(actor={"id": "u", "type": "robot"}))
    assert (issue.index, issue.field, issue.message) == (
        0,
        "actor.type",
        "unknown value 'robot'; expected one of user, admin, service, system",
    )


@pytest.mark.parametrize(
    "action",
    ["Login", "login.", ".login", "role..grant", "role grant", "a-b", "1x", "x.1", "", "lögin"],
)
def test_action_must_be_a_dotted_verb(action: str) -> None:
    (issue,) = only_issues(ev(action=action))
    assert (issue.index, issue.field) == (0, "action")
    assert issue.message == f"{action!r} is not a dotted verb (e.g. login, role.grant, key.rotate)"


@pytest.mark.parametrize(
    "action",
    [
        "login",
        "logout",
        "mfa.challenge",
        "role.grant",
        "user.delete",
        "key.create",
        "key.rotate",
        "key.revoke",
        "flag.update",
        "recovery.request",
        "recovery.complete",
        "api_key.rotate_all",
        "v2.login",
    ],
)
def test_dotted_verbs_are_accepted(action: str) -> None:
    assert accepted_row(ev(action=action))["action"] == action


# ---------------------------------------------------------------------------------------
# Client ids and free-text bounds.


@pytest.mark.parametrize("bad_id", ["", "has space", "tab\there", "x" * 129, "ünïcode"])
def test_bad_client_ids(bad_id: str) -> None:
    (issue,) = only_issues(ev(id=bad_id))
    assert (issue.index, issue.field) == (0, "id")
    assert "is not a valid id (1–128 printable ASCII characters, no spaces)" in issue.message


def test_client_id_is_kept_verbatim() -> None:
    assert accepted_row(ev(id="x" * 128))["event_id"] == "x" * 128


def test_free_text_is_bounded_in_utf8_bytes() -> None:
    assert accepted_row(ev(source="é" * 512))["source"] == "é" * 512  # 1024 bytes
    (issue,) = only_issues(ev(source="é" * 513))  # 1026 bytes, 513 characters
    assert (issue.field, issue.message) == ("source", "longer than 1024 bytes")
    (issue,) = only_issues(ev(actor={"id": "u", "user_agent": "a" * 1025}))
    assert (issue.field, issue.message) == ("actor.user_agent", "longer than 1024 bytes")


# ---------------------------------------------------------------------------------------
# details.


def test_details_over_16_kib_is_rejected_and_exactly_16_kib_accepted() -> None:
    # {"k":"…"} is 8 bytes of syntax around the value.
    at_limit = {"k": "x" * (16 * 1024 - 8)}
    assert len(orjson.dumps(at_limit)) == 16384
    assert len(accepted_row(ev(details=at_limit))["details"]) == 16384

    (issue,) = only_issues(ev(details={"k": "x" * (16 * 1024 - 7)}))
    assert (issue.index, issue.field, issue.message) == (
        0,
        "details",
        "is 16385 bytes once serialised; the limit is 16384",
    )


def test_details_limit_counts_utf8_bytes_not_characters() -> None:
    # 8189 "é" are 16378 bytes: under 16384 characters, over 16384 bytes.
    (issue,) = only_issues(ev(details={"k": "é" * 8189}))
    assert issue.field == "details"
    assert "16386 bytes" in issue.message
    assert accepted_row(ev(details={"k": "é" * 8188}))["details"] is not None


def test_details_limit_is_on_the_compact_form_not_the_input_spacing() -> None:
    # Indented input would be far larger; what counts is the stored canonical text.
    details = {f"key{i:04d}": i for i in range(1000)}
    text = accepted_row(ev(details=details))["details"]
    assert len(text.encode()) <= 16384
    assert len(orjson.dumps(details, option=orjson.OPT_INDENT_2)) > 16384


def test_details_are_canonical_sorted_keys_at_every_level_and_compact() -> None:
    details = {
        "zeta": {"b": [{"y": 1, "x": 2}], "a": None},
        "alpha": [3, 2, 1],
        "mid": {"nested": {"d": True, "c": False}},
    }
    text = accepted_row(ev(details=details))["details"]
    assert text == (
        '{"alpha":[3,2,1],"mid":{"nested":{"c":false,"d":true}},'
        '"zeta":{"a":null,"b":[{"x":2,"y":1}]}}'
    )
    assert orjson.loads(text) == details  # nothing lost; array order kept


def test_details_keep_non_ascii_as_utf8_and_sort_by_code_point() -> None:
    details = {"😀": 1, "\uffff": 2, "é": 3, "z": 4, "Z": 5, "": 6, "名前": "é€😀\u2028"}
    text = accepted_row(ev(details=details))["details"]
    # Raw UTF-8, not \\u escapes (pinned orjson behaviour), including U+2028.
    assert "\\u" not in text
    assert text == '{"":6,"Z":5,"z":4,"é":3,"名前":"é€😀\u2028","\uffff":2,"😀":1}'
    # Code point (= UTF-8 byte) order, not UTF-16 order: U+FFFF sorts before U+1F600.


def test_details_escape_control_characters() -> None:
    text = accepted_row(ev(details={"k": 'a\x00b\nc"d\\'}))["details"]
    assert text == '{"k":"a\\u0000b\\nc\\"d\\\\"}'


def test_details_equal_objects_give_identical_text() -> None:
    a = accepted_row(ev(details={"b": 1, "a": {"y": 2, "x": 3}}))["details"]
    b = accepted_row(ev(details={"a": {"x": 3, "y": 2}, "b": 1}))["details"]
    assert a == b


def test_details_empty_object_is_kept() -> None:
    assert accepted_row(ev(details={}))["details"] == "{}"


def test_details_that_cannot_be_serialised_are_rejected() -> None:
    # Only reachable from the Python API (JSON objects always have string keys).
    (issue,) = only_issues(ev(details={1: "x"}))
    assert issue.field == "details"
    assert issue.message.startswith("cannot be serialised as JSON")


# ---------------------------------------------------------------------------------------
# JSON Lines parsing: line numbers, bad bytes, blank lines.


def test_jsonl_blank_lines_are_skipped_and_line_numbers_stay_right() -> None:
    good = orjson.dumps(ev())
    v = jsonl(
        b"",
        good,
        b"   ",
        b"\t",
        orjson.dumps(ev(tenant="BAD")),
        b"\r",
        orjson.dumps(ev(outcome="meh")),
        b"",
    )
    # Indexes count events (0, 1, 2), lines count lines (2, 5, 7).
    assert [(r.index, r.line) for r in v.rejected] == [(1, 5), (2, 7)]
    assert [(i.index, i.field, i.line) for i in v.issues] == [(1, "tenant", 5), (2, "outcome", 7)]
    assert v.table.num_rows == 1


def test_jsonl_crlf_line_endings_are_accepted() -> None:
    data = orjson.dumps(ev()) + b"\r\n" + orjson.dumps(ev(action="logout")) + b"\r\n"
    records, lines, issues = parse_jsonl(data)
    assert issues == []
    assert lines == [1, 2]
    assert validate(records, namespace=NS, lines=lines).table.num_rows == 2


def test_jsonl_malformed_line() -> None:
    v = jsonl(orjson.dumps(ev()), b'{"tenant": "acme",', orjson.dumps(ev(action="logout")))
    (r,) = v.rejected
    assert (r.index, r.line) == (1, 2)
    (issue,) = r.issues
    assert (issue.index, issue.field, issue.line) == (1, "(event)", 2)
    assert issue.message.startswith("not valid JSON")
    assert r.raw == '{"tenant": "acme",'  # the line itself, so it can be written back
    assert v.table.num_rows == 2


def test_jsonl_non_utf8_line() -> None:
    bad = orjson.dumps(ev()).replace(b"acme", b"ac\xffme")
    v = jsonl(orjson.dumps(ev()), b"", bad)
    (r,) = v.rejected
    (issue,) = r.issues
    assert (issue.index, issue.field, issue.line) == (1, "(event)", 3)
    assert issue.message.startswith("not valid UTF-8")
    assert "\ufffd" in r.raw  # replacement character in the kept raw text
    assert v.table.num_rows == 1


def test_jsonl_utf8_bom_is_rejected_with_a_reason() -> None:
    # Pinned: JSON Lines with a byte order mark is refused (CSV accepts one).
    v = jsonl(b"\xef\xbb\xbf" + orjson.dumps(ev()))
    (issue,) = v.issues
    assert (issue.index, issue.field, issue.line) == (0, "(event)", 1)
    assert "byte order mark" in issue.message


def test_jsonl_line_that_is_json_but_not_an_object() -> None:
    v = jsonl(b"[1, 2]", b'"text"', b"null", orjson.dumps(ev()))
    assert [(i.index, i.field, i.line, i.message) for i in v.issues] == [
        (0, "(event)", 1, "expected an object, got an array"),
        (1, "(event)", 2, "expected an object, got a string"),
        (2, "(event)", 3, "expected an object, got null"),
    ]


def test_every_issue_of_a_jsonl_event_carries_its_line() -> None:
    v = jsonl(b"", orjson.dumps(ev(tenant="X", time="nope", actor={"zz": 1})))
    (r,) = v.rejected
    assert r.line == 2
    assert {i.line for i in r.issues} == {2}
    assert str(r.issues[0]).startswith("event 0 (line 2): tenant: ")


def test_parse_json_array() -> None:
    assert parse_json_array(b'[{"a": 1}, 2]') == [{"a": 1}, 2]
    with pytest.raises(ValidationError) as err:
        parse_json_array(b'{"tenant": "acme"}')
    assert [(i.index, i.field, i.message) for i in err.value.issues] == [
        (0, "(document)", "expected an array of events, got an object")
    ]
    with pytest.raises(ValidationError) as err:
        parse_json_array(b"[{},")
    (issue,) = err.value.issues
    assert issue.field == "(document)"
    assert issue.message.startswith("not valid JSON")


# ---------------------------------------------------------------------------------------
# Duplicate ids.


def test_duplicate_id_for_the_same_tenant_rejects_the_second() -> None:
    v = run(ev(id="e-1"), ev(id="e-2"), ev(id="e-1", action="logout"), lines=[1, 2, 4])
    assert v.table.column("event_id").to_pylist() == ["e-1", "e-2"]
    assert v.table.column("action").to_pylist() == ["login", "login"]  # the first one wins
    (r,) = v.rejected
    assert (r.index, r.line) == (2, 4)
    (issue,) = r.issues
    assert (issue.index, issue.field, issue.line) == (2, "id", 4)
    assert issue.message == "duplicate id 'e-1': event 0 of this input already uses it"


def test_every_repeat_of_an_id_is_rejected() -> None:
    v = run(ev(id="a"), ev(id="a"), ev(id="a"))
    assert [r.index for r in v.rejected] == [1, 2]
    assert all("event 0 of this input" in r.issues[0].message for r in v.rejected)


def test_same_id_in_different_tenants_is_accepted() -> None:
    v = run(ev(id="e-1"), ev(id="e-1", tenant="globex"))
    assert v.rejected == []
    assert v.table.column("tenant").to_pylist() == ["acme", "globex"]


def test_duplicate_of_a_rejected_event_is_not_a_duplicate() -> None:
    # Pinned: only events that would be kept count; the first copy here is invalid.
    v = run(ev(id="e-1", outcome="bad"), ev(id="e-1"))
    assert [r.index for r in v.rejected] == [0]
    assert v.table.column("event_id").to_pylist() == ["e-1"]


def test_rejected_list_stays_in_input_order_with_duplicates() -> None:
    v = run(ev(id="a"), ev(id="a"), ev(tenant="X"), ev(id="b"), ev(id="b"))
    assert [r.index for r in v.rejected] == [1, 2, 4]
    assert [i.field for i in v.issues] == ["id", "tenant", "id"]


# ---------------------------------------------------------------------------------------
# Assigned ids.


def _ids(v: Validated) -> list[str]:
    return list(v.table.column("event_id").to_pylist())


def test_assigned_ids_are_time_ordered_uuidv8() -> None:
    v = run(ev(), ev(time="2024-03-01T12:00:00.987654+02:00"), ev(time="2026-07-04T00:00:00Z"))
    for event_id, t in zip(_ids(v), v.table.column("time").to_pylist(), strict=True):
        assert len(event_id) == 36
        assert [len(part) for part in event_id.split("-")] == [8, 4, 4, 4, 12]
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert parsed.version == 8
        assert parsed.variant == uuid.RFC_4122
        ms = int(event_id[:8] + event_id[9:13], 16)
        assert ms == (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_assigned_id_ms_prefix_is_floor_of_event_time() -> None:
    # 12:00:00.999999 → ...999 ms, never rounded up.
    v = run(ev(time="2024-03-01T12:00:00.999999Z"))
    ms = int(_ids(v)[0][:8] + _ids(v)[0][9:13], 16)
    assert ms == 1709294400999


def test_assigned_ids_depend_on_content_not_on_input_or_position() -> None:
    a, b = ev(action="logout"), ev(source="svc")
    first = _ids(run(ev(), a, b, namespace=b"file-a"))
    assert len(set(first)) == 3
    assert _ids(run(b, ev(id="x"), a, ev(), namespace=b"file-b")) == [
        first[2],
        "x",
        first[1],
        first[0],
    ]
    # The same instant written with another offset, severity defaulted or not: the same event.
    same = ev(time="2024-03-01T13:00:00+01:00", severity="info")
    assert _ids(run(same)) == first[:1]


def test_every_field_changes_the_assigned_id() -> None:
    base = ev(
        severity="low", source="s", target={"type": "t", "id": "i"}, details={"k": 1},
        actor={"id": "u1", "type": "user", "ip": "10.0.0.1", "user_agent": "ua"},
    )  # fmt: skip
    actor = base["actor"]
    variants: list[dict[str, Any]] = [
        {"tenant": "other"}, {"time": "2024-03-01T12:00:00.000001Z"},
        {"category": "admin_action"}, {"action": "logout"}, {"outcome": "failure"},
        {"severity": "high"}, {"source": "t"}, {"source": ...}, {"details": {"k": 2}},
        {"details": ...}, {"target": {"type": "t", "id": "j"}},
        {"target": {"type": "u", "id": "i"}}, {"actor": {**actor, "id": "u2"}},
        {"actor": {**actor, "type": "admin"}}, {"actor": {**actor, "ip": "10.0.0.2"}},
        {"actor": {**actor, "user_agent": "ub"}},
        # The same bytes moved between fields must not collide (length-prefixed encoding).
        {"source": "", "target": {"type": "t", "id": "i"}},
        {"source": "s", "target": {"type": "", "id": "ti"}},
    ]  # fmt: skip
    changed = [{k: v for k, v in {**base, **c}.items() if v is not ...} for c in variants]
    ids = _ids(run(base, *changed))
    assert len(ids) == len(variants) + 1 == len(set(ids))


def test_identical_id_less_events_get_one_id_and_are_kept_once() -> None:
    v = run(ev(), ev(id="x"), ev(), ev(time="2024-03-01T12:00:00+00:00"))
    assert v.rejected == []
    assert v.table.num_rows == 2
    assert v.repeats == 2
    assert v.positions is not None and list(v.positions) == [0, 1]
    # A client id repeated is still an error: that is a producer bug, not the same event.
    clash = run(ev(id="x"), ev(id="x", action="logout"))
    assert [(r.index, fields_of(r.issues)) for r in clash.rejected] == [(1, ["id"])]


def test_client_ids_and_assigned_ids_mix() -> None:
    ids = _ids(run(ev(id="client-1"), ev(), ev(id="client-2")))
    assert ids[0] == "client-1"
    assert ids[2] == "client-2"
    assert uuid.UUID(ids[1]).version == 8


def test_assign_ids_directly() -> None:
    import pyarrow as pa

    times = pa.array([0, 1_000, 1_709_294_400_123_456], pa.timestamp("us", tz="UTC"))
    ids = assign_ids(times, b"ns", start_index=5).to_pylist()
    assert [i[:13] for i in ids] == ["00000000-0000", "00000000-0001", "018df9e2-b27b"]
    assert [i[-8:] for i in ids] == ["00000005", "00000006", "00000007"]
    assert assign_ids(times.slice(0, 0), b"ns").to_pylist() == []


# ---------------------------------------------------------------------------------------
# Rejections as a whole.


def test_rejected_keeps_every_issue_of_an_event_together() -> None:
    bad = {
        "tenant": "Not Valid",
        "time": "yesterday",
        "category": "misc",
        "action": "Do Thing",
        "outcome": 1,
        "severity": "fatal",
        "actor": {"type": "robot", "name": "r2"},
        "target": "t",
        "details": [],
        "colour": "red",
    }
    v = run(ev(), bad, ev(action="logout"))
    (r,) = v.rejected
    assert r.index == 1
    assert r.raw is bad
    assert all(i.index == 1 for i in r.issues)
    assert sorted(fields_of(r.issues)) == sorted(
        [
            "colour",
            "tenant",
            "time",
            "category",
            "action",
            "outcome",
            "severity",
            "actor.name",
            "actor.id",
            "actor.type",
            "target",
            "details",
        ]
    )
    assert v.issues == r.issues
    assert v.table.num_rows == 2


def test_mixed_input_returns_valid_events_in_input_order() -> None:
    events = [
        ev(actor={"id": "a0"}),
        ev(actor={"id": "a1"}, tenant="BAD"),
        ev(actor={"id": "a2"}, tenant="globex"),
        "not an event",
        ev(actor={"id": "a4"}, time="2020-01-01T00:00:00Z"),
        ev(actor={"id": "a5"}, details="no"),
        ev(actor={"id": "a6"}, tenant="acme"),
    ]
    v = run(*events)
    assert v.table.column("actor_id").to_pylist() == ["a0", "a2", "a4", "a6"]
    assert [r.index for r in v.rejected] == [1, 3, 5]
    assert [r.raw for r in v.rejected] == [events[1], events[3], events[5]]


def test_issue_renders_index_line_field_and_reason() -> None:
    issue = Issue(3, "tenant", "is required", line=9)
    assert str(issue) == "event 3 (line 9): tenant: is required"
    assert issue.as_dict() == {"index": 3, "field": "tenant", "message": "is required", "line": 9}
    assert "line" not in Issue(0, "x", "y").as_dict()


@pytest.mark.parametrize(
    ("details", "where"),
    [
        (b'{"n":123456789012345678901234567890}', "details.n"),
        (b'{"a":{"b":[1,-9223372036854775809]}}', "details.a.b[1]"),
    ],
)
def test_integers_beyond_64_bits_are_refused_not_rounded(details: bytes, where: str) -> None:
    line = (
        b'{"tenant":"acme","time":"2026-11-01T10:00:00Z","category":"authentication",'
        b'"action":"login","outcome":"success","actor":{"id":"a"},"details":' + details + b"}"
    )
    records, lines, issues = parse_jsonl(line)
    result = validate(records, namespace=b"x", lines=lines, pre_issues=issues)
    assert result.table.num_rows == 0
    (issue,) = result.issues
    assert issue.field == where and "too large" in issue.message


def test_64_bit_integers_are_kept_exactly() -> None:
    line = (
        b'{"tenant":"acme","time":"2026-11-01T10:00:00Z","category":"authentication",'
        b'"action":"login","outcome":"success","actor":{"id":"a"},'
        b'"details":{"max":18446744073709551615,"min":-9223372036854775808,"f":1.5}}'
    )
    records, lines, issues = parse_jsonl(line)
    result = validate(records, namespace=b"x", lines=lines, pre_issues=issues)
    assert result.table.column("details")[0].as_py() == (
        '{"f":1.5,"max":18446744073709551615,"min":-9223372036854775808}'
    )


# ---------------------------------------------------------------------------------------
# The fast path (Arrow's converter over whole blocks) must say exactly what the reference
# validator says: the same rows, the same issues in the same order. Blocks are made tiny
# so that one example mixes blocks the fast path takes with blocks it declines.

SAMPLES = generate(days=1, events_per_tenant_per_day=4, seed=5).events
# One window for both sides of a comparison, its clock fixed so that the edge values
# above fall on either side of its bounds (2026-12-02 plus 24 hours).
WINDOW = time_window(timedelta(hours=24), now=datetime(2026, 12, 2, tzinfo=UTC))
_json = json_values(text=8, keys=5)
_edge = st.sampled_from(
    [
        "", "acme", "Acme", "a" * 64, "x" * 1025, "login", "role.grant", "Login",
        "authentication", "failure", "critical", "admin", "user", "auditlake",
        "2026-11-01T10:00:00Z", "2026-11-01t10:00:00.1234560z", "2026-11-01T10:00:00.1234567Z",
        "2026-02-30T10:00:00Z", "2026-11-01 10:00:00Z", "\ud800", "has space", "ok-id-1",
        "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z",
        "2026-12-01T00:00:00Z", "2026-12-03T00:00:00-00:01",
        b"bytes", ("tu", "ple"), [["id", "x"]], {"id": "x"}, {"type": "user"}, {}, {"e": 1e300},
        {"n": 2**65}, {"s": "name+tag e+"}, {"big": "x" * 17000},
    ]
)  # fmt: skip
_value = st.one_of(_json, _edge)


def _events(data: st.DataObject) -> list[Any]:
    events: list[Any] = []
    for _ in range(data.draw(st.integers(0, 9))):
        base: Any = dict(data.draw(st.sampled_from(SAMPLES)))  # "junk" makes it any value
        base["actor"] = dict(base["actor"])
        if data.draw(st.booleans()):
            base.pop("id", None)
        for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 2]))):
            where = data.draw(st.sampled_from(["top", "actor", "target", "drop", "junk"]))
            if where == "top":
                key = data.draw(st.sampled_from([*WIRE_FIELDS, "extra"]))
                base[key] = data.draw(_value)
            elif where in ("actor", "target"):
                obj = base.get(where)
                obj = dict(obj) if isinstance(obj, dict) else {}
                keys = ACTOR_FIELDS if where == "actor" else TARGET_FIELDS
                obj[data.draw(st.sampled_from([*keys, "zzz"]))] = data.draw(_value)
                base[where] = obj
            elif where == "drop" and base:
                base.pop(data.draw(st.sampled_from(sorted(base))))
            elif where == "junk":
                base = data.draw(_value)
                break
        events.append(base)
    return events


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fast_path_equals_the_reference_validator(data: st.DataObject) -> None:
    events = _events(data)
    reserved_ok = data.draw(st.booleans())
    with blocks_of(data.draw(st.sampled_from([1, 2, 3, 1024]))):
        fast = exact.Collector(None)
        got = wire._validate_columns(events, fast, reserved_ok, WINDOW)
    ref = exact.Collector(None)
    want = exact.validate_exact(events, ref, reserved_ok, WINDOW)
    assert got.equals(want)
    assert fast.by_index == ref.by_index  # same issues, in the same order per event


def test_fast_path_takes_plain_events_and_declines_odd_ones() -> None:
    plain = [dict(e) for e in SAMPLES]
    assert fast.fast_block(plain) is not None
    for odd in ({"zzz": 1}, {"actor": ("a", "b")}, {"target": "x"}, {"details": [1]}):
        assert fast.fast_block([*plain, {**plain[0], **odd}]) is None


def test_arrow_struct_conversion_ignores_unknown_keys_so_the_fast_path_checks_them() -> None:
    # Pinned: Arrow drops keys its struct type lacks, and takes tuples for structs.
    # Were the fast path to trust it, unknown fields would be silently lost.
    odd = {**ev(), "colour": "blue", "actor": ("u1", None, None, None)}
    converted = pa.array([odd], type=fast.WIRE_STRUCT)
    assert converted.to_pylist()[0]["actor"]["id"] == "u1"
    v = run(ev(colour="blue"), ev(actor=("u1", None, None, None)))
    assert [(r.index, [i.field for i in r.issues]) for r in v.rejected] == [
        (0, ["colour"]),
        (1, ["actor"]),
    ]


def _line(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return b"{not json"


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_scan_jsonl_equals_parse_jsonl_then_validate(data: st.DataObject) -> None:
    lines = [_line(e) for e in _events(data)]
    for _ in range(data.draw(st.integers(0, 3))):
        extra = data.draw(st.sampled_from([b"", b"  ", b"\r", b"{bad", b"[1, 2]", b"7"]))
        lines.insert(data.draw(st.integers(0, len(lines))), extra)
    if data.draw(st.booleans()):
        lines = [line + b"\r" for line in lines]
    text = b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n"]))
    first = data.draw(st.integers(1, 50))
    records, line_numbers, issues = parse_jsonl(text, first)
    want = validate(records, lines=line_numbers, pre_issues=issues, check_ids=False, window=WINDOW)
    with blocks_of(data.draw(st.sampled_from([1, 2, 1024]))):
        got = wire.scan_jsonl(text, first, window=WINDOW)
    assert got.events == len(records)
    assert want.positions is not None
    assert got.positions.tolist() == list(want.positions)
    assert got.lines.tolist() == [line_numbers[i] for i in want.positions]
    assert assign_missing_ids(got.table).equals(want.table)
    assert got.rejected == want.rejected


# ---------------------------------------------------------------------------------------
# Repeated keys: the block path's colon count must find every one the exact parse finds.


def _with_repeat(event: dict[str, Any], where: str, key: str, value: Any) -> bytes:
    """`event` as JSON text with `key` written a second time (with `value`) in `where`."""
    if where == "top":
        return (
            orjson.dumps(event)[:-1] + b"," + orjson.dumps(key) + b":" + orjson.dumps(value) + b"}"
        )
    inner = dict(event.get(where) or {}) if isinstance(event.get(where), dict) else {}
    inner.setdefault(key, "first")
    text = orjson.dumps(inner)[:-1] + b"," + orjson.dumps(key) + b":" + orjson.dumps(value) + b"}"
    placeholder = orjson.dumps({**event, where: "@@here@@"})
    return placeholder.replace(b'"@@here@@"', text)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_block_path_finds_every_repeated_key(data: st.DataObject) -> None:
    lines: list[bytes] = []
    repeated: dict[int, str] = {}
    for event in [e for e in _events(data) if isinstance(e, dict)]:
        # An empty object has no key to repeat at the top (`{,"k":v}` is not JSON at all).
        if data.draw(st.booleans()):
            where = data.draw(st.sampled_from(["top", "actor", "target", "details"]))
            if where == "top" and not event:
                where = "details"
            keys = sorted(event) if where == "top" else ["id", "type", "k", "a:b"]
            key = data.draw(st.sampled_from(keys))
            value = data.draw(st.sampled_from(["x", "a:b", 1, None, {"c": ":"}]))
            try:
                line = _with_repeat(event, where, key, value)
            except TypeError:  # not JSON at all (bytes, lone surrogates): not this test's
                continue
            repeated[len(lines)] = key if where == "top" else f"{where}.{key}"
            lines.append(line)
        else:
            lines.append(_line(event))
    text = b"\n".join(lines)
    records, line_numbers, issues = parse_jsonl(text)
    want = validate(records, lines=line_numbers, pre_issues=issues, check_ids=False, window=WINDOW)
    with blocks_of(data.draw(st.sampled_from([1, 2, 1024]))):
        got = wire.scan_jsonl(text, window=WINDOW)
    assert got.rejected == want.rejected
    assert assign_missing_ids(got.table).equals(want.table)
    for index, path in repeated.items():
        (r,) = [r for r in got.rejected if r.index == index]
        assert path in [i.field for i in r.issues], (path, r.issues)
