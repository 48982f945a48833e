"""`auditlake search` and `sql`: CLI wiring of the query layer.

Registered on the `cli` group by `auditlake.cli`; every read goes through
`lake.query.QuerySession`, so it is scoped to the principal and recorded in the read
audit before any row is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.output import emit_table, fail, note
from lake.query import (
    DEFAULT_LIMIT,
    FORMATS,
    LISTING_COLUMNS,
    SearchFilter,
    parse_query,
    parse_time,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from lake.query import QuerySession, SearchResult

OUTPUT_FORMATS = ("table", *FORMATS)
TABLE_COLUMNS = LISTING_COLUMNS
MAX_TABLE_ROWS = 1000


def _session(ctx: Ctx, interface: str = "cli") -> QuerySession:
    from lake.query import QuerySession

    lake = ctx.open()
    return QuerySession(lake, ctx.who(), ctx.read_audit(lake), interface=interface)


def output_options(fn: Any) -> Any:
    fn = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True),
        default="-",
        help="Write results to this file instead of stdout.",
    )(fn)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="table for people; json, jsonl, csv and parquet stream every row for programs.",
    )(fn)


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _table_cells(batch: pa.RecordBatch) -> list[list[str]]:
    """A batch's cells as text. Times and dates are formatted by Arrow, not as Python
    datetimes: a stored time may lie beyond year 9999 (Python's limit), and a time of year
    1 keeps its four-digit year (strftime would print `1-01-01`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: list[list[str]] = []
    for arr in batch.columns:
        if pa.types.is_timestamp(arr.type):
            micros = arr.cast(pa.timestamp("us", tz=arr.type.tz), safe=False)
            text = pc.strftime(micros, format="%Y-%m-%d %H:%M:%S")
            columns.append([t[:-3] if t else "" for t in text.to_pylist()])  # milliseconds
        elif pa.types.is_date(arr.type):
            text = pc.strftime(arr, format="%Y-%m-%d")
            columns.append([t or "" for t in text.to_pylist()])
        else:
            columns.append([_format_cell(v) for v in arr.to_pylist()])
    return [list(row) for row in zip(*columns, strict=True)]


def _emit(result: SearchResult, fmt: str, output: str, columns: Iterable[str] | None) -> int:
    from lake.query import write_batches

    if fmt == "table":
        shown = [c for c in (columns or result.schema.names) if c in result.schema.names]
        rows: list[list[str]] = []
        total = 0
        for batch in result:
            total += batch.num_rows
            if len(rows) < MAX_TABLE_ROWS:
                rows += _table_cells(batch.select(shown).slice(0, MAX_TABLE_ROWS - len(rows)))
        emit_table(None, shown, rows)
        if total > len(rows):
            note(f"{total - len(rows)} more row(s) not shown: use --format csv/jsonl/parquet")
        return total
    if fmt == "parquet" and output == "-" and sys.stdout.isatty():
        fail("parquet is binary: give --output FILE or redirect stdout")
    stream: IO[bytes]
    if output == "-":
        stream = sys.stdout.buffer
        return write_batches(iter(result), fmt, stream, schema=result.schema)
    with open(output, "wb") as stream:
        return write_batches(iter(result), fmt, stream, schema=result.schema)


# Each repeatable search option and the SearchFilter field it fills.
OPTION_FIELDS = {
    "tenant": "tenants",
    "actor": "actors",
    "action": "actions",
    "category": "categories",
    "outcome": "outcomes",
    "severity": "severities",
    "ip": "ips",
    "target": "targets",
    "source": "sources",
    "text": "text",
}


def _filter_from_options(
    query: str | None, since: str | None, until: str | None, options: dict[str, Any]
) -> SearchFilter:
    filt = parse_query(query) if query else SearchFilter()
    # The options build a query string of their own, so both paths share one parser
    # and one set of checks (and the read audit records one canonical form).
    from_options = SearchFilter(
        **{field: tuple(options[name]) for name, field in OPTION_FIELDS.items()},
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
    )
    _check_range(filt, from_options, since, until)
    merged = filt.merge(from_options)
    return parse_query(merged.to_query_string())


def _check_range(
    filt: SearchFilter, options: SearchFilter, since: str | None, until: str | None
) -> None:
    """A start at or after the end is a mistake (an empty search that looks like "no
    events"), named with the options or the query's `created:` that set each end."""
    starts = [(t, f"--since {since}") for t in [options.since] if t is not None]
    starts += [(t, "created: in the query") for t in [filt.since] if t is not None]
    ends = [(t, f"--until {until}") for t in [options.until] if t is not None]
    ends += [(t, "created: in the query") for t in [filt.until] if t is not None]
    for start, said_start in starts:
        for end, said_end in ends:
            if start >= end:
                where = said_start if said_start == said_end else f"{said_start} and {said_end}"
                fail(
                    f"{where}: the start ({start.isoformat()}) is not before the end "
                    f"({end.isoformat()}), so nothing can match; swap them"
                )


@click.command()
@click.argument("query", required=False)
@click.option("--tenant", multiple=True, help="Only this tenant (repeat for several).")
@click.option("--actor", multiple=True, help="actor_id; a trailing * matches a prefix.")
@click.option("--action", multiple=True, help="Action, e.g. login or key.* (prefix).")
@click.option("--category", multiple=True, help="Event category.")
@click.option("--outcome", multiple=True, help="success, failure or unknown.")
@click.option("--severity", multiple=True, help="info, low, medium, high or critical.")
@click.option("--ip", multiple=True, help="Actor IP address; a trailing * matches a prefix.")
@click.option("--target", multiple=True, help="target_id.")
@click.option("--source", multiple=True, help="Emitting service.")
@click.option("--text", multiple=True, help="Free text in actor, target, address or details.")
@click.option("--since", help="From this time: 2026-11-01, RFC 3339, or relative (7d, 24h).")
@click.option("--until", help="Before this time (same forms as --since).")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Rows per page; 0 for every match (streamed).",
)
@click.option("--cursor", help="Continue after the page that printed this cursor.")
@output_options
@pass_ctx
@handle_errors
def search(
    ctx: Ctx,
    /,
    query: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
    fmt: str,
    output: str,
    **options: tuple[str, ...],
) -> None:
    """Events matching filters, newest first, from the tenants you may read.

    QUERY takes GitHub-audit-log-style qualifiers and free text, the same syntax as the
    TUI's search box; options add to it (all conditions must hold):

    \b
      auditlake search 'actor:alice action:login outcome:failure created:>=7d'
      auditlake search 'category:key_change -actor:deploy-bot "prod key"' --tenant acme
      auditlake search --ip 203.0.113.7 --since 2026-11-01 --format jsonl > hits.jsonl

    \b
    Qualifiers: tenant actor action category outcome severity ip target target_type
    source actor_type id created (>=, >, <=, <, A..B, 7d); -qualifier:value excludes;
    a trailing * matches a prefix; a,b means either. Results stream in pages of --limit;
    the cursor printed on stderr continues on the same snapshot, so appends meanwhile
    neither shift nor repeat rows. Every search is recorded in the read audit.
    """
    filt = _filter_from_options(query, since, until, options)
    session = _session(ctx)
    # A table shows a few columns: read only those (the other formats carry every column).
    columns = TABLE_COLUMNS if fmt == "table" else None
    result = session.search(filt, limit=limit or None, cursor=cursor, columns=columns)
    if _emit(result, fmt, output, TABLE_COLUMNS) == 0:
        # On stderr, whatever stdout is: a pipe still gets a valid empty document.
        asked = f" {filt.to_query_string()!r}" if not filt.is_empty() else ""
        note(f"no events match{asked} in the tenants you may read")
    if result.next_cursor:
        note(f"more results: --cursor {result.next_cursor}")


@click.command("sql")
@click.argument("query")
@output_options
@pass_ctx
@handle_errors
def sql_cmd(ctx: Ctx, query: str, fmt: str, output: str) -> None:
    """Run one read-only DuckDB SQL statement over your views.

    \b
    Views: events, checkpoints, alerts (only your tenants), query_audit (the read audit:
    all of it with a grant on the tenant 'auditlake'; as an auditor or admin of a tenant,
    the reads that touched it). Columns are the stored columns (DESCRIBE events):
      auditlake sql "SELECT actor_id, count(*) FROM events
                     WHERE outcome = 'failure' GROUP BY 1 ORDER BY 2 DESC LIMIT 10"

    Only SELECT / WITH / EXPLAIN / DESCRIBE / SUMMARIZE run; files, settings, ATTACH,
    COPY, INSTALL and LOAD are refused. Every query is recorded in the read audit.
    """
    session = _session(ctx)
    result = session.sql(query)
    _emit(result, fmt, output, None)
