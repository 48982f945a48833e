"""The alerts view: the detections the principal may read; opening one lists its
evidence events; `e` writes the alert's evidence pack."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable
from tui_testkit import (
    DemoLake,
    app_of,
    open_alerts,
    read_manifest,
    running,
    settle,
    shown,
    status,
)

from lake.api import LakeSession
from lake.proofs import check_pack
from lake.secrets import TrustStore
from tui.components.detail import Check
from tui.components.prompt import PathPrompt

pytestmark = pytest.mark.anyio


async def test_opening_an_alert_lists_its_events(make_app: Any, reference: LakeSession) -> None:
    alerts = reference.alerts()
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        screen = await open_alerts(pilot)
        assert [a.alert_id for a in screen.alerts] == alerts["alert_id"].to_list()
        assert screen.query_one(DataTable).row_count == alerts.height
        row = alerts["rule_id"].to_list().index("auth.password_spray")
        screen.query_one(DataTable).move_cursor(row=row)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.screen_stack[0]
        alert = alerts.row(row, named=True)
        assert sorted(shown(app)) == sorted(alert["event_ids"])
        assert {e["tenant"] for e in app.results.events} == {alert["tenant"]}
        assert "auth.password_spray" in status(app)
        await pilot.press("enter")  # and its events prove like any other
        await settle(pilot)
        assert app.detail.integrity.check is Check.VERIFIED


async def test_escape_leaves_the_alerts_view(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        before = shown(app)
        await open_alerts(pilot)
        await pilot.press("a")  # pivot keys do nothing here
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.screen_stack[0]
        assert shown(app) == before


async def test_evidence_pack_of_an_alert(
    make_app: Any, reference: LakeSession, demo: DemoLake
) -> None:
    alerts = reference.alerts()
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        screen = await open_alerts(pilot)
        screen.query_one(DataTable).move_cursor(row=1)
        await pilot.press("e")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        alert = alerts.row(1, named=True)
        assert prompt.default == app.workdir / f"evidence-alert-{alert['alert_id'][:12]}.zip"
        await pilot.press("enter")
        await settle(pilot)
        data = prompt.default.read_bytes()
    lines = check_pack(data, TrustStore(demo.home).keys())
    assert len(lines) == alert["event_count"]
    manifest = read_manifest(prompt.default)
    assert sorted(manifest["event_ids"]) == sorted(alert["event_ids"])
    assert alert["alert_id"] in manifest["note"]
