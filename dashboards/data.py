"""Every read the dashboard makes, through the signed-in principal's own LakeSession, cached.

Why one module: the pages only lay data out; whether a number may be shown to someone is
decided here, in one place, by never asking the lake anything except through the
principal's `LakeSession` (lake/api.py), whose views hold only that principal's tenants
and which records every query in the read audit.

Caching (the issue's rules):

- `st.cache_resource`: one LakeSession (one locked DuckDB connection, a cursor per query)
  per process and principal. The key is the whole `Viewer`, grants included, so a grant
  changed with `auditlake access grant|revoke` opens a new session at the next page
  render instead of serving from the old scope.
- `st.cache_data` with a TTL: every cached query takes the `Viewer` as its first
  argument, so cached results are never shared between principals (nor lakes).
  The price: a page served from the cache within the TTL adds no read-audit record;
  the query behind it was recorded when it ran.

Sessions are shared by every browser tab of one principal and Streamlit runs each tab
in its own thread, so each session's calls (and the read-audit flush after each page)
hold that session's lock; results are materialised before the lock is released.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final, TypeVar

import orjson
import polars as pl
import pyarrow as pa
import streamlit as st

import lake.api
from lake.api import (
    ALERTS_SCHEMA,
    LISTING_COLUMNS,
    READ_AUDIT_TENANT,
    AccessPolicy,
    Alert,
    ConfigError,
    KeyStore,
    LastVerification,
    Permission,
    Principal,
    ReadRecord,
    Report,
    Role,
    SearchFilter,
    SigninStore,
    TrustStore,
    UsageError,
    config_home,
    is_valid_tenant,
    parse_note,
    parse_query,
    record_report,
    retention_status,
    verify_history,
    verify_lake,
    write_batches,
)

TTL: Final = timedelta(seconds=60)
TOP_N: Final = 10
LEGAL_HOLDS_TEXT: Final = "none"
MAX_EVIDENCE_EVENTS: Final = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class Viewer:
    """Who looks at which lake. Every cached function takes it first, so caches never mix
    principals; its grants are part of it, so a changed grant is a new cache key."""

    lake: str
    home: str
    principal: str
    grants: tuple[tuple[str, str], ...]
    operator: bool

    def who(self) -> Principal:
        """The principal with exactly the grants this viewer was made with."""
        grants = {t: Role(r) for t, r in self.grants}
        return Principal(self.principal, grants, operator=self.operator)

    def may(self, permission: Permission, tenant: str) -> bool:
        return self.who().may(permission, tenant)


# -- where and who -------------------------------------------------------------------------


def lake_path() -> str:
    """The lake the dashboard serves: $AUDITLAKE_LAKE (`auditlake dashboard` sets it)."""
    path = os.environ.get("AUDITLAKE_LAKE")
    if not path:
        raise ConfigError(
            "AUDITLAKE_LAKE is not set: start the dashboard with `auditlake dashboard`"
        )
    return path


def viewer_for(principal: str) -> Viewer:
    """A Viewer of the configured lake for `principal`, with its current grants."""
    home = config_home()
    who = AccessPolicy(home).principal(principal)
    grants = tuple(sorted((t, str(r)) for t, r in who.grants.items()))
    return Viewer(lake_path(), str(home), who.name, grants, who.operator)


def sign_in(token: str) -> Viewer | None:
    """The Viewer a sign-in token stands for, or None if the token is unknown."""
    name = SigninStore(config_home()).resolve(token)
    return viewer_for(name) if name is not None else None


# -- the shared session ----------------------------------------------------------------------


@dataclass
class Shared:
    """One principal's LakeSession and the lock its callers take."""

    session: lake.api.LakeSession
    lock: threading.Lock


def _release(shared: Shared) -> None:
    with shared.lock:
        shared.session.close()  # flushes the buffered read audit first


@st.cache_resource(show_spinner=False, max_entries=64, on_release=_release)
def shared(viewer: Viewer) -> Shared:
    """The viewer's LakeSession, one per process (read audit buffered, flushed per page)."""
    session = lake.api.open(
        viewer.lake, as_=viewer.principal, home=viewer.home, interface="dashboard", buffered=True
    )
    return Shared(session, threading.Lock())


def _run(viewer: Viewer, fn: Callable[[lake.api.LakeSession], T]) -> T:
    s = shared(viewer)
    with s.lock:
        return fn(s.session)


def flush(viewer: Viewer) -> None:
    """Commit the read-audit records of this page render (one signed append, if any)."""
    s = shared(viewer)
    with s.lock:
        s.session.audit.flush()


# -- SQL text --------------------------------------------------------------------------------


