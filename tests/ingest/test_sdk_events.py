"""The SDK's typed helpers build exactly the wire events they document, field for field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.sdk import EventHelpers, InvalidEventError

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
STAMP = "2024-05-06T07:08:09.123456Z"


class Recorder(EventHelpers):
    """The helpers over a `log` that keeps the events it is given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed = 0

    def log(self, event: Mapping[str, Any]) -> str:
        self.events.append(dict(event))
        return str(event["id"])

    def close(self) -> None:
        self.closed += 1


def test_each_helper_builds_its_wire_event_in_field_order() -> None:
    r = Recorder()
    r.login("northwind", "alice", outcome="failure", ip="192.0.2.7", mfa="totp", time=WHEN)
    r.admin_action(
        "contoso", "root", "role.grant", target_type="role", target_id="owner", time=WHEN,
        event_id="e-1", severity="high", source="admin-ui", user_agent="curl/8",
    )  # fmt: skip
    r.key_change("northwind", "svc", "key.rotate", "k-42", time=WHEN, details={"n": 1})
    r.flag_change("contoso", "carol", "billing", old=False, new=True, time=WHEN, actor_type=None)
    r.recovery_attempt("northwind", "dave", outcome="failure", target_id="dave", time=WHEN)
    common = {"time": STAMP}
    assert [{k: v for k, v in e.items() if k != "id"} for e in r.events] == [
        {"tenant": "northwind", **common, "category": "authentication", "action": "login",
         "outcome": "failure", "actor": {"id": "alice", "type": "user", "ip": "192.0.2.7"},
         "details": {"mfa": "totp"}},
        {"tenant": "contoso", **common, "category": "admin_action", "action": "role.grant",
         "outcome": "success", "actor": {"id": "root", "type": "admin", "user_agent": "curl/8"},
         "severity": "high", "target": {"type": "role", "id": "owner"}, "source": "admin-ui"},
        {"tenant": "northwind", **common, "category": "key_change", "action": "key.rotate",
         "outcome": "success", "actor": {"id": "svc"}, "target": {"type": "key", "id": "k-42"},
         "details": {"n": 1}},
        {"tenant": "contoso", **common, "category": "flag_change", "action": "flag.update",
         "outcome": "success", "actor": {"id": "carol"},
         "target": {"type": "flag", "id": "billing"}, "details": {"old": False, "new": True}},
        {"tenant": "northwind", **common, "category": "account_recovery",
         "action": "recovery.request", "outcome": "failure",
         "actor": {"id": "dave", "type": "user"}, "target": {"id": "dave"}},
    ]  # fmt: skip
    # The serialised line keeps the same key order as before the helpers were shared.
    assert list(r.events[1]) == [
        "tenant", "id", "time", "category", "action", "outcome", "actor", "severity", "target",
        "source",
    ]  # fmt: skip
    assert r.events[1]["id"] == "e-1"
    assert orjson.loads(orjson.dumps(r.events[0]))["details"] == {"mfa": "totp"}


def test_helpers_leave_the_callers_details_alone_and_default_actor_types() -> None:
    r = Recorder()
    details = {"reason": "test"}
    r.login("northwind", "alice", outcome="success", mfa=True, details=details)
    r.flag_change("northwind", "ops", "f", old=1, new=2, details=details)
    r.login("northwind", "svc", outcome="success", actor_type="service")
    assert details == {"reason": "test"}
    assert r.events[0]["details"] == {"reason": "test", "mfa": True}
    assert r.events[1]["details"] == {"reason": "test", "old": 1, "new": 2}
    assert r.events[2]["actor"]["type"] == "service"


def test_a_helper_used_as_a_context_manager_is_closed_after_an_exception() -> None:
    with pytest.raises(RuntimeError), Recorder() as r:
        r.login("northwind", "alice", outcome="success")
        raise RuntimeError("boom")
    assert r.closed == 1 and len(r.events) == 1


def test_a_naive_time_is_refused_before_log() -> None:
    r = Recorder()
    with pytest.raises(InvalidEventError, match="time: a naive datetime has no time zone"):
        r.login("northwind", "alice", outcome="success", time=datetime(2024, 1, 1))
    assert r.events == []
