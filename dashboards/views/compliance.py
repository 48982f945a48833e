"""Compliance: what is kept and for how long, who queried what, and evidence packs.

Retention and holds come from the lake's policy (`auditlake retention`, `auditlake hold`):
what each tenant keeps, what is due for removal, and which tenants are under legal hold.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, data
from lake.api import READ_AUDIT_TENANT, UsageError

PACK_KEY = "compliance_pack"

viewer = controls.page("Compliance")

st.subheader("Retention and data held")
span = data.data_span(viewer)
if span.is_empty():
    st.info("Your principal may read no tenant's events yet.")
else:
    st.dataframe(
        span.join(data.retention(viewer), on="tenant", how="left"),
        hide_index=True,
        key="compliance_retention",
    )
    st.caption(
        "Events are removed only by `auditlake retention apply`: whole expired days, never "
        "under a legal hold, each removal signed into the lake's own log first."
    )

st.subheader("Who queried what")
if data.may_read_audit(viewer):
    hide_own = st.checkbox(
        "Hide my own dashboard reads",
        value=True,
        key="compliance_audit_hide_own",
        help="Every page this dashboard renders for you is recorded too; hide those rows.",
    )
    audit = data.read_audit(viewer, hide_own=hide_own)
    who = sorted(set(audit["principal"].to_list()))
    picked = st.multiselect("Principals (all when empty)", who, key="compliance_audit_who")
    if picked:
        audit = audit.filter(pl.col("principal").is_in(picked))
    st.dataframe(audit, hide_index=True, key="compliance_audit")
    st.caption(
        "The newest 500 reads recorded by every interface (CLI, TUI, dashboard, notebooks), "
        "each a signed event of the read audit."
    )
else:
    st.info(
        f"The read audit is shown to the operator, to the auditors of a tenant (the reads "
        f"that touched it) and with a grant on tenant {READ_AUDIT_TENANT!r}; your grants "
        "include none of these."
    )

st.subheader("Evidence pack")
st.caption(
    "A zip with the chosen events, their inclusion proofs, the signed checkpoint and the "
    "verifier key; anyone can check it offline with `auditlake verify-proof`."
)
provable = data.evidence_tenants(viewer)
if not provable:
    st.info("Evidence packs need the investigator role (or higher) on a tenant.")
    st.stop()
with st.form("compliance_pack_form"):
    c1, c2, c3 = st.columns([1, 3, 1])
    tenant = c1.selectbox("Tenant", provable, key="pack_tenant")
    query = c2.text_input(
        "Events (search syntax; empty = the newest)",
        key="pack_query",
        placeholder="actor:alice created:2026-11-01..2026-11-07, or id:ID1,ID2",
    )
    most = c3.number_input(
        "At most", min_value=1, max_value=data.MAX_EVIDENCE_EVENTS, value=50, key="pack_limit"
    )
    note = st.text_input("Note for the manifest (case number)", key="pack_note")
    build = st.form_submit_button("Build evidence pack", type="primary")
if build and tenant is not None:
    try:
        ids = data.matching_ids(viewer, tenant, query, int(most))
        st.session_state[PACK_KEY] = data.evidence_pack(viewer, tenant, ids, note, "events")
    except UsageError as exc:
        st.session_state.pop(PACK_KEY, None)
        st.error(str(exc))
pack = st.session_state.get(PACK_KEY)
if pack is not None:
    st.success(f"Evidence pack ready: {pack.events} event(s), {len(pack.data):,} bytes.")
    st.download_button(
        "Download evidence pack",
        data=pack.data,
        file_name=pack.file_name,
        mime="application/zip",
        key="pack_download",
        icon=":material/download:",
    )
    keys = data.pack_verifier_keys(viewer, pack)
    st.caption("Check it with the verifier key held outside the lake (this config home's):")
    st.code(controls.verify_command(pack.file_name, keys), language="bash")
