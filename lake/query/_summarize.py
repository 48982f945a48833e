"""`SUMMARIZE` that survives far-dated values.

DuckDB's SUMMARIZE averages a DATE column through nanoseconds, so one date outside
1677-09-22..2262-04-11 fails the whole statement ("Type INT32 with value 0001-01-01 can't
be cast to ... INT64"). A lake may already hold such an event (stored before times were
checked at the edge), and `SUMMARIZE events` is what a newcomer runs first. The statement
is therefore rewritten: DATE columns are summarized as TIMESTAMP (whose average works on
the whole range) and shown back as dates, with the same result columns as DuckDB's own.
"""

from __future__ import annotations

import re
from typing import Final

import duckdb

_SUMMARIZE_RE: Final = re.compile(r"\s*summarize\s+(.*?)[\s;]*\Z", re.IGNORECASE | re.DOTALL)
_QUERY_START: Final = re.compile(r"\s*(select|with|from|values|\()", re.IGNORECASE)
_DATE_TEXT: Final = ("min", "max", "q25", "q50", "q75")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rewrite_summarize(con: duckdb.DuckDBPyConnection, query: str) -> str | None:
    """A SELECT equivalent to `query` when it SUMMARIZEs DATE columns, else None.

    `query` has already passed the gate as one SELECT statement; the rewrite only wraps
    it, and the caller checks the result the same way.
    """
    m = _SUMMARIZE_RE.match(query)
    if m is None:
        return None
    rest = m.group(1)
    inner = rest if _QUERY_START.match(rest) else f"SELECT * FROM {rest}"
    try:
        described = con.cursor().sql(f"DESCRIBE {inner}\n").fetchall()
    except duckdb.Error:
        return None  # DuckDB's own error for the original is the one to show
    dates = [str(row[0]) for row in described if str(row[1]) == "DATE"]
    if not dates:
        return None
    replace = ", ".join(f"CAST({_ident(d)} AS TIMESTAMP) AS {_ident(d)}" for d in dates)
    listed = ", ".join("'" + d.replace("'", "''") + "'" for d in dates)
    is_date = f"column_name IN ({listed})"
    cols = ["column_name", f"CASE WHEN {is_date} THEN 'DATE' ELSE column_type END AS column_type"]
    for name in ("min", "max", "approx_unique", "avg", "std", "q25", "q50", "q75"):
        if name in _DATE_TEXT:
            cols.append(
                f"CASE WHEN {is_date} THEN split_part({name}, ' ', 1) ELSE {name} END AS {name}"
            )
        else:
            cols.append(name)
    cols += ["count", "null_percentage"]
    return (
        f"SELECT {', '.join(cols)} FROM (SUMMARIZE SELECT * REPLACE ({replace}) FROM ({inner}\n))"
    )
