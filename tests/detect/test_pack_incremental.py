"""Every built-in rule's positive test cases again, through real lakes and two cron runs.

`detect test` runs a case over one in-memory table. Here the same events go into a real
lake in two batches (the earlier half of the events, then the rest) with a run after each:
the alerts must be exactly those of the single pass, so no window is lost at a run
boundary and nothing is counted twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detect.model import Rule, load_rules
from detect.runner import run
from detect.testing import events_table, expand, run_case
from lake.contract import validate
from lake.log import generate_signer
from lake.storage import Lake
from lake.write import append

CASES = [
    (rule, case)
    for rule in load_rules()
    if rule.kind != "silence"  # silence depends on the run's clock, not on batching
    for case in rule.tests
    if case.expect
]


@pytest.mark.parametrize(("rule", "case"), CASES, ids=[f"{r.id}:{c.name}" for r, c in CASES])
def test_two_runs_find_what_one_pass_finds(rule: Rule, case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    where = f"rule {rule.id!r} test {case.name!r}"
    expected = run_case(rule, case)
    assert expected.ok, expected.problems
    wire, _ = expand(case.events, where)
    ids = events_table(case.events, where).column("event_id").to_pylist()
    for event, event_id in zip(wire, ids, strict=True):
        event["id"] = event_id  # the very events of the single pass
    wire.sort(key=lambda e: e["time"])
    half = len(wire) // 2
    signer = generate_signer("pack-test")
    lake = Lake.init(tmp_path / "lake", "t", signer.verifier_key.encode())
    for k, part in enumerate((wire[:half], wire[half:])):
        if part:
            append(lake, validate(part, namespace=bytes([k])).table, signer)
            run(lake, [rule])
    got = sorted(
        (a["tenant"], a["group"], a["event_count"], tuple(a["event_ids"]))
        for a in lake.read_alerts().to_pylist()
    )
    want = sorted(
        (a.tenant, a.group, a.event_count, tuple(a.event_ids or ())) for a in expected.alerts
    )
    assert got == want
