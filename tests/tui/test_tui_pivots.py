"""Pivots from the event under the cursor (by key and from the command palette): each
searches for exactly its events, shown as an editable query, and `b` goes back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.command import CommandPalette
from tui_testkit import (
    app_of,
    expected,
    load_all,
    running,
    settle,
    shown,
)

from lake.api import LakeSession
from lake.query import SearchFilter, parse_query
from tui.app import AuditlakeApp

pytestmark = pytest.mark.anyio


def full_event(app: AuditlakeApp) -> int:
    """The row of the first event with an actor, an IP and a target."""
    return next(
        i
        for i, e in enumerate(app.results.events)
        if e["actor_ip"] and e["target_id"] and e["actor_id"]
    )


def pivot_filter(kind: str, event: dict[str, Any], window: timedelta) -> SearchFilter:
    """What each pivot must search for, written out independently of tui.pivots."""
    tenant = event["tenant"]
    if kind == "a":
        return parse_query(f'tenant:{tenant} actor:"{event["actor_id"]}"')
    if kind == "i":
        return parse_query(f"ip:{event['actor_ip']}")
    if kind == "t":
        return parse_query(f'tenant:{tenant} target:"{event["target_id"]}"')
    return SearchFilter(
        tenants=(tenant,), since=event["time"] - window, until=event["time"] + window
    )


@pytest.mark.parametrize(
    ("key", "minutes"), [("a", 15), ("i", 15), ("t", 15), ("w", 15), ("w", 90)]
)
async def test_each_pivot_searches_for_exactly_its_events(
    make_app: Any, reference: LakeSession, key: str, minutes: int
) -> None:
    window = timedelta(minutes=minutes)
    async with running(make_app(window=window)) as pilot:
        app = app_of(pilot)
        before = shown(app)
        row = full_event(app)
        app.results.move_cursor(row=row)
        event = app.results.events[row]
        await pilot.press(key)
        await settle(pilot)
        await load_all(pilot)
        want = pivot_filter(key, event, window)
        assert parse_query(app.search_box.value) == want  # shown as an editable query
        assert shown(app) == expected(reference, want)
        assert event["event_id"] in shown(app)
        assert len(shown(app)) < len(expected(reference, ""))
        await pilot.press("b")  # back to where the pivot started
        await settle(pilot)
        assert shown(app) == before
        assert app.search_box.value == ""


async def test_pivot_on_a_missing_value_says_so(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        row = next(i for i, e in enumerate(app.results.events) if not e["target_id"])
        app.results.move_cursor(row=row)
        before = shown(app)
        await pilot.press("t")
        await settle(pilot)
        assert shown(app) == before
        assert any("no target" in n.message for n in app._notifications)


async def test_the_command_palette_runs_a_pivot(make_app: Any, reference: LakeSession) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        row = full_event(app)
        app.results.move_cursor(row=row)
        event = app.results.events[row]
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"same IP")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert shown(app) == expected(reference, f"ip:{event['actor_ip']}")[:200]
