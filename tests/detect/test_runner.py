"""Incremental detection runs on a real lake: batching, late events, reruns, locks, optimize."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from detect_testkit import add, failures, new_lake
from testkit import login

from detect.model import Rule, load_rules, rule_from_dict
from detect.runner import LOCK_PATH, RunBusy, run, run_lock
from lake.log import NoteSigner, generate_signer
from lake.storage import Lake, optimize

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

RULES_YAML = """
id: t.brute
title: "Brute force against {actor_id}"
kind: threshold
severity: high
match: "action:login outcome:failure"
group_by: [actor_id]
window: 10m
threshold: 5
---
id: t.spray
title: "Spray from {actor_ip}"
kind: distinct
match: "action:login outcome:failure"
group_by: [actor_ip]
distinct: actor_id
window: 30m
threshold: 4
---
id: t.success_after
title: "Success after failures for {actor_id}"
kind: sequence
window: 10m
steps:
  - {match: "action:login outcome:failure", by: actor_id, min_count: 3}
  - {match: "action:login outcome:success", by: actor_id}
"""


def rules() -> list[Rule]:
    return [rule_from_dict(d, "test") for d in yaml.safe_load_all(RULES_YAML)]


def traffic(seed: int = 1) -> list[dict[str, Any]]:
    """Two tenants, a day of noise, and bursts that cross every window edge."""
    rnd = random.Random(seed)
    out = []
    for tenant in ("acme", "beta"):
        for _ in range(300):
            at = T0 + timedelta(seconds=rnd.randrange(0, 86400))
            who = f"user{rnd.randrange(40)}"
            out.append(login(tenant, who, at, rnd.choice(["success"] * 9 + ["failure"])))
        base = T0 + timedelta(hours=rnd.randrange(1, 20))
        for k in range(7):  # brute force then success
            out.append(
                login(tenant, "victim", base + timedelta(seconds=50 * k), "failure", "203.0.113.9")
            )
        out.append(login(tenant, "victim", base + timedelta(minutes=7), "success", "203.0.113.9"))
        for k in range(6):  # spray
            at = base + timedelta(hours=2, minutes=4 * k)
            out.append(login(tenant, f"target{k}", at, "failure", "203.0.113.66"))
        # a burst straddling a dedup-bucket boundary (buckets are an hour)
        edge = (base + timedelta(hours=4)).replace(minute=55, second=0)
        for k in range(7):  # the 5th failure (:59) and the 6th, 7th (:00, :01) straddle
            out.append(login(tenant, "edgy", edge + timedelta(minutes=k), "failure"))
    rnd.shuffle(out)
    for i, e in enumerate(out):  # fixed ids: both lakes must hold the very same events
        e["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"auditlake-test/{seed}/{i}"))
    return out


@pytest.fixture
def signer() -> NoteSigner:
    return generate_signer("detect-test")


def snapshot(lake: Lake) -> set[tuple[Any, ...]]:
    return {
        (r["alert_id"], r["rule_id"], r["tenant"], r["event_count"], tuple(r["event_ids"]),
         r["first_seen"], r["last_seen"])
        for r in lake.read_alerts().to_pylist()
    }  # fmt: skip


def test_one_batch_or_fifty_give_the_same_alerts(tmp_path: Path, signer: NoteSigner) -> None:
    events = traffic()
    one = new_lake(tmp_path / "one", signer)
    add(one, events, signer, "all")
    first = run(one, rules())
    assert {r.mode for r in first.rules} == {"full"}

    many = new_lake(tmp_path / "many", signer)
    chunks = [events[i::50] for i in range(50)]  # every batch spans the whole day
    for i, chunk in enumerate(chunks):
        add(many, chunk, signer, f"c{i}")
        run(many, rules())

    assert snapshot(one) == snapshot(many)
    kinds = {r[1] for r in snapshot(one)}
    assert kinds == {"t.brute", "t.spray", "t.success_after"}
    # the edge burst is one alert per dedup bucket it triggers in, identical both ways
    edgy = [r for r in one.read_alerts().to_pylist() if "edgy" in r["group"]]
    assert len(edgy) == 2 * 2  # two tenants x two hourly buckets
    # bucket h: trigger :59, evidence :55-:59; bucket h+1: triggers :00-:01, evidence :55-:01
    assert sorted(r["event_count"] for r in edgy) == [5, 5, 7, 7]


def test_reruns_add_nothing_and_write_nothing(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    add(lake, traffic(), signer, "all")
    run(lake, rules())
    from deltalake import DeltaTable

    version = DeltaTable(lake.alerts_uri).version()
    again = run(lake, rules())
    assert {r.mode for r in again.rules} == {"idle"}
    backfill = run(lake, rules(), since=T0 - timedelta(days=1))
    assert backfill.new == [] and backfill.changed == []
    assert DeltaTable(lake.alerts_uri).version() == version


def test_a_late_event_completes_a_window(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    at = T0 + timedelta(hours=3)
    add(lake, failures("acme", "late", at, 4, timedelta(minutes=1)), signer, "a")
    assert run(lake, rules()).new == []
    # a day of unrelated traffic later...
    add(lake, [login("acme", "other", T0 + timedelta(days=1), "success")], signer, "b")
    run(lake, rules())
    # ...the fifth failure arrives, stamped with its original (old) time
    add(lake, [login("acme", "late", at + timedelta(minutes=9), "failure")], signer, "c")
    result = run(lake, rules())
    assert [(a.rule_id, a.event_count) for a in result.new] == [("t.brute", 5)]


def test_a_window_across_two_cron_runs(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    at = T0 + timedelta(hours=5)
    add(lake, failures("acme", "bob", at, 3, timedelta(minutes=1)), signer, "a")
    assert run(lake, rules()).new == []
    add(
        lake,
        failures("acme", "bob", at + timedelta(minutes=3), 2, timedelta(minutes=1)),
        signer,
        "b",
    )
    second = run(lake, rules())
    assert [(a.rule_id, a.event_count) for a in second.new] == [("t.brute", 5)]
    # one more failure in the same bucket updates the alert rather than adding one
    add(lake, [login("acme", "bob", at + timedelta(minutes=6), "failure")], signer, "c")
    third = run(lake, rules())
    assert third.new == [] and [a.event_count for a in third.changed] == [6]
    assert len(lake.read_alerts().to_pylist()) == 1


def test_optimize_between_runs_duplicates_nothing(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    events = traffic(seed=2)
    for i in range(5):
        add(lake, events[i::5], signer, f"c{i}")
    run(lake, rules())
    before = snapshot(lake)
    optimize(lake)
    result = run(lake, rules())
    assert result.new == [] and result.changed == []
    assert snapshot(lake) == before


def test_two_runs_never_overlap(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    add(lake, traffic(), signer, "all")
    with run_lock(lake), pytest.raises(RunBusy, match="another"):
        run(lake, rules())
    assert (Path(lake.base) / LOCK_PATH).exists()
    assert run(lake, rules()).rules  # free again


def test_a_changed_rule_starts_over(tmp_path: Path, signer: NoteSigner) -> None:
    lake = new_lake(tmp_path / "l", signer)
    add(lake, traffic(), signer, "all")
    run(lake, rules())
    docs = list(yaml.safe_load_all(RULES_YAML))
    docs[0]["threshold"] = 7
    changed = [rule_from_dict(d, "test") for d in docs]
    result = run(lake, changed)
    modes = {r.rule_id: r.mode for r in result.rules}
    assert modes == {"t.brute": "full", "t.spray": "idle", "t.success_after": "idle"}


def test_builtin_pack_loads(tmp_path: Path) -> None:
    rules_ = load_rules()
    assert len({r.id for r in rules_}) == len(rules_)
