"""Overview: how much happened, what failed, who and from where, the worst newest events.

One grouped query (events per day, tenant, category, outcome, severity) feeds the
metrics, the charts and the failure-rate tables, so they always agree with each other.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, data

SEVERE = ("high", "critical")
OUTCOME_COLOURS = {"failure": "#d62728", "success": "#2ca02c", "unknown": "#7f7f7f"}

viewer = controls.page("Overview")
mine = data.tenants(viewer)
if not mine:
    st.info("Your principal may read no tenant's events yet (ask for `auditlake access grant`).")
    st.stop()

left, right = st.columns([3, 2])
with left:
    chosen = controls.tenant_picker(mine, key="overview_tenants")
with right:
    window = controls.window_picker(viewer, chosen, key="overview_window")
if window is None:
    st.stop()
start, end = window

counts = data.daily_counts(viewer, chosen, start, end)
failed = pl.col("outcome") == "failure"
total = int(counts["events"].sum())
failures = int(counts.filter(failed)["events"].sum())
severe = int(counts.filter(pl.col("severity").is_in(SEVERE))["events"].sum())

m1, m2, m3, m4 = st.columns(4)
m1.metric("Events", f"{total:,}")
m2.metric("Failures", f"{failures:,}")
m3.metric("Failure rate", controls.rate(failures, total))
m4.metric("High/critical events", f"{severe:,}")
if total == 0:
    st.info("No events in this window.")
    st.stop()


def summary(by: str) -> pl.DataFrame:
    """Events, failures and failure rate per value of `by`, most events first."""
    grouped = counts.group_by(by).agg(
        pl.col("events").sum(),
        pl.col("events").filter(failed).sum().alias("failures"),
    )
    return grouped.with_columns(
        (100 * pl.col("failures") / pl.col("events")).round(1).alias("failure rate %")
    ).sort(["events", by], descending=[True, False])


st.subheader("Events per day by category")
# Days as text: a date axis would be drawn hour by hour, with bars an hour wide.
by_day = counts.with_columns(pl.col("day").cast(pl.String))
per_category = by_day.group_by("day", "category").agg(pl.col("events").sum()).sort("day")
st.bar_chart(per_category, x="day", y="events", color="category")

st.subheader("Events per day by outcome")
per_outcome = by_day.pivot("outcome", index="day", values="events", aggregate_function="sum")
shown = [o for o in OUTCOME_COLOURS if o in per_outcome.columns]
st.bar_chart(
    per_outcome.sort("day").fill_null(0),
    x="day",
    y=shown,
    color=[OUTCOME_COLOURS[o] for o in shown],
    x_label="day",
    y_label="events",
)

st.subheader("Failure rates")
c1, c2 = st.columns(2)
with c1:
    st.caption("By category")
    st.dataframe(summary("category"), hide_index=True, key="overview_by_category")
with c2:
    st.caption("By tenant")
    st.dataframe(summary("tenant"), hide_index=True, key="overview_by_tenant")

st.subheader("Top actors and addresses")
tops = (
    ("Actors", "actor_id", "overview_top_actors"),
    ("Addresses", "actor_ip", "overview_top_addresses"),
)
for place, (label, column, key) in zip(st.columns(2), tops, strict=True):
    with place:
        st.caption(label)
        top = data.top_values(viewer, chosen, start, end, column)
        st.dataframe(top, hide_index=True, key=key)

st.subheader("Newest high-severity events")
newest = data.newest_severe(viewer, chosen, start, end)
if newest.is_empty():
    st.info("No high- or critical-severity events in this window.")
else:
    st.dataframe(newest, hide_index=True, key="overview_severe")
