"""Integrity: per tenant the latest signed checkpoint and the last full verification, and a
button that runs one now, with progress, listing every finding in plain words.

The "last verification" column is what `verify` recorded in the lake: a convenience,
not a proof (whoever can write the lake could forge it). The button's run is the proof.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, data
from lake.api import Report

REPORT_KEY = "verify_report"
TABLE_COLUMNS = [
    "tenant",
    "result",
    "last verified (UTC)",
    "verified by",
    "tree size",
    "key",
    "sealed at",
    "root hash",
]
TABLE_CONFIG = {
    "tenant": st.column_config.TextColumn(width="small"),
    "result": st.column_config.TextColumn(width="medium"),
    "last verified (UTC)": st.column_config.TextColumn(width="medium"),
    "verified by": st.column_config.TextColumn(width="small"),
    "tree size": st.column_config.NumberColumn(width="small"),
    "key": st.column_config.TextColumn(width="small"),
    "sealed at": st.column_config.DatetimeColumn(width="medium", format="YYYY-MM-DD HH:mm:ss"),
    "root hash": st.column_config.TextColumn(width="small", help="SHA-256 root; hover for all"),
}

viewer = controls.page("Integrity")
checkpoints = data.latest_checkpoints(viewer)
last = data.verifications(viewer)
verifiable = data.verifiable(viewer)
if checkpoints.is_empty() and not verifiable:
    st.info(
        "Checkpoints and verification need the auditor role (or higher) on a tenant; "
        "your grants do not include it."
    )
    st.stop()


def result_text(tenant: str) -> str:
    entry = last.get(tenant)
    if entry is None:
        return "never verified"
    if entry.ok:
        return "ok"
    return f"{entry.findings} finding(s): {', '.join(entry.kinds)}"


def when(tenant: str) -> str | None:
    entry = last.get(tenant)
    return None if entry is None else f"{entry.verified_at:%Y-%m-%d %H:%M:%S}"


st.subheader("Signed checkpoints and last verification")
tenants = checkpoints["tenant"].to_list()
# The last verification comes first and the root hash last, in a narrow column (the whole
# hash shows on hover and is copied whole): the page fits the screen without scrolling.
table = checkpoints.with_columns(
    pl.Series("result", [result_text(t) for t in tenants], pl.String),
    pl.Series("last verified (UTC)", [when(t) for t in tenants], pl.String),
    pl.Series("verified by", [last[t].by if t in last else None for t in tenants], pl.String),
).rename(
    {
        "tree_size": "tree size",
        "root_hash": "root hash",
        "key_name": "key",
        "sealed_at": "sealed at",
    }
)
st.dataframe(
    table.select(TABLE_COLUMNS),
    hide_index=True,
    key="integrity_checkpoints",
    column_config=TABLE_CONFIG,
)
if any(t in last and not last[t].ok for t in tenants):
    st.error("The last verification of some tenants found problems: run it again below.")

st.subheader("Run a full verification")
st.caption(
    "Recomputes every event's hash, rebuilds the Merkle roots and checks every checkpoint "
    "signature against the trusted keys of this dashboard's config home:"
)
trusted = data.trusted_keys(viewer)
if trusted:
    st.code("\n".join(trusted), language=None)
else:
    st.warning(
        "This dashboard's config home trusts no verifier key: every checkpoint will be "
        "reported as signed by an untrusted key (`auditlake keys export` prints the lake's)."
    )
if not verifiable:
    st.info("Verification needs the auditor role (or higher) on the tenant.")
    st.stop()
chosen = st.multiselect("Tenants to verify", verifiable, default=verifiable, key="verify_tenants")
if st.button("Run verification", key="verify_run", type="primary", disabled=not chosen):
    bar = st.progress(0.0, text="Verifying…")

    def update(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done:,} of {total:,} events")

    report = data.run_verification(viewer, chosen, update)
    bar.progress(1.0, text=f"Verified {sum(t.events for t in report.tenants):,} events")
    st.session_state[REPORT_KEY] = report
    st.rerun()  # the table above shows the run just recorded

shown: Report | None = st.session_state.get(REPORT_KEY)
if shown is not None:
    for t in shown.tenants:
        if t.ok:
            st.success(
                f"{t.tenant}: intact — {t.events:,} events, {t.checkpoints} signed "
                f"checkpoint(s), keys {', '.join(t.key_names) or '(none)'}"
            )
        else:
            count = len(t.findings) + sum(t.suppressed.values())
            kinds = sorted({f.kind for f in t.findings} | set(t.suppressed))
            st.error(f"{t.tenant}: {count} finding(s) — {', '.join(kinds)}")
    findings = [f for t in shown.tenants for f in t.findings]
    if findings:
        st.markdown("**Findings**")
        columns = ["tenant", "kind", "message", "seq", "event_id", "batch_id", "file"]
        for f in findings:
            located = {k: getattr(f, k) for k in columns[3:]}
            where = ", ".join(
                f"{k} {controls.literal(v)}" for k, v in located.items() if v is not None
            )
            suffix = f" ({where})" if where else ""
            st.markdown(f"- **{f.tenant}** · `{f.kind}` — {controls.prose(f.message)}{suffix}")
        st.dataframe(
            pl.DataFrame(
                [{c: getattr(f, c) for c in columns} for f in findings],
                schema={c: (pl.Int64 if c == "seq" else pl.String) for c in columns},
            ),
            hide_index=True,
            key="integrity_findings",
        )
    for t in shown.tenants:
        for kind, more in t.suppressed.items():
            st.caption(f"{t.tenant}: {more} more `{kind}` finding(s) not listed")
