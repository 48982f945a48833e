"""The auditor dashboard's entry point: sign-in, then navigation between its five pages.

Streamlit runs this file on every interaction (`auditlake dashboard` serves it). Nobody
sees a page before signing in with a token from `auditlake access token PRINCIPAL`, and
the token is resolved again on every run, so revoking it, or changing the principal's
grants, takes effect at the next click rather than at the next sign-in. After each page
the read-audit records its queries made are committed (one signed append).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import streamlit as st

from dashboards import controls, data
from lake.api import LakeError

# Not "pages/": Streamlit treats a `pages/` folder beside the main script as a legacy
# multipage app and may run a page script straight from its URL, without this file
# (and so without sign-in) ever running.
PAGES: Final = Path(__file__).resolve().parent / "views"
TOKEN_KEY: Final = "signin_token"


def sign_in_page() -> None:
    """The only page before sign-in: a token box."""
    st.title("auditlake")
    st.write("Sign in with the token your operator gave you (`auditlake access token NAME`).")
    with st.form("signin"):
        token = st.text_input("Sign-in token", type="password", key="token_input")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    v = data.sign_in(token) if token.strip() else None
    if v is None:
        st.error("That sign-in token is not known here.")
        return
    st.session_state[TOKEN_KEY] = token.strip()
    st.rerun()


def sign_out() -> None:
    # Everything goes: results a page kept (a verification report, an evidence pack)
    # belong to the principal who made them, not to whoever signs in next.
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_viewer() -> data.Viewer | None:
    """The viewer of this browser session's token, checked anew (None: not signed in)."""
    token = st.session_state.get(TOKEN_KEY)
    if not token:
        return None
    v = data.sign_in(str(token))
    if v is None:
        sign_out()
        st.warning("Your sign-in token is no longer valid; sign in again.")
    return v


def sidebar(v: data.Viewer) -> None:
    with st.sidebar:
        st.markdown(f"Signed in as **{v.principal}**")
        if v.operator:
            st.caption("local operator: every tenant, every role")
        else:
            roles = ", ".join(f"{role} on {tenant}" for tenant, role in v.grants) or "no grants"
            st.caption(roles)
        st.caption(f"lake: {v.lake}")
        st.button("Sign out", key="sign_out", on_click=sign_out)


def flush(v: data.Viewer) -> None:
    try:
        data.flush(v)
    except LakeError as exc:
        st.error(f"The read audit could not record this page's queries: {exc}")


def main() -> None:
    st.set_page_config(page_title="auditlake", page_icon=":material/verified_user:", layout="wide")
    try:
        v = current_viewer()
    except LakeError as exc:  # a broken config home or lake: say so, never a traceback
        st.title("auditlake")
        st.error(str(exc))
        return
    if v is None:
        page = st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:")])
        try:
            page.run()
        except LakeError as exc:
            st.error(str(exc))
        return
    st.session_state[controls.VIEWER_KEY] = v
    sidebar(v)
    page = st.navigation(
        [
            st.Page(PAGES / "overview.py", title="Overview", icon=":material/monitoring:"),
            st.Page(PAGES / "integrity.py", title="Integrity", icon=":material/verified:"),
            st.Page(PAGES / "alerts.py", title="Alerts", icon=":material/notifications:"),
            st.Page(PAGES / "search.py", title="Search", icon=":material/search:"),
            st.Page(PAGES / "compliance.py", title="Compliance", icon=":material/gavel:"),
        ]
    )
    try:
        page.run()
    except LakeError as exc:
        st.error(str(exc))
    finally:
        flush(v)


main()
