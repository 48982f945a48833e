"""Searching in the TUI: the table shows exactly the lake's answer to the query.

What the table shows is compared with `LakeSession.search` of the same query (every
page), so "the TUI filters correctly" means "the TUI shows the lake's answer", not "the
TUI agrees with a copy of its own logic". Also paging, errors, and the timeline.
"""

from __future__ import annotations

from typing import Any

import pytest
from tui_testkit import (
    app_of,
    expected,
    load_all,
    running,
    search,
    settle,
    shown,
    status,
)

from lake.api import LakeSession

pytestmark = pytest.mark.anyio


async def test_opens_on_the_newest_events_of_every_tenant(
    make_app: Any, reference: LakeSession
) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        everything = expected(reference, "")
        assert shown(app) == everything[:200]
        assert {e["tenant"] for e in app.results.events} == {"contoso", "globex", "northwind"}
        assert app.results.has_focus
        assert app.total == len(everything)
        assert f"200 of {len(everything)} event(s)" in status(app)


async def test_tenant_option_opens_on_that_tenant(make_app: Any, reference: LakeSession) -> None:
    async with running(make_app(tenants=["globex"])) as pilot:
        app = app_of(pilot)
        assert app.search_box.value == "tenant:globex"
        assert shown(app) == expected(reference, "tenant:globex")[:200]


@pytest.mark.parametrize(
    "query",
    [
        "outcome:failure",
        "actor:yusuf.haddad@northwind.example action:login",
        "category:key_change,flag_change -actor:carol.martin@contoso.example",
        "203.0.113 created:2026-11-27 tenant:contoso,globex",
        'category:account_recovery "helpdesk"',
    ],
)
async def test_filtering_narrows_the_table_to_exactly_the_lakes_answer(
    make_app: Any, reference: LakeSession, query: str
) -> None:
    want = expected(reference, query)
    assert 0 < len(want) < len(expected(reference, ""))
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await search(pilot, query, type_it=query == "outcome:failure")
        await load_all(pilot)
        assert shown(app) == want
        assert app.total == len(want)
        assert app.results.has_focus  # Enter applied the query and left the box


async def test_results_load_page_by_page_without_gaps(
    make_app: Any, reference: LakeSession
) -> None:
    everything = expected(reference, "")
    async with running(make_app(page_rows=50)) as pilot:
        app = app_of(pilot)
        assert shown(app) == everything[:50]
        assert "n or scroll for more" in status(app)
        await pilot.press("n")
        await settle(pilot)
        assert shown(app) == everything[:100]
        # Moving to the last loaded row asks for the next page, as scrolling does.
        for _ in range(20):
            if app.next_cursor is None:
                break
            await pilot.press("ctrl+end")
            await settle(pilot)
        assert shown(app) == everything
        assert "more" not in status(app)


async def test_scrolling_to_the_end_loads_more(make_app: Any, reference: LakeSession) -> None:
    everything = expected(reference, "")
    async with running(make_app(page_rows=50)) as pilot:
        app = app_of(pilot)
        app.results.scroll_end(animate=False)
        await settle(pilot)
        assert shown(app) == everything[:100]


async def test_a_search_without_matches_says_so(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await search(pilot, "actor:nobody@nowhere.example")
        assert shown(app) == []
        assert app.error is None
        assert "0 of 0 event(s)" in status(app)
        assert app.detail.event is None
        assert "No event selected" in app.detail.text()


async def test_a_bad_query_shows_the_error_and_keeps_the_results(
    make_app: Any, reference: LakeSession
) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        before = shown(app)
        await search(pilot, "outcome:maybe")
        assert "invalid outcome 'maybe'" in status(app)
        assert app.search_box.has_focus  # still there to fix it
        assert shown(app) == before
        await search(pilot, 'actor:"unterminated')
        assert "unterminated quote" in status(app)
        await pilot.press("escape")  # leaves the box, dropping the unapplied text
        assert app.results.has_focus
        assert app.search_box.value == ""
        assert "✗" not in status(app)
        await pilot.press("n")  # the results of the last good search still page
        await settle(pilot)
        assert shown(app) == expected(reference, "")[:400]
        await search(pilot, "outcome:failure")
        assert app.error is None
        assert shown(app) == expected(reference, "outcome:failure")[:200]


async def test_q_quits_but_types_in_the_search_box(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("slash", "q")
        assert app.search_box.value == "q"
        assert app.is_running
        await pilot.press("escape", "q")
        await pilot.pause()
        assert not app.is_running


async def test_timeline_counts_the_whole_result_and_its_failures(
    make_app: Any, reference: LakeSession
) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        timeline = app.timeline.timeline
        assert timeline is not None
        failures = reference.sql("SELECT count(*) AS n FROM events WHERE outcome = 'failure'")
        assert timeline.total == len(expected(reference, ""))
        assert timeline.failed == failures["n"][0] > 0
        assert len(timeline.counts) <= app.timeline.content_size.width
        await search(pilot, "actor:yusuf.haddad@northwind.example")
        timeline = app.timeline.timeline
        assert timeline is not None
        assert timeline.total == len(expected(reference, "actor:yusuf.haddad@northwind.example"))
        await pilot.press("l")
        assert not app.timeline.display