def _tenant_list(tenants: Sequence[str]) -> str:
    """`'a', 'b'` for an IN list; tenant ids are checked, so they are safe as literals."""
    for t in tenants:
        if not is_valid_tenant(t):
            raise UsageError(f"invalid tenant id {t!r}")
    return ", ".join(f"'{t}'" for t in tenants)


def day_start(day: date) -> datetime:
    """Midnight UTC starting `day`."""
    return datetime.combine(day, time(), tzinfo=UTC)


def _window(tenants: Sequence[str], start: date, end: date) -> str:
    """WHERE clause: these tenants, from `start` to `end` inclusive (UTC days)."""
    since = day_start(start).strftime("%Y-%m-%d %H:%M:%S+00")
    until = day_start(end + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S+00")
    return (
        f"tenant IN ({_tenant_list(tenants)}) AND event_date BETWEEN DATE '{start}' "
        f"AND DATE '{end}' AND time >= TIMESTAMPTZ '{since}' AND time < TIMESTAMPTZ '{until}'"
    )


def _sql(viewer: Viewer, query: str) -> pl.DataFrame:
    frame: pl.DataFrame = _run(viewer, lambda s: s.sql(query))
    return frame


# -- overview ------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def tenants(viewer: Viewer, permission: Permission = Permission.READ_EVENTS) -> list[str]:
    """Tenants (read audit aside) on which the viewer holds `permission`."""
    existing = _run(viewer, lambda s: s.lake.tenants())
    return [t for t in viewer.who().tenants(permission, existing) if t != READ_AUDIT_TENANT]


@st.cache_data(ttl=TTL, show_spinner=False)
def date_range(viewer: Viewer, chosen: tuple[str, ...]) -> tuple[date, date] | None:
    """The first and last UTC day with events of these tenants (None: no events)."""
    if not chosen:
        return None
    frame = _sql(
        viewer,
        "SELECT CAST(min(time) AS DATE) AS first, CAST(max(time) AS DATE) AS last "
        f"FROM events WHERE tenant IN ({_tenant_list(chosen)})",
    )
    first, last = frame.row(0)
    return None if first is None else (first, last)


@st.cache_data(ttl=TTL, show_spinner=False)
def daily_counts(viewer: Viewer, chosen: tuple[str, ...], start: date, end: date) -> pl.DataFrame:
    """Events per UTC day, tenant, category, outcome and severity in the window."""
    if not chosen:
        return pl.DataFrame(
            schema={
                "day": pl.Date,
                "tenant": pl.String,
                "category": pl.String,
                "outcome": pl.String,
                "severity": pl.String,
                "events": pl.Int64,
            }
        )
    return _sql(
        viewer,
        "SELECT CAST(time AS DATE) AS day, tenant, category, outcome, severity, "
        f"count(*) AS events FROM events WHERE {_window(chosen, start, end)} "
        "GROUP BY ALL ORDER BY ALL",
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def top_values(
    viewer: Viewer, chosen: tuple[str, ...], start: date, end: date, column: str
) -> pl.DataFrame:
    """The TOP_N most frequent actors (`actor_id`) or addresses (`actor_ip`) in the window."""
    if column not in ("actor_id", "actor_ip"):
        raise UsageError(f"no top list for column {column!r}")
    if not chosen:
        return pl.DataFrame(schema={column: pl.String, "events": pl.Int64, "failures": pl.Int64})
    if column == "actor_id":
        other = "count(DISTINCT actor_ip) AS addresses"
    else:
        other = "count(DISTINCT actor_id) AS actors"
    return _sql(
        viewer,
        f"SELECT {column}, count(*) AS events, "
        "count(*) FILTER (WHERE outcome = 'failure') AS failures, "
        f"{other}, string_agg(DISTINCT tenant, ', ' ORDER BY tenant) AS tenants "
        f"FROM events WHERE {_window(chosen, start, end)} AND {column} IS NOT NULL "
        f"GROUP BY 1 ORDER BY events DESC, {column} LIMIT {TOP_N}",
    )


def _search_frame(viewer: Viewer, filt: SearchFilter, limit: int | None) -> pa.Table:
    table: pa.Table = _run(viewer, lambda s: s.search(filt, limit=limit).to_arrow())
    return table


@st.cache_data(ttl=TTL, show_spinner=False)
def newest_severe(
    viewer: Viewer, chosen: tuple[str, ...], start: date, end: date, limit: int = 20
) -> pl.DataFrame:
    """The newest high- and critical-severity events in the window (a search, audited)."""
    if not chosen:
        return pl.DataFrame(schema=dict.fromkeys(LISTING_COLUMNS, pl.String))
    filt = SearchFilter(
        tenants=chosen,
        severities=("high", "critical"),
        since=day_start(start),
        until=day_start(end + timedelta(days=1)),
    )
    table = _search_frame(viewer, filt, limit)
    return _frame(table.select(list(LISTING_COLUMNS)))


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


# -- integrity -----------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def latest_checkpoints(viewer: Viewer) -> pl.DataFrame:
    """Per tenant whose checkpoints the viewer may read, its latest signed checkpoint."""
    return _sql(
        viewer,
        "SELECT tenant, tree_size, lower(hex(root_hash)) AS root_hash, key_name, sealed_at "
        "FROM checkpoints QUALIFY row_number() OVER "
        "(PARTITION BY tenant ORDER BY tree_size DESC) = 1 ORDER BY tenant",
    )


def verifications(viewer: Viewer) -> dict[str, LastVerification]:
    """Per tenant whose checkpoints the viewer may read, the latest recorded verification.

    Not cached: one small file, read at every render, so a run from the CLI or another
    tab shows at once instead of after the cache's TTL.
    """
    found = _run(viewer, lambda s: verify_history(s.lake).tenants)
    return {t: r for t, r in found.items() if viewer.may(Permission.READ_CHECKPOINTS, t)}


def trusted_keys(viewer: Viewer) -> list[str]:
    """The verifier keys this dashboard's config home trusts (what verification checks)."""
    trusted = TrustStore(Path(viewer.home)).keys()
    return [k.encode() for k in trusted]


def verifiable(viewer: Viewer) -> list[str]:
    """Tenants the viewer may verify (the read audit's included for those granted it)."""
    existing = _run(viewer, lambda s: s.lake.tenants())
    return viewer.who().tenants(Permission.VERIFY, existing)


def run_verification(
    viewer: Viewer, chosen: Sequence[str], progress: Callable[[int, int], None]
) -> Report:
    """Verify these tenants with the trusted keys and record the result (for this page).

    Not under the session lock: it reads the lake directly, for minutes on a large lake,
    and must not hold up the principal's other tabs.
    """
    who = viewer.who()
    for t in chosen:
        who.require(Permission.VERIFY, t)
    if not chosen:
        raise UsageError("choose at least one tenant to verify")
    lake_ = shared(viewer).session.lake
    report = verify_lake(
        lake_, TrustStore(Path(viewer.home)).keys(), tenants=list(chosen), progress=progress
    )
    record_report(lake_, report, by=viewer.principal)
    return report


# -- alerts --------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(viewer: Viewer) -> list[Alert]:
    """Alerts of the tenants the viewer may read alerts of, newest first."""
    return _run(viewer, lambda s: s.alert_list())


def alerts_frame(found: Sequence[Alert]) -> pl.DataFrame:
    """Alerts as a table (one row each, the `alerts` table's columns) to filter and show."""
    return _frame(pa.Table.from_pylist([a.to_row() for a in found], schema=ALERTS_SCHEMA))


@st.cache_data(ttl=TTL, show_spinner=False)
def events_by_id(viewer: Viewer, tenant: str, event_ids: tuple[str, ...]) -> pl.DataFrame:
    """The stored events of one tenant with these ids, newest first (a search, audited)."""
    if not event_ids:
        return pl.DataFrame(schema=dict.fromkeys(LISTING_COLUMNS, pl.String))
    table = _search_frame(viewer, SearchFilter(tenants=(tenant,), event_ids=event_ids), None)
    return _frame(table.select(list(LISTING_COLUMNS)))


# -- search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of search results: every column, and the cursor of the next page."""

    table: pa.Table
    next_cursor: str | None


@st.cache_data(ttl=TTL, show_spinner=False)
def search_page(viewer: Viewer, query: str, limit: int, cursor: str | None) -> Page:
    """A page of events matching `query` (the CLI syntax), newest first.

    A cursor pins the snapshot of the first page, so cached later pages stay right.
    """

    def page(s: lake.api.LakeSession) -> Page:
        result = s.search(query, limit=limit, cursor=cursor)
        table = result.to_arrow()  # consumed: next_cursor is known now
        return Page(table, result.next_cursor)

    return _run(viewer, page)


# -- compliance ----------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def data_span(viewer: Viewer) -> pl.DataFrame:
    """Per tenant: events, oldest and newest event time."""
    return _sql(
        viewer,
        "SELECT tenant, count(*) AS events, min(time) AS oldest, max(time) AS newest "
        "FROM events GROUP BY tenant ORDER BY tenant",
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def retention(viewer: Viewer) -> pl.DataFrame:
    """Per readable tenant: retention days, preset, what is due for removal, legal hold."""
    readable = tenants(viewer)
    rows = [
        {
            "tenant": s.tenant,
            "retention": f"{s.days} days" + (f" ({s.preset})" if s.preset else " (default)"),
            "due days": len(s.due_dates),
            "due events": s.due_events,
            "legal holds": (s.hold.reason if s.hold else "") or LEGAL_HOLDS_TEXT,
        }
        for s in retention_status(lake.api.Lake.open(viewer.lake), tenants=readable)
    ] if readable else []  # fmt: skip
    schema = {"tenant": pl.String, "retention": pl.String, "due days": pl.Int64,
              "due events": pl.Int64, "legal holds": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def may_read_audit(viewer: Viewer) -> bool:
    """Whether the viewer sees a read audit: all of it with a grant on its tenant, or the
    reads that touched its tenants as their auditor (the query layer scopes the rows)."""
    if viewer.may(Permission.READ_EVENTS, READ_AUDIT_TENANT):
        return True
    return any(viewer.may(Permission.VERIFY, t) for t, _ in viewer.grants)


@st.cache_data(ttl=TTL, show_spinner=False)
def read_audit(viewer: Viewer, limit: int = 500, hide_own: bool = False) -> pl.DataFrame:
    """Who queried what, newest first (the read audit; needs a grant on its tenant).

    `hide_own` leaves out the reads this dashboard made for the viewer itself (every page
    it renders is recorded), so the reads of others are not buried under one's own; the
    viewer's reads through other interfaces, and others' dashboard reads, stay listed.
    """
    hide = "dashboard" if hide_own else None
    found: list[ReadRecord] = _run(viewer, lambda s: s.read_audit(limit=limit, hide_interface=hide))
    rows = [
        (r.time, r.principal, r.interface, r.query, orjson.dumps(r.tenants).decode(), r.outcome)
        for r in found
    ]
    text = pl.String()
    schema = pl.Schema(
        {"time": pl.Datetime("us", "UTC"), "principal": text, "interface": text, "query": text,
         "tenants": text, "outcome": text}
    )  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def evidence_tenants(viewer: Viewer) -> list[str]:
    """Tenants the viewer may produce proofs (and so evidence packs) for."""
    return tenants(viewer, Permission.PROVE)


@dataclass(frozen=True)
class Pack:
    """An evidence pack built for download."""

    data: bytes
    events: int
    file_name: str


def evidence_pack(
    viewer: Viewer, tenant: str, event_ids: Sequence[str], note: str, name: str
) -> Pack:
    """Build the zip `auditlake verify-proof` checks offline (recorded in the read audit)."""
    if not event_ids:
        raise UsageError("no events to put in the evidence pack")
    if len(event_ids) > MAX_EVIDENCE_EVENTS:
        raise UsageError(f"at most {MAX_EVIDENCE_EVENTS} events per evidence pack")
    pairs = [(tenant, e) for e in event_ids]
    with tempfile.TemporaryDirectory(prefix="auditlake-pack-") as tmp:
        out = Path(tmp) / "pack.zip"
        _run(viewer, lambda s: s.evidence(pairs, out, note=note))
        data = out.read_bytes()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Pack(data, len(pairs), f"evidence-{tenant}-{name}-{stamp}.zip")


def matching_ids(viewer: Viewer, tenant: str, query: str, limit: int) -> list[str]:
    """Ids of the newest events of `tenant` matching `query` (never another tenant's)."""
    filt = parse_query(query).merge(SearchFilter(tenants=(tenant,)))
    table = _search_frame(viewer, filt, limit)
    return [str(x) for x in table.column("event_id").to_pylist()]


def pack_verifier_keys(viewer: Viewer, pack: Pack) -> list[str]:
    """The verifier keys, held by this config home, of the keys that signed `pack`'s
    checkpoints: what to give `verify-proof --key` (never the copy inside the pack)."""
    with zipfile.ZipFile(io.BytesIO(pack.data)) as z:
        notes = [z.read(n) for n in z.namelist() if n.startswith("checkpoints/")]
    signers = {sig.name for note in notes for sig in parse_note(note)[1]}
    home = Path(viewer.home)
    trusted = TrustStore(home).keys()
    held = {k.name: k.encode() for k in trusted}
    held.update({k.name: k.verifier_key for k in KeyStore(home).list()})
    return [held[name] for name in sorted(signers) if name in held]


def search_export(viewer: Viewer, query: str, fmt: str) -> bytes:
    """Every event matching `query` (not one page), as a CSV or JSON download.

    Called by the download button when it is clicked (Streamlit runs it in a thread of its
    own), so a large export is built only when asked for; it is one audited search.
    """

    def export(s: lake.api.LakeSession) -> bytes:
        result = s.search(query, limit=None)
        out = io.BytesIO()
        write_batches(iter(result), fmt, out, schema=result.schema)
        s.audit.flush()
        return out.getvalue()

    return _run(viewer, export)
