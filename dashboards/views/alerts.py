"""Alerts: a triage table with filters; choosing an alert opens its evidence events, and
an evidence pack of them can be downloaded for the case file."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, data
from lake.api import Permission

PACK_KEY = "alert_pack"
TABLE_COLUMNS = [
    "severity",
    "tenant",
    "rule_id",
    "title",
    "event_count",
    "first_seen",
    "last_seen",
    "alert_id",
]

viewer = controls.page("Alerts")
readable = data.tenants(viewer, Permission.READ_ALERTS)
if not readable:
    st.info("Alerts need the investigator role (or higher) on a tenant; your grants do not.")
    st.stop()
found = data.alerts(viewer)
every = controls.by_severity(data.alerts_frame(found))

f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
with f1:
    chosen = controls.tenant_picker(readable, key="alerts_tenants")
with f2:
    present = sorted(
        set(every["severity"].to_list()), key=lambda s: controls.SEVERITY_RANK.get(s, 9)
    )
    severities = st.multiselect("Severity", present, default=present, key="alerts_severity")
with f3:
    rules = st.multiselect("Rule", sorted(set(every["rule_id"].to_list())), key="alerts_rules")
with f4:
    words = st.text_input("Title or group contains", key="alerts_text")

shown = every.filter(pl.col("tenant").is_in(list(chosen)), pl.col("severity").is_in(severities))
if rules:
    shown = shown.filter(pl.col("rule_id").is_in(rules))
if words.strip():
    needle = words.strip().lower()
    shown = shown.filter(
        pl.col("title").str.to_lowercase().str.contains(needle, literal=True)
        | pl.col("group").fill_null("").str.to_lowercase().str.contains(needle, literal=True)
    )

m1, m2, m3 = st.columns(3)
m1.metric("Alerts", f"{shown.height:,}")
m2.metric(
    "High/critical", f"{shown.filter(pl.col('severity').is_in(['high', 'critical'])).height:,}"
)
m3.metric("Evidence events", f"{int(shown['event_count'].sum() or 0):,}")
if shown.is_empty():
    st.info("No alerts match these filters.")
    st.stop()
st.dataframe(shown.select(TABLE_COLUMNS), hide_index=True, key="alerts_table")

st.subheader("Open an alert")
labels = {
    r["alert_id"]: f"{r['severity']} · {r['tenant']} · {r['title']} ({r['alert_id'][:12]})"
    for r in shown.iter_rows(named=True)
}
picked = st.selectbox(
    "Alert",
    list(labels),
    index=None,
    format_func=lambda a: labels[a],
    placeholder="Choose an alert to see its evidence events",
    key="alerts_open",
)
if picked is None:
    st.stop()
alert = next(a for a in found if a.alert_id == picked)
# Stored values go into code spans: an actor id like alice@example.com must not become a
# mailto link, nor its characters Markdown.
literal = controls.literal
st.markdown(
    f"**Alert** {literal(alert.title)} — rule {literal(alert.rule_id)}, "
    f"tenant {literal(alert.tenant)}"
)
group = literal(alert.group) if alert.group else "(nothing)"
st.caption(
    f"severity {alert.severity} · first seen {alert.first_seen} · last seen "
    f"{alert.last_seen} · grouped by {group}"
)
ids = alert.event_ids or ()
events = data.events_by_id(viewer, alert.tenant, ids)
if events.height < len(ids):
    st.warning(f"{len(ids) - events.height} of the alert's {len(ids)} evidence events are missing.")
st.dataframe(events, hide_index=True, key="alerts_events")

if viewer.may(Permission.PROVE, alert.tenant) and ids:
    if st.button("Build evidence pack of these events", key="alerts_build_pack"):
        pack = data.evidence_pack(
            viewer,
            alert.tenant,
            ids,
            f"alert {picked}: {alert.title}",
            f"alert-{picked[:12]}",
        )
        st.session_state[PACK_KEY] = (picked, pack)
    built = st.session_state.get(PACK_KEY)
    if built and built[0] == picked:
        pack = built[1]
        st.download_button(
            f"Download evidence pack ({pack.events} events, {len(pack.data):,} bytes)",
            data=pack.data,
            file_name=pack.file_name,
            mime="application/zip",
            key="alerts_download_pack",
        )
        keys = data.pack_verifier_keys(viewer, pack)
        st.caption("Anyone can check it offline, with the verifier key held outside the lake:")
        st.code(controls.verify_command(pack.file_name, keys), language="bash")
