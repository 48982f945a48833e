"""The lake for Python users (notebooks, scripts, the TUI and the dashboard).

Users write `import auditlake` (which re-exports the public names below, and makes sure
`lake` is this package even beside a folder of that name); the TUI and the dashboard
import `lake` only through this module.

    import auditlake
    s = auditlake.open("demo-lake", as_="alice")   # or AUDITLAKE_PRINCIPAL, default admin
    s.search("actor:bob outcome:failure created:>=7d").to_polars()
    s.events(tenant="acme").filter(pl.col("action") == "login").collect()   # LazyFrame
    s.sql("SELECT category, count(*) FROM events GROUP BY 1")              # DataFrame
    s.events(version=12) / s.sql(..., as_of=datetime(...))                # time travel
    s.alerts(); s.verify(); s.prove(event_id, tenant="acme"); s.evidence([...], "case.zip")

Every read goes through the principal's `QuerySession` (only its tenants, locked DuckDB)
and is recorded in the read audit like any CLI query; nothing here bypasses either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from lake.contract import (
    ALERTS_SCHEMA,
    CATEGORIES,
    EVENTS_SCHEMA,
    OUTCOMES,
    READ_AUDIT_TENANT,
    SEVERITIES,
    Alert,
    ConfigError,
    LakeError,
    ProofError,
    UsageError,
    is_valid_tenant,
)
from lake.log import parse_note
from lake.query import (
    DEFAULT_LIMIT,
    FORMATS,
    LISTING_COLUMNS,
    QuerySession,
    ReadAudit,
    ReadRecord,
    SearchFilter,
    SearchResult,
    parse_query,
    parse_time,
    read_records_sql,
    sql_literal,
    write_batches,
)
from lake.secrets import (
    FIELDS,
    LOCAL_OPERATOR,
    AccessDenied,
    AccessPolicy,
    KeyStore,
    Permission,
    Principal,
    Role,
    SigninStore,
    TrustStore,
    check_reach,
    config_home,
    encrypted,
    keyring_for,
    logged_tenants,
)
from lake.spec import utc_text
from lake.storage import Lake, check_tenant
from lake.verify import (
    Finding,
    FindingKind,
    LastVerification,
    Report,
    TenantReport,
    record_report,
    verify_history,
    verify_lake,
)
from lake.write import status as retention_status

# The TUI, the dashboard and the notebooks import `lake` only through this module (an
# import-linter contract): the session, and the types, constants and helpers they need.
__all__ = [
    "ALERTS_SCHEMA",
    "CATEGORIES",
    "DEFAULT_LIMIT",
    "EVENTS_SCHEMA",
    "FORMATS",
    "LISTING_COLUMNS",
    "OUTCOMES",
    "READ_AUDIT_TENANT",
    "SEVERITIES",
    "AccessDenied",
    "AccessPolicy",
    "Alert",
    "ConfigError",
    "Finding",
    "FindingKind",
    "KeyStore",
    "Lake",
    "LakeError",
    "LakeSession",
    "LastVerification",
    "Permission",
    "Principal",
    "ProofError",
    "ReadRecord",
    "Report",
    "Role",
    "SearchFilter",
    "SearchResult",
    "SigninStore",
    "TenantReport",
    "TrustStore",
    "UsageError",
    "config_home",
    "events",
    "is_valid_tenant",
    "open",
    "parse_note",
    "parse_query",
    "parse_time",
    "prove",
    "record_report",
    "retention_status",
    "search",
    "sql_literal",
    "utc_text",
    "verify",
    "verify_history",
    "verify_lake",
    "write_batches",
]


class LakeSession:
    """One principal's view of one lake; see the module docstring."""

    def __init__(
        self,
        lake: Lake,
        principal: Principal,
        home: Path,
        *,
        interface: str = "notebook",
        buffered: bool = False,
    ) -> None:
        self.lake = lake
        self.principal = principal
        self.home = home
        self.interface = interface
        self.audit = ReadAudit(
            lake,
            KeyStore(home).active(),
            source=f"auditlake-{interface}",
            buffered=buffered,
            home=home,
        )
        self.query = QuerySession(lake, principal, self.audit, interface=interface)

    # -- reading ------------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Tenants whose events this principal may read."""
        return self.query.tenants()

    def search(
        self,
        query: str | SearchFilter = "",
        *,
        limit: int | None = DEFAULT_LIMIT,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> SearchResult:
        """Events matching a query string (the CLI/TUI syntax), newest first."""
        filt = parse_query(query) if isinstance(query, str) else query
        return self.query.search(filt, limit=limit, cursor=cursor, columns=columns)

    def _version_of(self, version: int | None, as_of: datetime | None) -> int | None:
        if version is not None and as_of is not None:
            raise UsageError("give version= or as_of=, not both")
        if as_of is None:
            return version
        if as_of.tzinfo is None:
            raise UsageError("as_of needs a time zone (e.g. datetime(..., tzinfo=UTC))")
        table = self.lake.events_table()
        table.load_as_version(as_of)
        return int(table.version())

    def _session(self, version: int | None) -> QuerySession:
        if version is None:
            return self.query
        return QuerySession(
            self.lake, self.principal, self.audit, interface=self.interface, version=version
        )

    def sql(self, query: str, *, version: int | None = None, as_of: datetime | None = None) -> Any:
        """A read-only SQL query over the principal's views, as a Polars DataFrame."""
        session = self._session(self._version_of(version, as_of))
        return session.sql(query).to_polars()

    def events(
        self,
        *,
        tenant: str | Sequence[str] | None = None,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Any:
        """The principal's events (optionally of some tenants, at a past version) as a
        Polars LazyFrame over exactly the files it may read."""
        import polars as pl

        session = self._session(self._version_of(version, as_of))
        table = session.latest()
        wanted = [tenant] if isinstance(tenant, str) else list(tenant or ())
        asked = " ".join(f"tenant:{t}" for t in wanted) or "(all)"
        try:
            tenants = session.scope(wanted, Permission.READ_EVENTS, table)
        except AccessDenied as exc:
            session.record("events", asked, wanted, "failure", str(exc))
            raise
        session.record(
            "events",
            asked,
            tenants,
            "success",
            None,
            {"version": table.version()},
        )
        files = list(
            session.local_files([session._path(f) for f in session._files(table, tenants)])
        )
        if not files:
            empty = pl.from_arrow(EVENTS_SCHEMA.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy()
        frame = pl.scan_parquet(
            files,
            hive_partitioning=True,
            hive_schema={"tenant": pl.String, "event_date": pl.Date},
        )
        frame = frame.select(EVENTS_SCHEMA.names)
        if encrypted(self.lake):
            ring = keyring_for(self.lake, self.home)
            mine = set(tenants)

            def opener(field: str) -> Any:
                def run(s: Any) -> Any:
                    t, i, v = (s.struct.field(n).to_list() for n in ("tenant", "event_id", field))
                    t = [x if x in mine else None for x in t]
                    return pl.Series(field, ring.decrypt_array(t, i, field, v), dtype=pl.String)

                return run

            frame = frame.with_columns(
                pl.struct("tenant", "event_id", f)
                .map_batches(opener(f), return_dtype=pl.String)
                .alias(f)
                for f in FIELDS
            )
        return frame

    def alerts(self, *, tenant: str | None = None) -> Any:
        """Alerts of the tenants the principal may read alerts of, newest first."""
        where = ""
        if tenant is not None:
            check_tenant(tenant)  # [a-z0-9_-] only: safe inside the literal below
            self._reach("alerts", f"tenant:{tenant}", Permission.READ_ALERTS, [tenant])
            where = f"WHERE tenant = '{tenant}'"
        return self.sql(f"SELECT * FROM alerts {where} ORDER BY last_seen DESC, alert_id")

    def alert_list(self, *, tenant: str | None = None) -> list[Alert]:
        """`alerts()` as `Alert` values (the TUI's and dashboard's form), newest first."""
        return [Alert.from_row(row) for row in self.alerts(tenant=tenant).iter_rows(named=True)]

    def read_audit(
        self, *, limit: int = 500, hide_interface: str | None = None
    ) -> list[ReadRecord]:
        """The newest reads recorded in the read audit that this principal may see (all of
        it with a grant on its tenant; an auditor, the reads that touched its tenants).

        `hide_interface` leaves out this principal's own reads through that interface
        (e.g. "dashboard": every page the dashboard renders for it is recorded too).
        """
        hide = None if hide_interface is None else (self.principal.name, hide_interface)
        frame = self.sql(read_records_sql(limit, hide=hide))
        return [ReadRecord.from_row(row) for row in frame.iter_rows(named=True)]

    # -- integrity ----------------------------------------------------------------------------

    def verify(self, tenants: Sequence[str] | None = None) -> Report:
        """Full verification of the principal's verifiable tenants with trusted keys."""
        wanted = list(tenants) if tenants else None
        if wanted:
            check_reach(self.principal, Permission.VERIFY, logged_tenants(self.lake), wanted)
        elif not self.principal.operator:
            existing = self.lake.tenants()
            wanted = self.principal.tenants(Permission.VERIFY, existing)
            if not wanted:
                raise UsageError(f"principal {self.principal.name!r} may verify no tenant")
        return verify_lake(self.lake, TrustStore(self.home).keys(), tenants=wanted)

    def prove(self, event_id: str, *, tenant: str) -> dict[str, Any]:
        """The inclusion proof of one event (the proof format `verify-proof` reads)."""
        from lake.proofs import prove

        self._reach("prove", f"id:{event_id}", Permission.PROVE, [tenant])
        self.query.record("prove", f"id:{event_id}", [tenant], "success", None)
        local = [k.verifier_key for k in KeyStore(self.home).list()]
        return prove(self.lake, tenant, event_id, local)

    def check(self, event_id: str, *, tenant: str) -> str:
        """Prove one event and check the proof with trusted keys; raises ProofError."""
        from lake.proofs import check_proof

        return check_proof(self.prove(event_id, tenant=tenant), TrustStore(self.home).keys())

    def evidence(self, events: Sequence[tuple[str, str]], path: str | Path, note: str = "") -> Path:
        """Write an evidence pack (zip) of (tenant, event_id) pairs; returns its path."""
        from lake.proofs import build_pack

        asked = " ".join(f"id:{e}" for _, e in events)[:4000]
        wanted = sorted({t for t, _ in events})
        self._reach("evidence", asked, Permission.PROVE, wanted)
        self.query.record("evidence", asked, wanted, "success", None)
        local = [k.verifier_key for k in KeyStore(self.home).list()]
        data = build_pack(
            self.lake, events, made_by=self.principal.name, note=note, local_keys=local
        )
        out = Path(path)
        out.write_bytes(data)
        return out

    def _reach(self, kind: str, asked: str, permission: Permission, tenants: list[str]) -> None:
        """`check_reach` for a read of `kind`; a refusal is recorded like a refused search."""
        try:
            check_reach(self.principal, permission, logged_tenants(self.lake), tenants)
        except AccessDenied as exc:
            self.query.record(kind, asked, tenants, "failure", str(exc))
            raise

    def close(self) -> None:
        """Flush buffered read-audit records and close the connection."""
        self.query.close()

    def __enter__(self) -> LakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(
    path: str | os.PathLike[str],
    *,
    as_: str | None = None,
    home: str | os.PathLike[str] | None = None,
    interface: str = "notebook",
    buffered: bool = False,
    storage_options: dict[str, str] | None = None,
) -> LakeSession:
    """Open a lake as a principal (default: $AUDITLAKE_PRINCIPAL, else the operator).

    `storage_options` (delta-rs names: endpoint, region, credentials, ...) configure an
    object-store lake beyond what the environment says.
    """
    where = Path(home) if home is not None else config_home()
    name = as_ or os.environ.get("AUDITLAKE_PRINCIPAL") or LOCAL_OPERATOR
    principal = AccessPolicy(where).principal(name)
    lake = Lake.open(path, storage_options=storage_options)
    return LakeSession(lake, principal, where, interface=interface, buffered=buffered)


# One call, one session: for a script that asks one thing (a notebook keeps a session).


def search(
    path: str | os.PathLike[str],
    query: str | SearchFilter = "",
    *,
    limit: int | None = DEFAULT_LIMIT,
    as_: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Any:
    """`open(path).search(query)` as a Polars DataFrame, the session closed after."""
    with open(path, as_=as_, home=home) as s:
        return s.search(query, limit=limit).to_polars()


def events(
    path: str | os.PathLike[str],
    *,
    tenant: str | Sequence[str] | None = None,
    as_: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Any:
    """`open(path).events(tenant=...)`: the principal's events as a Polars LazyFrame."""
    with open(path, as_=as_, home=home) as s:
        return s.events(tenant=tenant)


def verify(
    path: str | os.PathLike[str],
    tenants: Sequence[str] | None = None,
    *,
    as_: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Report:
    """`open(path).verify(tenants)`: full verification with the trusted keys."""
    with open(path, as_=as_, home=home) as s:
        return s.verify(tenants)


def prove(
    path: str | os.PathLike[str],
    event_id: str,
    *,
    tenant: str,
    as_: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """`open(path).prove(event_id, tenant=...)`: one event's inclusion proof."""
    with open(path, as_=as_, home=home) as s:
        return s.prove(event_id, tenant=tenant)
