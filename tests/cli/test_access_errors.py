"""Refusals that used to look like empty answers, and refusals the read audit missed
(#17 B14, B17).

An unknown principal, a principal whose grants were revoked and a misspelt tenant got an
empty result with exit 0 from search/sql, and `hold set` took a tenant the lake does not
hold (the real tenant stayed unprotected). Refused prove/alerts/evidence were not in the
read audit. Each test runs the real command on a copy of the demo lake.
"""

from __future__ import annotations

from typing import Any

import pytest
from cli_testkit import DemoLake, Run

TENANT = "northwind"

NO_GRANT = "holds no grant"
NO_TENANT = "no tenant 'nosuch'"


def _grant(run: Run, who: str, tenant: str, role: str) -> None:
    assert run("access", "grant", who, "--tenant", tenant, "--role", role).returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("search", "outcome:failure"),
        ("sql", "SELECT count(*) FROM events"),
        ("alerts", "list"),
        ("prove", "some-id", "--tenant", TENANT),
        ("evidence", "--tenant", TENANT, "some-id", "-o", "pack.zip"),
        ("verify", "--tenant", TENANT),
    ],
    ids=lambda a: a[0],
)
def test_unknown_and_revoked_principals_are_refused(
    run: Run, demo_copy: DemoLake, args: tuple[str, ...]
) -> None:
    run("--as", "nobody", *args).assert_usage_error("'nobody'", NO_GRANT)
    _grant(run, "bob", TENANT, "auditor")
    assert run("access", "revoke", "bob").returncode == 0
    run("--as", "bob", *args).assert_usage_error("'bob'", NO_GRANT)


@pytest.mark.parametrize(
    "args",
    [
        ("search", "tenant:nosuch"),
        ("search", "--tenant", "nosuch"),
        ("alerts", "list", "--tenant", "nosuch"),
        ("prove", "some-id", "--tenant", "nosuch"),
        ("evidence", "--tenant", "nosuch", "some-id", "-o", "pack.zip"),
        ("verify", "--tenant", "nosuch"),
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_a_tenant_the_lake_does_not_hold_is_refused(
    run: Run, demo_copy: DemoLake, args: tuple[str, ...]
) -> None:
    run(*args).assert_usage_error(NO_TENANT)
    # a principal with every tenant learns the same; one without a grant learns nothing
    _grant(run, "wide", "*", "auditor")
    run("--as", "wide", *args).assert_usage_error(NO_TENANT)
    _grant(run, "narrow", "globex", "auditor")
    result = run("--as", "narrow", *args)
    result.assert_usage_error("may not")
    assert "no tenant" not in result.stderr


def test_a_principal_whose_grants_name_no_tenant_of_the_lake_is_refused(
    run: Run, demo_copy: DemoLake
) -> None:
    _grant(run, "carol", "acme", "viewer")  # the demo lake holds no acme
    run("--as", "carol", "search").assert_usage_error("'carol'", "no tenant in this lake")
    assert run("--as", "operator-not", "search").returncode == 2
    ok = run("search", "--limit", "1", "--format", "json")  # the operator: unchanged
    assert ok.returncode == 0 and len(ok.json()) == 1


@pytest.mark.parametrize("command", [("hold", "set", "--reason", "matter 9"),
                                     ("retention", "set", "--days", "30")])  # fmt: skip
def test_hold_and_retention_refuse_an_unknown_tenant_unless_allowed(
    run: Run, demo_copy: DemoLake, command: tuple[str, ...]
) -> None:
    before = run("retention", "status", "--format", "json").json()
    run(*command, "--tenant", "northwnd").assert_usage_error("no tenant 'northwnd'", "--allow-new")
    assert run("retention", "status", "--format", "json").json() == before
    allowed = run(*command, "--tenant", "newco", "--allow-new")
    assert allowed.returncode == 0, allowed
    assert run(*command, "--tenant", TENANT).returncode == 0


def _audit(run: Run, who: str) -> list[dict[str, Any]]:
    rows = run(
        "sql",
        "SELECT json_extract_string(details, '$.interface') AS kind, outcome, "
        "json_extract_string(details, '$.query') AS q FROM query_audit "
        f"WHERE actor_id = '{who}' ORDER BY seq",
        "--format", "json",
    )  # fmt: skip
    assert rows.returncode == 0, rows
    result: list[dict[str, Any]] = rows.json()
    return result


def test_refused_prove_alerts_and_evidence_are_in_the_read_audit(
    run: Run, demo_copy: DemoLake
) -> None:
    _grant(run, "vic", "globex", "viewer")  # may read events of globex, nothing more
    run("--as", "vic", "prove", "ev-1", "--tenant", TENANT).assert_usage_error("may not")
    run("--as", "vic", "alerts", "list", "--tenant", TENANT).assert_usage_error("may not")
    run("--as", "vic", "evidence", "--tenant", TENANT, "ev-2", "-o", "p.zip").assert_usage_error(
        "may not"
    )
    run("--as", "vic", "evidence", "--alert", "al-1", "-o", "p.zip").assert_usage_error("alerts")
    run("--as", "vic", "search", f"tenant:{TENANT}").assert_usage_error("may not")
    assert [(r["kind"], r["outcome"], r["q"]) for r in _audit(run, "vic")] == [
        ("cli.prove", "failure", "id:ev-1"),
        ("cli.alerts", "failure", f"tenant:{TENANT}"),
        ("cli.evidence", "failure", "id:ev-2"),
        ("cli.evidence", "failure", "alert:al-1"),
        ("cli.search", "failure", f"tenant:{TENANT}"),
    ]


def test_access_list_shows_a_principal_only_its_own_grants(run: Run, demo_copy: DemoLake) -> None:
    _grant(run, "bob", TENANT, "investigator")
    _grant(run, "carol", "globex", "auditor")
    everyone = run("access", "list", "--format", "json").json()
    assert {g["principal"] for g in everyone} == {"bob", "carol"}
    own = run("--as", "bob", "access", "list", "--format", "json")
    assert own.returncode == 0, own
    assert [(g["principal"], g["tenant"]) for g in own.json()] == [("bob", TENANT)]
    assert "own grants only" in own.stderr
    assert run("--as", "nobody", "access", "list", "--format", "json").json() == []
