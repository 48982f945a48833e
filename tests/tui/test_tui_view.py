"""What a first hour in the TUI found (#17): columns that fit the terminal with full values
in the detail pane, sorting and filtering the loaded results, the `w` pivot keeping the
cursor on its event, the timeline recounted after a resize, "did you mean" for a typo."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from tui_testkit import SIZE, app_of, load_all, running, search, settle, shown, status

from tui.app import AuditlakeApp
from tui.components.results import COLUMNS, event_key
from tui.components.timeline import bars

pytestmark = pytest.mark.anyio


def table_width(table: DataTable[Any]) -> int:
    """Cells the columns take, padding included."""
    return sum(c.get_render_width(table) for c in table.columns.values())


def widths(app: AuditlakeApp) -> dict[str, int]:
    return {str(k.value): c.width for k, c in app.results.columns.items()}


async def test_columns_follow_the_terminal_width_and_the_detail_pane_has_full_values(
    make_app: Any,
) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        wide = SIZE[0]
        assert wide - 4 <= table_width(app.results) <= wide  # fills the terminal, no more

        await pilot.resize_terminal(220, SIZE[1])
        await settle(pilot)
        at_220 = widths(app)
        assert 220 - 4 <= table_width(app.results) <= 220
        assert at_220["actor_id"] > 30  # the actor column took its share of the space

        await pilot.resize_terminal(90, SIZE[1])
        await settle(pilot)
        narrow = widths(app)
        assert narrow == {c.key: c.width for c in COLUMNS}  # every column at its narrowest
        cut = next(
            (i, e)
            for i, e in enumerate(app.results.events)
            if len(str(e["actor_id"])) > narrow["actor_id"]
        )
        app.results.move_cursor(row=cut[0])
        await settle(pilot)
        assert str(cut[1]["actor_id"]) in app.detail.text()  # whole, below the table


async def test_sorting_orders_the_loaded_rows_and_keeps_the_cursor_on_its_event(
    make_app: Any,
) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await load_all(pilot)
        await pilot.press("down", "down", "down")
        under = event_key(app.results.events[3])
        newest_first = shown(app)

        for _ in range(5):  # time, tenant, action, outcome, actor
            await pilot.press("s")
        await settle(pilot)
        actors = [str(e["actor_id"] or "").lower() for e in app.results.events]
        assert actors == sorted(actors)
        assert sorted(shown(app)) == sorted(newest_first)  # the same rows
        assert event_key(app.results.current() or {}) == under
        assert "sorted by actor ↑" in status(app)

        app.results.sort_by("actor_id")  # the same column again: the other way round
        await settle(pilot)
        actors = [str(e["actor_id"] or "").lower() for e in app.results.events]
        assert actors == sorted(actors, reverse=True)

        for _ in range(3):  # ip, target, then the search's own order
            await pilot.press("s")
        await settle(pilot)
        assert shown(app) == newest_first


async def test_a_header_click_sorts_by_its_column(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        x = sum(c.get_render_width(app.results) for c in list(app.results.columns.values())[:3])
        await pilot.click("#results", offset=(x + 2, 0))  # the header of "action"
        await settle(pilot)
        actions = [str(e["action"]) for e in app.results.events]
        assert app.results.sort_key == "action"
        assert actions == sorted(actions)


async def test_filtering_narrows_the_loaded_results_and_escape_shows_all(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await load_all(pilot)
        everything = shown(app)
        needle = "failure"

        await pilot.press("f")
        assert app.filter_box.has_focus
        await pilot.press(*needle)
        await settle(pilot)
        want = [
            e["event_id"]
            for e in app.results.loaded
            if any(needle in str(e.get(c.key) or "").lower() for c in COLUMNS[1:])
        ]
        assert 0 < len(want) < len(everything)
        assert shown(app) == want
        assert f"filter {needle!r}: {len(want):,} shown" in status(app)

        await pilot.press("enter")  # back to the table, filter kept
        assert app.results.has_focus and shown(app) == want
        await pilot.press("f", "escape")
        await settle(pilot)
        assert shown(app) == everything
        assert not app.filter_box.display


async def test_marks_survive_a_filter_and_a_sort(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("down", "space")
        marked = event_key(app.results.events[1])
        await pilot.press("s", "s")
        await settle(pilot)
        assert [event_key(e) for e in app.results.marked_events()] == [marked]
        row = next(i for i, e in enumerate(app.results.events) if event_key(e) == marked)
        assert str(app.results.get_cell_at(Coordinate(row, 0))) == "●"


async def test_the_window_pivot_keeps_the_cursor_on_its_event(make_app: Any) -> None:
    # Pages of 5 rows: the event is pages deep into its ±12 h window, found by paging.
    async with running(make_app(window=timedelta(hours=12), page_rows=5)) as pilot:
        app = app_of(pilot)
        await load_all(pilot)
        centre = app.results.events[60]
        app.results.move_cursor(row=60)
        await pilot.press("w")
        await settle(pilot)
        current = app.results.current()
        assert current is not None and event_key(current) == event_key(centre)
        assert app.detail.event is current
        assert app.results.cursor_row > 5  # newer events of the window, pages of them, above


async def test_the_timeline_is_recounted_after_a_resize(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        wide = app.timeline.timeline
        assert wide is not None and len(wide.counts) > 60

        await pilot.resize_terminal(60, SIZE[1])
        await settle(pilot)
        narrow = app.timeline.timeline
        assert narrow is not None and narrow is not wide
        assert len(narrow.counts) <= app.timeline.content_size.width
        assert narrow.total == wide.total
        width = app.timeline.content_size.width
        assert all(len(line) <= width for line in bars(narrow, width))


async def test_a_mistyped_qualifier_gets_a_suggestion(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await search(pilot, "actr:alice")
        assert "did you mean 'actor:'" in status(app)
