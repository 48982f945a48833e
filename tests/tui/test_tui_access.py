"""Principals: a viewer sees only its tenant and cannot prove; every read the TUI makes is
in the read audit under the principal's name. Also the help screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_testkit import (
    DemoLake,
    app_of,
    expected,
    open_alerts,
    running,
    search,
    settle,
    shown,
)

import lake.api
from lake.secrets import AccessPolicy
from tui.app import AuditlakeApp
from tui.components.detail import Check
from tui.components.help import HelpScreen

pytestmark = pytest.mark.anyio


async def test_a_viewer_sees_only_its_tenant(demo: DemoLake, workdir: Path) -> None:
    AccessPolicy(demo.home).grant("bob", "contoso", "viewer")
    with demo.open("bob") as bob, lake.api.open(demo.lake, as_="bob", home=demo.home) as ref:
        async with running(AuditlakeApp(bob, workdir=workdir)) as pilot:
            app = app_of(pilot)
            assert "as bob" in app.sub_title
            assert shown(app) == expected(ref, "")[:200]
            assert {e["tenant"] for e in app.results.events} == {"contoso"}
            row = next(i for i, e in enumerate(app.results.events) if e["actor_ip"])
            app.results.move_cursor(row=row)
            await pilot.press("i")  # the IP pivot spans "all your tenants": only contoso
            await settle(pilot)
            assert {e["tenant"] for e in app.results.events} == {"contoso"}
            await pilot.press("enter")  # a viewer may read events, not prove them
            await settle(pilot)
            assert app.detail.integrity.check is Check.UNAVAILABLE
            assert "– not checked" in app.detail.text()
            await search(pilot, "tenant:globex")
            assert app.error is not None and "globex" in app.error
            assert shown(app) == []
            screen = await open_alerts(pilot)
            assert screen.alerts == []


async def test_every_read_is_in_the_read_audit_as_the_principal(
    demo: DemoLake, workdir: Path
) -> None:
    AccessPolicy(demo.home).grant("carol", "*", "investigator")
    with demo.open("carol") as carol:
        async with running(AuditlakeApp(carol, workdir=workdir)) as pilot:
            await search(pilot, "outcome:failure")
            await pilot.press("enter")
            await settle(pilot)
    with lake.api.open(demo.lake, home=demo.home) as admin:
        audit = admin.sql(
            "SELECT actor_id, json_extract_string(details, '$.interface') AS interface, "
            "json_extract_string(details, '$.query') AS query FROM query_audit"
        )
    mine = audit.filter(audit["actor_id"] == "carol")
    assert {"tui.search", "tui.timeline", "tui.prove"} <= set(mine["interface"].to_list())
    assert "outcome:failure" in mine["query"].to_list()


async def test_the_read_audit_is_flushed_while_the_app_runs(demo: DemoLake, workdir: Path) -> None:
    with demo.open() as session:
        async with running(AuditlakeApp(session, workdir=workdir)) as pilot:
            app = app_of(pilot)
            assert session.audit._pending  # buffered: the opening search is not written yet
            app.flush_audit()  # what the app's 5-second timer runs
            await settle(pilot)
            assert not session.audit._pending
            with lake.api.open(demo.lake, home=demo.home) as admin:
                written = admin.sql(
                    "SELECT count(*) AS n FROM query_audit "
                    "WHERE json_extract_string(details, '$.interface') = 'tui.search'"
                )
            assert written["n"][0] >= 1


async def test_help_screen_opens_and_closes(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]
