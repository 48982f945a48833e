"""`detect run` with the rules evaluated on Ray gives the alerts of the local run.

Two copies of one demo lake with planted attacks; the built-in pack runs on one locally
and on the other with `ray_evaluate` (one Ray task per tenant), at the same `now`. The
alerts tables, the new/changed alerts the sinks would get and the per-rule summaries
must be equal, on the first (full) run and on an incremental run after more events.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from detect.distributed import ray_evaluate
from detect.model import load_rules
from detect.runner import RunResult, run
from ingest.demo import generate
from lake.contract import validate
from lake.log import NoteSigner, generate_signer
from lake.storage import Lake
from lake.verify import ray_session
from lake.write import append

END = date(2026, 11, 27)
NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="session")
def ray_module() -> Iterator[Any]:
    with ray_session(None, num_cpus=2) as ray:
        yield ray


def add_days(lake: Lake, signer: NoteSigner, events: list[dict[str, Any]], tag: str) -> None:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_day.setdefault(str(e["time"])[:10], []).append(e)
    for day in sorted(by_day):
        append(lake, validate(by_day[day], namespace=f"{tag}-{day}".encode()).table, signer)


def comparable(result: RunResult, lake: Lake) -> dict[str, Any]:
    alerts = sorted(lake.read_alerts().to_pylist(), key=lambda a: a["alert_id"])
    return {
        "rules": [r.__dict__ for r in result.rules],
        "new": result.new,
        "changed": result.changed,
        "alerts": alerts,
    }


def test_ray_alerts_equal_local_alerts(tmp_path: Path, ray_module: Any) -> None:
    signer = generate_signer("test")
    gold = Lake.init(tmp_path / "gold", "demo", signer.verifier_key.encode())
    data = generate(days=3, end=END, events_per_tenant_per_day=80, seed=5)
    add_days(gold, signer, data.events, "demo")
    shutil.copytree(tmp_path / "gold", tmp_path / "local")
    shutil.copytree(tmp_path / "gold", tmp_path / "ray")
    local, remote = Lake.open(tmp_path / "local"), Lake.open(tmp_path / "ray")
    rules = load_rules()
    evaluate = ray_evaluate(ray_module)

    first_local = comparable(run(local, rules, now=NOW), local)
    first_remote = comparable(run(remote, rules, now=NOW, evaluate=evaluate), remote)
    assert first_remote == first_local
    caught = {a["rule_id"] for a in first_local["alerts"]}
    planted = {"auth.brute_force", "auth.password_spray", "recovery.spree", "flag.mass_change"}
    assert planted <= caught, caught

    # More traffic, then an incremental run of each: watermarks and diffs agree too.
    more = generate(days=1, end=END, events_per_tenant_per_day=60, seed=11).events
    for lake in (local, remote):
        add_days(lake, signer, more, "more")
    again_local = comparable(run(local, rules, now=NOW), local)
    again_remote = comparable(run(remote, rules, now=NOW, evaluate=evaluate), remote)
    assert again_remote == again_local
    assert {r["mode"] for r in again_local["rules"]} >= {"incremental"}
    assert again_local["new"] or again_local["changed"]
