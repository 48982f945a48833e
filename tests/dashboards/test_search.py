"""Search: the CLI's query language and filters over the principal's tenants, paged
newest first along the query layer's cursors, errors shown rather than raised."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
from dashkit import Demo, frame_with, open_page, page_text
from streamlit.testing.v1 import AppTest

NEWEST_FIRST = (["time", "tenant", "seq"], [True, True, True])


def newest_first(frame: pl.DataFrame) -> list[str]:
    return frame.sort(NEWEST_FIRST[0], descending=NEWEST_FIRST[1])["event_id"].to_list()


def shown_ids(at: AppTest) -> list[str]:
    return list(frame_with(at, "event_id")["event_id"])


def test_a_query_finds_the_principals_matching_events_only(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    events = demo.events()
    at = open_page(signed_in("alice"), "search")

    at.text_input(key="search_query").input("outcome:failure").run()

    want = events.filter((pl.col("tenant") == "contoso") & (pl.col("outcome") == "failure"))
    assert 0 < want.height < 100
    assert shown_ids(at) == newest_first(want)
    assert "globex" not in page_text(at) and "northwind" not in page_text(at)
    assert [getattr(b, "label", None) for b in at.get("download_button")] == ["CSV", "JSON"]
    assert at.button(key="search_older").disabled  # one page holds them all


def test_form_fields_add_to_the_query(demo: Demo, signed_in: Callable[[str], AppTest]) -> None:
    events = demo.events()
    at = open_page(signed_in("admin"), "search")
    actor = events.filter(pl.col("tenant") == "globex")["actor_id"][0]

    at.text_input(key="search_query").input("category:authentication").run()
    at.multiselect(key="search_tenants").set_value(["globex"]).run()
    at.text_input(key="search_actor").input(actor).run()

    want = events.filter(
        (pl.col("tenant") == "globex")
        & (pl.col("category") == "authentication")
        & (pl.col("actor_id") == actor)
    )
    assert shown_ids(at) == newest_first(want)
    captions = [c.value for c in at.caption]
    assert any(f"tenant:globex actor:{actor} category:authentication" in c for c in captions)


def test_pages_follow_the_cursor(demo: Demo, signed_in: Callable[[str], AppTest]) -> None:
    every = newest_first(demo.events())
    at = open_page(signed_in("admin"), "search")

    at.selectbox(key="search_limit").set_value(25).run()
    assert shown_ids(at) == every[:25]
    assert at.button(key="search_newer").disabled

    at.button(key="search_older").click().run()
    assert shown_ids(at) == every[25:50]
    assert any("Page 2 · events 26–50" in c.value for c in at.caption)

    at.button(key="search_older").click().run()
    assert shown_ids(at) == every[50:75]

    at.button(key="search_newer").click().run()
    assert shown_ids(at) == every[25:50]

    at.text_input(key="search_query").input("tenant:globex").run()  # a new search: page 1
    assert shown_ids(at) == newest_first(demo.events().filter(pl.col("tenant") == "globex"))[:25]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("severity:bogus", "bogus"),
        ("created:>=yesterday", "yesterday"),
        ("tenant:globex", "may not read the events of tenant 'globex'"),
    ],
)
def test_errors_are_shown_not_raised(
    signed_in: Callable[[str], AppTest], query: str, message: str
) -> None:
    at = open_page(signed_in("alice"), "search")

    at.text_input(key="search_query").input(query).run()

    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.dataframe
