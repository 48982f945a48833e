"""Controls several pages share: who is signed in, the tenant and time-window pickers.

Kept apart from `data` (which must stay free of layout) and from the pages (scripts that
Streamlit runs, not modules to import), so every page asks for tenants and days the
same way and offers only the signed-in principal's tenants.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

import polars as pl
import streamlit as st

from dashboards import data
from dashboards.data import Viewer

VIEWER_KEY: Final = "viewer"
SEVERITY_RANK: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def page(title: str) -> Viewer:
    """Start a page: its header, naming the product, and the signed-in viewer.

    A viewer without any grant stops here with a note: the lake refuses it every query
    (lake.api.check_reach), and an empty page would look like an empty lake."""
    st.title(f"auditlake · {title}")
    found = viewer()
    if not found.operator and not found.grants:
        st.info("Your principal holds no grant (ask for `auditlake access grant`).")
        st.stop()
    return found


def viewer() -> Viewer:
    """The signed-in viewer (app.py puts it in the session before running a page)."""
    found = st.session_state.get(VIEWER_KEY)
    if not isinstance(found, Viewer):
        st.warning("Sign in first.")
        st.stop()
    assert isinstance(found, Viewer)
    return found


def tenant_picker(options: list[str], *, key: str, label: str = "Tenants") -> tuple[str, ...]:
    """A multiselect of the viewer's tenants, all chosen at first."""
    chosen = st.multiselect(label, options, default=options, key=key)
    return tuple(sorted(chosen))


def window_picker(v: Viewer, chosen: tuple[str, ...], *, key: str) -> tuple[date, date] | None:
    """A UTC day range, at first the whole span of the chosen tenants' events.

    None (with a note shown) when there is nothing to pick from yet, or while a range is
    half chosen in the browser.
    """
    if not chosen:
        st.info("Choose at least one tenant.")
        return None
    span = data.date_range(v, chosen)
    if span is None:
        st.info("No events for these tenants yet.")
        return None
    picked = st.date_input("Days (UTC)", value=span, key=key, format="YYYY-MM-DD")
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Choose the last day of the range.")
        return None
    start, end = picked
    return start, end


def literal(value: object) -> str:
    """`value` as a Markdown code span: shown exactly as stored, never as a link.

    Markdown turns a bare `alice@example.com` into a mailto link (GFM autolinks, which no
    escaping prevents reliably) and interprets `*`, `_` or `[x](y)` in stored values; a
    code span does neither. The fence is longer than any run of backticks in the value.
    """
    text = str(value).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def prose(value: object) -> str:
    """Text for Markdown with every Markdown character escaped (a finding's message):
    read as written, with no emphasis, link or HTML made from its characters."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", str(value).replace("\n", " "))


def verify_command(file_name: str, keys: list[str]) -> str:
    """The command that checks a pack, with the signing key(s) this config home holds."""
    given = " ".join(f"--key '{k}'" for k in keys) if keys else "--key 'NAME+HASH+KEY'"
    return f"auditlake verify-proof {file_name} {given}"


def rate(part: int, whole: int) -> str:
    """A percentage for people: `12.5%`, or `–` when there is nothing to divide."""
    return f"{100 * part / whole:.1f}%" if whole else "–"


def by_severity(frame: pl.DataFrame) -> pl.DataFrame:
    """Worst severity first (then as the frame was)."""
    if frame.is_empty() or "severity" not in frame.columns:
        return frame
    rank = pl.col("severity").replace_strict(SEVERITY_RANK, default=9, return_dtype=pl.Int64)
    return frame.with_row_index("_order").sort(rank, "_order").drop("_order")
