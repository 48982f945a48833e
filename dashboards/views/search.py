"""Search: the CLI's query language and filters, paged newest first, with CSV/JSON
downloads of every match.

Pages follow the query layer's cursors, which pin the snapshot of the first page: events
appended meanwhile neither shift nor repeat rows. The query string is resolved once per
search (a relative `created:>=7d` becomes a fixed time), so "older" continues the very
search whose first page is on screen.
"""

from __future__ import annotations

import functools
from typing import Any

import polars as pl
import streamlit as st

from dashboards import controls, data
from dashboards.filters import SearchForm
from lake.api import CATEGORIES, LISTING_COLUMNS, OUTCOMES, SEVERITIES, UsageError

PAGE_SIZES = [25, 50, 100, 500]
PAGING_KEY = "search_paging"
SYNTAX = (
    "Qualifiers: tenant actor action category outcome severity ip target target_type source "
    "actor_type id created (>=, >, <=, <, A..B, 7d); -qualifier:value excludes; a trailing "
    "* matches a prefix; a,b means either; other words are free text. Example: "
    "`actor:alice action:login outcome:failure created:>=7d`"
)

viewer = controls.page("Search")
mine = data.tenants(viewer)
if not mine:
    st.info("Your principal may read no tenant's events yet (ask for `auditlake access grant`).")
    st.stop()

query = st.text_input(
    "Query",
    key="search_query",
    placeholder="actor:alice action:login outcome:failure created:>=7d",
    help=SYNTAX,
)
with st.expander("Filters (all must hold; a field may list several values, comma-separated)"):
    r1 = st.columns(4)
    tenants = r1[0].multiselect("Tenants (all when empty)", mine, key="search_tenants")
    categories = r1[1].multiselect("Category", CATEGORIES, key="search_categories")
    outcomes = r1[2].multiselect("Outcome", OUTCOMES, key="search_outcomes")
    severities = r1[3].multiselect("Severity", SEVERITIES, key="search_severities")
    r2 = st.columns(4)
    actor = r2[0].text_input("Actor (trailing * = prefix)", key="search_actor")
    action = r2[1].text_input("Action (e.g. login, key.*)", key="search_action")
    ip = r2[2].text_input("Address (trailing * = prefix)", key="search_ip")
    target = r2[3].text_input("Target", key="search_target")
    r3 = st.columns(4)
    source = r3[0].text_input("Source service", key="search_source")
    text = r3[1].text_input("Free text", key="search_text")
    since = r3[2].text_input("Since (2026-11-01, RFC 3339, 7d)", key="search_since")
    until = r3[3].text_input("Until (same forms)", key="search_until")
limit = st.selectbox("Rows per page", PAGE_SIZES, index=2, key="search_limit")

form = SearchForm(
    query=query,
    tenants=tuple(tenants),
    categories=tuple(categories),
    outcomes=tuple(outcomes),
    severities=tuple(severities),
    actor=actor,
    action=action,
    ip=ip,
    target=target,
    source=source,
    text=text,
    since=since,
    until=until,
)
paging: dict[str, Any] | None = st.session_state.get(PAGING_KEY)
if paging is None or paging["form"] != (form, limit):
    try:
        filt = form.to_filter()
    except UsageError as exc:
        st.error(str(exc))
        st.stop()
    paging = {
        "form": (form, limit),
        "query": filt.to_query_string(),
        "describe": filt.describe(),
        "cursors": [None],
    }
    st.session_state[PAGING_KEY] = paging
cursors: list[str | None] = paging["cursors"]


def newer() -> None:
    if len(cursors) > 1:
        cursors.pop()


def older(cursor: str) -> None:
    cursors.append(cursor)


page = data.search_page(viewer, paging["query"], limit, cursors[-1])
first = (len(cursors) - 1) * limit
st.caption(f"Query: `{paging['query'] or '(all events)'}` — {paging['describe']}")
if page.table.num_rows == 0:
    st.info("No events match." if len(cursors) == 1 else "No more events.")
else:
    st.caption(f"Page {len(cursors)} · events {first + 1:,}–{first + page.table.num_rows:,}")
    shown = pl.from_arrow(page.table.select(list(LISTING_COLUMNS)))
    st.dataframe(shown, hide_index=True, key="search_results")

b1, b2, _, d1, d2 = st.columns([1, 1, 2, 1, 1])
b1.button("← Newer", key="search_newer", on_click=newer, disabled=len(cursors) == 1)
b2.button(
    "Older →",
    key="search_older",
    on_click=older,
    args=(page.next_cursor,),
    disabled=page.next_cursor is None,
)


if page.table.num_rows:
    # Downloads hold every matching event, not the page on screen: built (and audited as
    # one search) only when a button is clicked.
    for column, fmt, mime in ((d1, "csv", "text/csv"), (d2, "json", "application/json")):
        column.download_button(
            fmt.upper(),
            functools.partial(data.search_export, viewer, paging["query"], fmt),
            f"auditlake-search.{fmt}",
            mime,
            key=f"search_{fmt}",
            icon=":material/download:",
            help="Every matching event, not only this page",
        )
