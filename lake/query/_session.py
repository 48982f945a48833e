"""The query layer: one locked-down DuckDB connection per principal, and the read audit.

Why DuckDB over the Parquet files of a Delta snapshot (rather than DuckDB's delta
extension or a pyarrow dataset): the delta extension exists only for an older DuckDB and
would download at run time; building a pyarrow dataset costs seconds per query on
thousands of files (measured). A snapshot's file list, pruned by tenant and date in
Python, read by DuckDB's `read_parquet` with hive partitioning, answers a point search
in tens of milliseconds.

Isolation does not rest on rewriting user SQL. The connection is built so that the
principal's data is the only data it can reach:

- the views `events`, `query_audit`, `checkpoints`, `alerts` are created over exactly
  the principal's tenants (Parquet files of a tenant partition hold only that tenant);
- `allowed_paths` lists exactly those files; then external access is switched off and
  the configuration locked, so `read_parquet` of another tenant's file, `read_csv`,
  `COPY … TO`, `ATTACH`, `INSTALL`/`LOAD` and any `SET` fail inside DuckDB;
- user SQL must be one SELECT (or EXPLAIN) statement: DDL, `SET`, `PRAGMA` and the rest
  are refused before DuckDB sees them, so the views cannot be redefined.

On an object-store lake the same views read local copies of exactly those files
(lake/storage/_cache.py): fetched for the principal's tenants only, and listed in `allowed_paths`.
Every locked connection comes from lake/query/_sandbox.py (its own private temp directory).

Every search and SQL query is recorded before any row is returned, in the read audit
(lake/query/_readaudit.py; `ReadAudit` is importable from here too). A principal with a grant
on the reserved tenant sees all of it as `query_audit`; an auditor (or admin) of some
tenants sees in `query_audit` the reads that touched those tenants, a copy made when the
connection is built, so the reserved tenant's files stay outside `allowed_paths`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lake.contract import (
    ALERTS_SCHEMA,
    CHECKPOINTS_SCHEMA,
    EVENTS_SCHEMA,
    READ_AUDIT_TENANT,
    UsageError,
)
from lake.query._querystring import SearchFilter
from lake.query._readaudit import ReadAudit, scoped_audit_sql
from lake.query._result import (
    BATCH_ROWS,
    Cursor,
    SearchResult,
    cast_batches,
    fingerprint,
    first_line,
    utc_schema,
)
from lake.query._sandbox import locked_connection, release, sql_literal
from lake.query._summarize import rewrite_summarize
from lake.query._views import HIVE, Layout, view_sql
from lake.secrets import (
    AccessDenied,
    Permission,
    Principal,
    check_reach,
    decrypted_select,
    encrypted,
    keyring_for,
    register_decrypt,
)
from lake.storage import DataFile, Lake, TableFiles, paths

__all__ = ["DEFAULT_LIMIT", "Cursor", "QuerySession", "ReadAudit", "SearchResult", "sql_literal"]

DEFAULT_LIMIT: Final = 100  # rows of a search page unless the caller asks otherwise
_EVENT_COLUMNS: Final = tuple(EVENTS_SCHEMA.names)
_ORDER: Final = "time DESC, tenant DESC, seq DESC"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ALLOWED_STATEMENTS: Final = frozenset({"SELECT", "EXPLAIN"})


class QuerySession:
    """A principal's view of one lake: scoped DuckDB views, search and SQL, all audited.

    Args:
        lake: the opened lake.
        principal: who asks; decides which tenants every view and search may reach.
        audit: where queries are recorded (None only for internal callers that do their
            own recording, e.g. tests of the gate itself).
        interface: recorded with each query (`cli`, `tui`, `dashboard`, `notebook`).
        version: read this Delta version of the events table (time travel) instead of
            the newest.
    """

    def __init__(
        self,
        lake: Lake,
        principal: Principal,
        audit: ReadAudit | None,
        *,
        interface: str = "cli",
        version: int | None = None,
    ) -> None:
        self.lake = lake
        self._copies = TableFiles(lake)  # local lakes: the files themselves, nothing copied
        self.principal = principal
        self.audit = audit
        self.interface = interface
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._conn_layout: Layout | None = None
        self._dt: DeltaTable | None = None
        self._pinned: dict[int, DeltaTable] = {}
        self._side: dict[str, DeltaTable] = {}  # checkpoints, alerts: refreshed, not reopened
        self.version = version  # a fixed snapshot (time travel), or None for the newest
        self._lock = threading.Lock()

    # -- scope --------------------------------------------------------------------------------

    def _table(self, version: int | None = None) -> DeltaTable:
        if version is None:
            return self.latest()
        if version in self._pinned:
            return self._pinned[version]
        try:
            table = self.lake.delta_table(self.lake.events_uri, version)
            self._pinned = {version: table}  # the one a paging client is on
            return table
        except (DeltaError, OSError, ValueError) as exc:
            raise UsageError(
                f"version {version} of the events table is not readable (a cursor or "
                f"time-travel read of a snapshot that is gone?): {str(exc).splitlines()[0]}"
            ) from None

    def tenants(
        self, permission: Permission = Permission.READ_EVENTS, table: DeltaTable | None = None
    ) -> list[str]:
        """Tenants of the lake on which the principal holds `permission` (read audit aside)."""
        existing = self.lake.tenants(table)
        return [t for t in self.principal.tenants(permission, existing) if t != READ_AUDIT_TENANT]

    def scope(
        self, requested: Sequence[str], permission: Permission, table: DeltaTable | None = None
    ) -> list[str]:
        """The tenants a request may read: the requested ones (each checked) or all granted.

        A requested `prefix*` means the granted tenants with that prefix. The read-audit
        tenant is in scope only when asked for by its full name. A principal without any
        grant, or a requested tenant the lake does not hold, is refused (`check_reach`).
        """
        check_reach(self.principal, permission, self.lake.tenants(table), requested)
        if not requested:
            return self.tenants(permission, table)
        out: set[str] = set()
        for tenant in requested:
            if tenant.endswith("*"):
                out.update(t for t in self.tenants(permission, table) if t.startswith(tenant[:-1]))
            else:
                self.principal.require(permission, tenant)
                out.add(tenant)
        return sorted(out)

    # -- the connection ---------------------------------------------------------------------

    def _files(self, table: DeltaTable, tenants: Sequence[str]) -> list[DataFile]:
        return self.lake.data_files(table, tenants=set(tenants)) if tenants else []

    def _path(self, f: DataFile) -> str:
        return self._copies.path(paths.table_file(paths.EVENTS, f.path), f.size)

    def local_files(self, paths: Sequence[str]) -> Sequence[str]:
        """Make the files behind `_path()` results readable locally (object stores: fetch
        the principal's copies); returns the paths. Local lakes: nothing to do."""
        self._copies.fetch(paths)
        return paths

    def latest(self) -> DeltaTable:
        """The newest snapshot of the events table (one object, refreshed incrementally)."""
        if self.version is not None:
            return self._table(self.version)
        if self._dt is None:
            self._dt = self.lake.events_table()
        else:
            self._dt.update_incremental()
        return self._dt

    def _layout(self, table: DeltaTable) -> Layout:
        """Which files each view of the principal covers in this snapshot."""
        p = self.principal
        existing = self.lake.tenants(table)
        readable = p.tenants(Permission.READ_EVENTS, existing)
        event_tenants = [t for t in readable if t != READ_AUDIT_TENANT]
        audit_tenants = [t for t in readable if t == READ_AUDIT_TENANT]
        audited = self._audited(existing) if not audit_tenants else []
        wanted = readable + ([READ_AUDIT_TENANT] if audited else [])
        by_tenant: dict[str, list[str]] = {}
        for f in self._files(table, wanted):
            by_tenant.setdefault(f.tenant, []).append(self._path(f))
        cp_tenants = set(p.tenants(Permission.READ_CHECKPOINTS, existing))
        alert_tenants = set(p.tenants(Permission.READ_ALERTS, existing))
        return Layout(
            events=tuple(x for t in event_tenants for x in by_tenant.get(t, ())),
            audit=tuple(x for t in audit_tenants for x in by_tenant.get(t, ())),
            checkpoints=tuple(self._side_files(paths.CHECKPOINTS, cp_tenants)),
            alerts=tuple(self._side_files(paths.ALERTS, alert_tenants)),
            tenants=tuple(event_tenants),
            scoped_audit=tuple(by_tenant.get(READ_AUDIT_TENANT, ())) if audited else (),
            audited=tuple(audited),
        )

    def _audited(self, existing: list[str]) -> list[str]:
        """Tenants whose reads this principal may see as their auditor (or admin)."""
        if READ_AUDIT_TENANT not in existing:
            return []
        return [t for t in self.principal.tenants(Permission.VERIFY, existing)
                if t != READ_AUDIT_TENANT]  # fmt: skip

    def _side_files(self, name: str, tenants: set[str]) -> list[str]:
        """Files of a small tenant-partitioned table (checkpoints, alerts) for these tenants."""
        if not tenants:
            return []
        table = self._side.get(name)
        if table is not None:
            table.update_incremental()  # only the new log entries: on S3, 2 requests not ~20
        else:
            table = (
                self.lake.checkpoints_table()
                if name == paths.CHECKPOINTS
                else self.lake.alerts_table()
            )
            if table is None:
                return []
            self._side[name] = table
        actions = pa.table(table.get_add_actions(flatten=True))
        actions = actions.select(["path", "partition.tenant", "size_bytes"])
        return [
            self._copies.path(paths.table_file(name, row["path"]), row["size_bytes"])
            for row in actions.to_pylist()
            if row["partition.tenant"] in tenants
        ]

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The principal's locked connection, rebuilt only when its files change.

        Appends to other tenants (the read audit's own records among them) leave it as it
        is: its views and allowed paths depend only on the principal's files.
        """
        with self._lock:
            table = self.latest()
            layout = self._layout(table)
            if self._copies.remote:
                self._copies.fetch(
                    layout.events
                    + layout.audit
                    + layout.checkpoints
                    + layout.alerts
                    + layout.scoped_audit
                )
            if self._conn is None or layout != self._conn_layout:
                if self._conn is not None:
                    release(self._conn)
                self._conn = self._build(layout)
                self._conn_layout = layout
                if self._copies.remote and self.version is None:
                    self._prune(layout, self.lake.tenants(table))
            return self._conn

    def _prune(self, layout: Layout, existing: list[str]) -> None:
        """Drop cached copies of the principal's tenants that left the newest snapshot."""
        p = self.principal
        readable = p.tenants(Permission.READ_EVENTS, existing)
        if layout.scoped_audit:
            readable.append(READ_AUDIT_TENANT)
        live = layout.events + layout.audit + layout.scoped_audit
        self._copies.prune(paths.EVENTS, readable, live)
        cp = p.tenants(Permission.READ_CHECKPOINTS, existing)
        self._copies.prune(paths.CHECKPOINTS, cp, layout.checkpoints)
        self._copies.prune(paths.ALERTS, p.tenants(Permission.READ_ALERTS, existing), layout.alerts)

    def _decrypting(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Register al_decrypt with the DEKs of the principal's tenants (encrypted lakes)."""
        if not encrypted(self.lake):
            return False
        readable = self.principal.tenants(Permission.READ_EVENTS, self.lake.tenants(self.latest()))
        register_decrypt(con, keyring_for(self.lake), readable)
        return True

    def _build(self, layout: Layout) -> duckdb.DuckDBPyConnection:
        def setup(con: duckdb.DuckDBPyConnection) -> None:
            dec = self._decrypting(con)
            con.execute(f"CREATE VIEW events AS {view_sql(EVENTS_SCHEMA, layout.events, dec)}")
            if layout.scoped_audit:
                # A copy, not a view: the reserved tenant's files are never allowed.
                source = view_sql(EVENTS_SCHEMA, layout.scoped_audit)
                con.execute(
                    f"CREATE TABLE query_audit AS {scoped_audit_sql(source, layout.audited)}"
                )
            else:
                audit = view_sql(EVENTS_SCHEMA, layout.audit, dec)
                con.execute(f"CREATE VIEW query_audit AS {audit}")
            con.execute(
                f"CREATE VIEW checkpoints AS {view_sql(CHECKPOINTS_SCHEMA, layout.checkpoints)}"
            )
            con.execute(f"CREATE VIEW alerts AS {view_sql(ALERTS_SCHEMA, layout.alerts, dec)}")

        allowed = layout.events + layout.audit + layout.checkpoints + layout.alerts
        return locked_connection(allowed, setup)

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        filt: SearchFilter,
        *,
        limit: int | None = DEFAULT_LIMIT,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> SearchResult:
        """Events matching `filt`, newest first, over the principal's tenants.

        Pages are consistent: a cursor pins the Delta snapshot of the first page, so events
        appended meanwhile neither shift nor duplicate rows between pages (a new search
        sees them).
        """
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1 (omit it for every match)")
        cols = list(columns) if columns else list(_EVENT_COLUMNS)
        unknown = [c for c in cols if c not in _EVENT_COLUMNS]
        if unknown:
            raise UsageError(
                f"unknown column(s) {', '.join(unknown)}: use {', '.join(_EVENT_COLUMNS)}"
            )
        for needed in ("time", "tenant", "seq"):
            if needed not in cols:
                cols.append(needed)  # the sort key is needed for the cursor
        requested = list(filt.tenants)
        query_text = filt.to_query_string()
        page = Cursor.decode(cursor) if cursor else None
        # One snapshot for the scope, the file list and the cursor: a later page sees the
        # tenants and files of the first.
        table = self._table(page.version if page else None)
        version = table.version()
        try:
            tenants = self.scope(requested, Permission.READ_EVENTS, table)
        except AccessDenied as exc:
            self.record("search", query_text, requested, "failure", str(exc))
            raise
        fp = fingerprint(filt, tenants)
        if page is not None and page.fingerprint != fp:
            raise UsageError(
                "this cursor belongs to a different search (filters or tenants differ)"
            )
        lo, hi = filt.dates()
        files = [
            self._path(f)
            for f in self._files(table, tenants)
            if (lo is None or f.event_date >= lo) and (hi is None or f.event_date <= hi)
        ]
        self.record(
            "search",
            query_text,
            tenants,
            "success",
            None,
            {"limit": limit, "page": bool(page), "version": version},
        )
        schema = pa.schema([EVENTS_SCHEMA.field(c).with_nullable(True) for c in cols])
        if not files:
            return SearchResult(schema, iter(()), limit, version, fp)
        where, params = filt.to_sql()
        clauses = [f"({where})", f"tenant IN ({', '.join('?' * len(tenants))})"]
        params = [*params, *tenants]
        if page is not None:
            clauses.append("(time < ? OR (time = ? AND (tenant < ? OR (tenant = ? AND seq < ?))))")
            at = _EPOCH + timedelta(microseconds=page.time_us)
            params += [at, at, page.tenant, page.tenant, page.seq]
        source = f"read_parquet(?, {HIVE})"
        if encrypted(self.lake):  # filters see plaintext; the rest still prunes by file
            source = f"(SELECT {decrypted_select(EVENTS_SCHEMA.names)} FROM {source})"
        sql = (
            f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} "
            f"FROM {source} WHERE {' AND '.join(clauses)} ORDER BY {_ORDER}"
            + (f" LIMIT {int(limit)}" if limit is not None else "")
        )
        con = self._search_connection(files)
        rel = con.cursor().sql(sql, params=[files, *params])
        reader = rel.to_arrow_reader(BATCH_ROWS)
        return SearchResult(schema, cast_batches(reader, schema), limit, version, fp)

    def _search_connection(self, files: list[str]) -> duckdb.DuckDBPyConnection:
        # The principal's connection already may read these files, unless the page is on
        # an older snapshot whose files were since compacted away: then a connection of
        # its own, locked down the same way, allowed exactly those files. On an object
        # store always the latter: only the files of this search are fetched.
        if self._copies.remote:
            self._copies.fetch(files)
        else:
            con = self.connection()
            layout = self._conn_layout
            if layout is not None and set(files) <= set(layout.events) | set(layout.audit):
                return con
        return locked_connection(files, self._decrypting)

    # -- SQL ----------------------------------------------------------------------------------

    def sql(self, query: str) -> SearchResult:
        """Run one read-only statement over the principal's views; stream the result."""
        try:  # a principal that reaches no tenant would see empty views: refused instead
            check_reach(self.principal, Permission.READ_EVENTS, self.lake.tenants(self.latest()))
        except AccessDenied as exc:
            self.record("sql", query, [], "failure", str(exc))
            raise
        con = self.connection()
        assert self._conn_layout is not None
        tenants = list(self._conn_layout.tenants)
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            self.record("sql", query, tenants, "failure", first_line(exc))
            raise UsageError(f"SQL error: {first_line(exc)}") from None
        if len(statements) != 1:
            reason = f"one statement at a time (got {len(statements)})"
            self.record("sql", query, tenants, "failure", reason)
            raise UsageError(f"refused: {reason}")
        kind = statements[0].type.name
        if kind == "EXPLAIN" and not _explains_a_select(con, query):
            # EXPLAIN ANALYZE runs its statement: EXPLAIN ANALYZE CREATE VIEW … would
            # redefine a view. Only an EXPLAIN of a plain SELECT is let through.
            kind = "EXPLAIN of a statement other than SELECT"
        if kind not in _ALLOWED_STATEMENTS:
            reason = (
                f"{kind} statements are not allowed: the query layer is read-only "
                "(SELECT, WITH … SELECT, EXPLAIN, DESCRIBE, SUMMARIZE)"
            )
            self.record("sql", query, tenants, "failure", reason)
            raise UsageError(f"refused: {reason}")
        cur = con.cursor()
        try:
            rel = cur.sql(rewrite_summarize(con, query) or query)  # far-dated DATEs
        except duckdb.PermissionException as exc:
            reason = f"outside the principal's data: {first_line(exc)}"
            self.record("sql", query, tenants, "failure", reason)
            raise AccessDenied(f"refused: {reason}") from None
        except duckdb.Error as exc:
            self.record("sql", query, tenants, "failure", first_line(exc))
            raise UsageError(f"SQL error: {first_line(exc)}") from None
        self.record("sql", query, tenants, "success", None)
        if rel is None:  # EXPLAIN of a non-query, or a statement without a result
            return SearchResult(pa.schema([]), iter(()), None, 0, "")
        try:
            reader = rel.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {first_line(exc)}") from None
        schema = utc_schema(reader.schema)
        return SearchResult(schema, cast_batches(reader, schema), None, 0, "")

    # -- bookkeeping --------------------------------------------------------------------------

    def record(
        self,
        interface_kind: str,
        query: str,
        tenants: Sequence[str],
        outcome: str,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Record a read in the read audit (interfaces that run their own SQL use this)."""
        if self.audit is None:
            return
        self.audit.record(
            self.principal,
            interface=f"{self.interface}.{interface_kind}",
            query=query,
            tenants=tenants,
            outcome=outcome,
            reason=reason,
            extra=extra,
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                release(self._conn)
                self._conn = None
        if self.audit is not None:
            self.audit.flush()


_EXPLAIN_RE: Final = re.compile(r"\s*explain\s+(?:analyze\s+)?(.*)\Z", re.IGNORECASE | re.DOTALL)


def _explains_a_select(con: duckdb.DuckDBPyConnection, query: str) -> bool:
    m = _EXPLAIN_RE.match(query)
    if m is None:
        return False  # a form we do not parse (comments first, options): refuse
    try:
        inner = con.extract_statements(m.group(1))
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type.name == "SELECT"
