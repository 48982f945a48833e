"""`check_event` (scalar) must say exactly what `validate` (columnar) says about one event."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lake_testkit import json_values

from ingest.demo import generate
from lake.contract import validate
from lake.spec import ACTOR_FIELDS, READ_AUDIT_TENANT, TARGET_FIELDS, WIRE_FIELDS, check_event

GOOD = generate(days=1, events_per_tenant_per_day=10, seed=11).events

json_value = json_values(text=12, keys=6)
# Values aimed at the edges of each rule, besides arbitrary JSON.
tricky = st.sampled_from(
    [
        "",
        " ",
        "acme",
        "Acme",
        "-x",
        "a" * 63,
        "a" * 64,
        "x" * 1025,
        "é" * 600,
        "a\n",
        "login",
        "role.grant",
        "Login",
        "a..b",
        "authentication",
        "failure",
        "critical",
        "admin",
        "2026-11-01T10:00:00Z",
        "2026-11-01t10:00:00z",
        "2026-11-01T10:00:00.1234567Z",
        "2026-11-01T10:00:00.123456000+02:00",
        "2026-02-30T10:00:00Z",
        "2026-11-01 10:00:00Z",
        "2026-11-01T25:00:00Z",
        "2026-11-01T10:00:00",
        "\ud800",
        "01a1968d-3900-7d71-9642",
        "has space",
        "ok-id-1",
    ]
)
anything = st.one_of(json_value, tricky)


def mutate(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    event = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for _ in range(data.draw(st.integers(0, 3))):
        where = data.draw(st.sampled_from(["top", "actor", "target", "drop", "details"]))
        if where == "top":
            event[data.draw(st.sampled_from([*WIRE_FIELDS, "extra"]))] = data.draw(anything)
        elif where == "drop" and event:
            event.pop(data.draw(st.sampled_from(sorted(event))), None)
        elif where in ("actor", "target"):
            fields = ACTOR_FIELDS if where == "actor" else TARGET_FIELDS
            obj = event.get(where)
            obj = dict(obj) if isinstance(obj, dict) else {}
            obj[data.draw(st.sampled_from([*fields, "zzz"]))] = data.draw(anything)
            event[where] = obj
        else:
            event["details"] = data.draw(
                st.one_of(json_value, st.just({"n": 2**65}), st.just({"big": "x" * 17000}))
            )
    return event


def columnar(event: Any) -> list[tuple[str, str]]:
    return sorted((i.field, i.message) for i in validate([event], namespace=b"x").issues)


def scalar(event: Any) -> list[tuple[str, str]]:
    return sorted((i.field, i.message) for i in check_event(event))


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_scalar_and_columnar_validators_agree(data: st.DataObject) -> None:
    event = mutate(data.draw(st.sampled_from(GOOD)), data)
    assert scalar(event) == columnar(event)


def test_they_agree_on_valid_events_and_on_non_objects() -> None:
    for event in GOOD:
        assert scalar(event) == columnar(event) == []
    for junk in (None, 3, "x", [GOOD[0]]):
        assert scalar(junk) == columnar(junk)


@pytest.mark.parametrize("reserved_ok", [False, True])
def test_they_agree_on_the_reserved_tenant(reserved_ok: bool) -> None:
    event = {**GOOD[0], "tenant": READ_AUDIT_TENANT}
    got = sorted((i.field, i.message) for i in check_event(event, reserved_ok=reserved_ok))
    want = validate([event], reserved_ok=reserved_ok).issues
    assert got == sorted((i.field, i.message) for i in want)
    assert bool(got) is not reserved_ok
