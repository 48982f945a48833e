"""Overview: the numbers are the lake's, for the principal's tenants only, and follow the
tenant and day filters."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from dashkit import Demo, frame_with, metrics, number, open_page, page_text
from streamlit.testing.v1 import AppTest

SEVERE = ["high", "critical"]


def expected_metrics(events: pl.DataFrame) -> dict[str, str]:
    failures = events.filter(pl.col("outcome") == "failure").height
    return {
        "Events": f"{events.height:,}",
        "Failures": f"{failures:,}",
        "Failure rate": f"{100 * failures / events.height:.1f}%",
        "High/critical events": f"{events.filter(pl.col('severity').is_in(SEVERE)).height:,}",
    }


def test_a_principal_sees_only_its_tenants_numbers(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    events = demo.events()
    # The operator renders first: a cache shared between principals would leak here.
    admin = signed_in("admin")
    assert metrics(admin) == expected_metrics(events)
    assert set(frame_with(admin, "failure rate %").columns) >= {"category"}

    at = signed_in("alice")  # auditor on contoso only

    mine = events.filter(pl.col("tenant") == "contoso")
    assert metrics(at) == expected_metrics(mine)
    assert at.multiselect(key="overview_tenants").options == ["contoso"]
    by_tenant = [f for f in at.dataframe if "tenant" in f.value.columns and "failures" in f.value]
    assert [list(f.value["tenant"]) for f in by_tenant] == [["contoso"]]
    text = page_text(at)
    assert "contoso" in text
    for other in ("globex", "northwind"):
        assert other not in text, other
    assert number(metrics(at)["Events"]) < number(metrics(admin)["Events"])


def test_filters_change_the_numbers(demo: Demo, signed_in: Callable[[str], AppTest]) -> None:
    events = demo.events()
    first_day = demo.days()[0]
    at = signed_in("admin")

    at.multiselect(key="overview_tenants").set_value(["globex"]).run()
    globex = events.filter(pl.col("tenant") == "globex")
    assert metrics(at) == expected_metrics(globex)

    at.date_input(key="overview_window").set_value((first_day, first_day)).run()
    assert not at.exception
    one_day = globex.filter(pl.col("time").dt.date() == first_day)
    assert 0 < one_day.height < globex.height
    assert metrics(at) == expected_metrics(one_day)

    by_category = frame_with(at, "category")
    want = (
        one_day.group_by("category")
        .agg(pl.len().alias("events"), (pl.col("outcome") == "failure").sum().alias("failures"))
        .sort(["events", "category"], descending=[True, False])
    )
    assert list(by_category["category"]) == want["category"].to_list()
    assert list(by_category["events"]) == want["events"].to_list()
    assert list(by_category["failures"]) == want["failures"].to_list()

    actors = frame_with(at, "actor_id")
    top = (
        one_day.group_by("actor_id")
        .agg(pl.len().alias("events"))
        .sort(["events", "actor_id"], descending=[True, False])
        .head(10)
    )
    assert list(actors["actor_id"]) == top["actor_id"].to_list()
    assert list(actors["events"]) == top["events"].to_list()

    addresses = frame_with(at, "actor_ip")
    busiest = one_day.group_by("actor_ip").agg(pl.len().alias("n")).sort("n", descending=True)
    assert addresses["events"].iloc[0] == busiest["n"][0]

    severe = one_day.filter(pl.col("severity").is_in(SEVERE)).sort("time", descending=True)
    if severe.height:
        newest = frame_with(at, "event_id")
        assert list(newest["event_id"]) == severe["event_id"].head(20).to_list()
    else:
        assert any("No high- or critical-severity" in i.value for i in at.info)


def test_no_tenant_chosen_shows_a_hint_not_an_error(signed_in: Callable[[str], AppTest]) -> None:
    at = signed_in("admin")

    at.multiselect(key="overview_tenants").set_value([]).run()

    assert not at.exception and not at.metric
    assert [i.value for i in at.info] == ["Choose at least one tenant."]


def test_the_overview_page_renders_again_after_switching(
    signed_in: Callable[[str], AppTest],
) -> None:
    at = open_page(open_page(signed_in("bob"), "search"), "overview")

    assert [t.value for t in at.title] == ["auditlake · Overview"]
    assert at.multiselect(key="overview_tenants").options == ["globex"]
    assert "Signed in as **bob**" in [m.value for m in at.sidebar.markdown]
