"""Reading a lake: the locked DuckDB session, the query string, export formats, the read audit."""

from __future__ import annotations

from lake.query._columns import (
    LISTING_COLUMNS,
)
from lake.query._export import (
    FORMATS,
    read_export,
    write_batches,
)
from lake.query._querystring import (
    SearchFilter,
    parse_query,
    parse_time,
)
from lake.query._readaudit import (
    TOKEN_PREFIX,
    WITHHELD,
    ReadAudit,
    ReadRecord,
    Redactor,
    read_records_sql,
)
from lake.query._sandbox import (
    locked_connection,
    release,
)
from lake.query._session import (
    DEFAULT_LIMIT,
    QuerySession,
    SearchResult,
    sql_literal,
)
from lake.query._views import (
    HIVE,
)

__all__ = [
    "DEFAULT_LIMIT",
    "FORMATS",
    "HIVE",
    "LISTING_COLUMNS",
    "TOKEN_PREFIX",
    "WITHHELD",
    "QuerySession",
    "ReadAudit",
    "ReadRecord",
    "Redactor",
    "SearchFilter",
    "SearchResult",
    "locked_connection",
    "parse_query",
    "parse_time",
    "read_export",
    "read_records_sql",
    "release",
    "sql_literal",
    "write_batches",
]
