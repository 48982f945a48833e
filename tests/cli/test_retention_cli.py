"""`auditlake retention` and `auditlake hold` through the real console script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


def _dates(demo: DemoLake, tenant: str) -> set[str]:
    root = demo.lake / "events" / f"tenant={tenant}"
    return {p.name.split("=", 1)[1] for p in root.glob("event_date=*") if any(p.iterdir())}


def test_retention_removes_only_expired_days_and_verify_still_passes(
    run: Run, demo_copy: DemoLake
) -> None:
    cutoff = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    before = _dates(demo_copy, "contoso")
    assert run("retention", "set", "--tenant", "contoso", "--days", "1").returncode == 0
    status = {s["tenant"]: s for s in run("retention", "status", "--format", "json").json()}
    assert status["contoso"]["days"] == 1 and status["globex"]["days"] == 2557
    assert status["contoso"]["due_dates"] == sorted(d for d in before if d < cutoff)
    dry = run("retention", "apply", "--dry-run", "--format", "json").json()
    assert _dates(demo_copy, "contoso") == before  # a dry run removes nothing
    applied = run("retention", "apply", "--format", "json")
    assert applied.returncode == 0, applied
    assert applied.json() == [{**r, "removed": True} for r in dry]
    assert _dates(demo_copy, "contoso") == {d for d in before if d >= cutoff}
    verified = run("verify", "--format", "json")
    assert verified.returncode == 0, verified


def test_hold_blocks_removal_and_is_recorded(run: Run, demo_copy: DemoLake) -> None:
    before = _dates(demo_copy, "globex")
    assert run("retention", "set", "--tenant", "globex", "--days", "1").returncode == 0
    assert run("hold", "set", "--tenant", "globex", "--reason", "matter 7").returncode == 0
    result = run("retention", "apply", "--tenant", "globex", "--format", "json").json()
    assert [r["refused"] for r in result] == ["under legal hold"]
    assert _dates(demo_copy, "globex") == before
    trail = run(
        "sql",
        "SELECT action, json_extract_string(details, '$.reason') AS why FROM query_audit "
        "WHERE target_id = 'globex' ORDER BY seq",
        "--format", "json",
    ).json()  # fmt: skip
    assert [(r["action"], r["why"]) for r in trail] == [
        ("retention.set", None),
        ("hold.set", "matter 7"),
    ]
    run("hold", "clear", "--tenant", "contoso").assert_usage_error("not under legal hold")
    assert run("access", "grant", "vic", "--tenant", "globex", "--role", "auditor").returncode == 0
    run("--as", "vic", "hold", "clear", "--tenant", "globex").assert_usage_error("may not")


def test_a_tenants_admin_may_set_a_hold_but_not_lift_it(run: Run, demo_copy: DemoLake) -> None:
    assert run("access", "grant", "tam", "--tenant", "globex", "--role", "admin").returncode == 0
    held = run("--as", "tam", "hold", "set", "--tenant", "globex", "--reason", "m 9")
    assert held.returncode == 0, held

    run("--as", "tam", "hold", "clear", "--tenant", "globex").assert_usage_error(
        "may not lift a legal hold", "local operator"
    )

    status = run("retention", "status", "--format", "json").json()
    assert next(s for s in status if s["tenant"] == "globex")["hold"]["reason"] == "m 9"
    assert run("hold", "clear", "--tenant", "globex").returncode == 0  # the operator may
