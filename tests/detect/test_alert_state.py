"""The typed seams of detection: one Alert in its three forms, the detect state file read
and written through DetectState, and rules confined to lake.query's locked connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import yaml
from detect_testkit import add, failures, new_lake

from detect.model import RuleKind, rule_from_dict
from detect.runner import RunMode, run
from detect.state import STATE_PATH, DetectState, RuleState
from lake.contract import ALERTS_SCHEMA, Alert, StorageError, UsageError
from lake.log import generate_signer

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ALERT = Alert(
    tenant="acme",
    alert_id="0" * 32,
    rule_id="t.brute",
    severity="high",
    title="Brute force against alice",
    group='{"actor_id":"alice"}',
    first_seen=T0,
    last_seen=T0 + timedelta(minutes=4),
    event_count=5,
    event_ids=("e1", "e2"),
)
BRUTE = """
id: t.brute
title: "Brute force against {actor_id}"
kind: threshold
match: "action:login outcome:failure"
group_by: [actor_id]
window: 10m
threshold: 5
"""


def test_an_alert_survives_the_table_and_the_json_form_unchanged() -> None:
    table = pa.Table.from_pylist([ALERT.to_row()], schema=ALERTS_SCHEMA)
    assert list(ALERT.to_row()) == ALERTS_SCHEMA.names
    assert Alert.from_row(table.to_pylist()[0]) == ALERT
    doc = ALERT.to_json()
    assert doc["group"] == {"actor_id": "alice"}
    assert doc["first_seen"] == "2026-11-02T10:00:00.000000Z"
    assert Alert.from_json(orjson.loads(orjson.dumps(doc))) == ALERT
    with pytest.raises(UsageError, match="missing 'title'"):
        Alert.from_row({**ALERT.to_row(), "title": None})


def test_detect_state_keeps_its_file_format_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    signer = generate_signer("t")
    lake = new_lake(tmp_path / "l", signer)
    add(lake, failures("acme", "alice", T0, 5, timedelta(minutes=1)), signer, "a")
    rule = rule_from_dict(yaml.safe_load(BRUTE), "test")
    assert rule.kind is RuleKind.THRESHOLD
    result = run(lake, [rule], now=T0 + timedelta(hours=1))
    assert [r.mode for r in result.rules] == [RunMode.FULL]
    doc = orjson.loads(lake.read_bytes(STATE_PATH))
    entry = doc["rules"]["t.brute"]
    assert list(entry) == ["fingerprint", "version", "received_at", "ran_at"]
    assert entry["fingerprint"] == rule.fingerprint() and entry["version"] == result.version
    assert entry["ran_at"] == (T0 + timedelta(hours=1)).isoformat()
    state = DetectState.load(lake)
    assert state.rules["t.brute"] == RuleState.from_json(entry)
    assert state.rules["t.brute"].start(rule.fingerprint()) == result.version
    assert state.rules["t.brute"].start("another rule") == -1
    assert [r.mode for r in run(lake, [rule]).rules] == [RunMode.IDLE]
    lake.write_bytes(STATE_PATH, b'{"rules": {"t.brute": {"version": "12"}}}')
    with pytest.raises(StorageError, match="malformed"):
        DetectState.load(lake)


def test_a_rule_cannot_read_files_outside_the_snapshot(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("tenant,event_id,time\nacme,x,2026-11-02 10:00:00\n")
    signer = generate_signer("t")
    lake = new_lake(tmp_path / "l", signer)
    add(lake, failures("acme", "alice", T0, 1, timedelta(minutes=1)), signer, "a")
    rule = rule_from_dict(
        {"id": "t.exfil", "title": "t", "kind": "sql",
         "sql": f"SELECT tenant, event_id, time::TIMESTAMPTZ AS time FROM read_csv('{secret}')"},
        "test",
    )  # fmt: skip
    with pytest.raises(UsageError, match=r"t\.exfil.*(Permission|access|allowed)"):
        run(lake, [rule])
