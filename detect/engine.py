"""Rules to alerts: one DuckDB query per rule over an `events` relation.

Every kind compiles to two relations over `events`: `trig` (tenant, group columns,
trigger_time: when the pattern completed) and `m` (the matching events that can be
evidence). The common tail then makes one alert per (rule, tenant, group, dedup bucket):

    bucket      floor(trigger_time / dedup period), counted from the Unix epoch
    evidence    events of `m` in the group from (first trigger − window) to the last trigger
    alert_id    SHA-256(rule id, tenant, group JSON, bucket), first 32 hex digits

An alert is therefore a pure function of the events between (bucket start − window −
lookback) and the bucket's end: computing it from one big batch, from fifty small ones,
or again on a rerun gives the same row, which is what lets cron runs overlap without
duplicates (the runner upserts by alert_id and skips unchanged rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa

from detect.model import Rule, RuleKind
from lake.contract import Alert, UsageError
from lake.query import locked_connection

MAX_EVIDENCE_IDS: Final = 1000
# Scan ranges are epoch microseconds clamped to ±2**62 (about ±146,000 years): any stored
# time fits (DuckDB and Arrow take the whole int64), yet a range widened by a window
# never overflows, and no Python datetime (years 1-9999 only) is ever built from one.
MIN_US: Final = -(2**62)
MAX_US: Final = 2**62
_US: Final = pa.timestamp("us", tz="UTC")


def connection(
    allowed: Sequence[str], setup: Callable[[duckdb.DuckDBPyConnection], object]
) -> duckdb.DuckDBPyConnection:
    """The connection rules run on: lake.query's locked-down one, which reads exactly the
    files in `allowed` (`setup` runs before it is locked). Close it with `release`."""
    return locked_connection(allowed, setup)


def duration_us(value: timedelta) -> int:
    """A duration in whole microseconds (integer division: exact for any span of years)."""
    return value // timedelta(microseconds=1)


def _cols(names: Sequence[str], prefix: str = "") -> str:
    return "".join(f', {prefix}"{c}"' for c in names)


@dataclass(frozen=True)
class Bounds:
    """Per tenant, the dedup buckets to (re)compute; None in `alerts()` means all."""

    tenant: str
    lo: int
    hi: int


def clamp_us(value: int) -> int:
    """An epoch-microsecond bound held inside [MIN_US, MAX_US]."""
    return min(max(value, MIN_US), MAX_US)


def epoch_us(value: datetime) -> int:
    """A datetime as microseconds since the Unix epoch (naive means UTC), without overflow."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return duration_us(aware - datetime(1970, 1, 1, tzinfo=UTC))


def timestamps(values: Sequence[int]) -> pa.Array:
    """Epoch microseconds as a timestamp[us, UTC] array, clamped: no datetime in between."""
    return pa.array([clamp_us(v) for v in values], pa.int64()).cast(_US)


def scan_range(rule: Rule, lo: int, hi: int) -> tuple[int, int]:
    """Event times an alert of buckets lo..hi can depend on: [start, end) in epoch µs.

    Clamped, so buckets of a far-dated stored event (year 1 or 9999) give a finite range.
    """
    d = duration_us(rule.dedup_period)
    start = lo * d - duration_us(rule.window) - duration_us(rule.lookback)
    return clamp_us(start), clamp_us((hi + 1) * d)


def buckets_touched(rule: Rule, first: int, last: int) -> tuple[int, int]:
    """Buckets whose alerts events with times in [first, last] (epoch µs) can change."""
    d = duration_us(rule.dedup_period)
    lo = clamp_us(first) // d
    hi = (clamp_us(last) + duration_us(rule.window) + duration_us(rule.lookback)) // d
    return lo, hi


def _match_sql(rule: Rule, filt: Any, params: list[object]) -> str:
    clauses = ["TRUE"]
    if filt is not None:
        where, p = filt.to_sql()
        clauses.append(f"({where})")
        params += p
    if rule.where_sql:
        clauses.append(f"({rule.where_sql})")
    return " AND ".join(clauses)


def _source(rule: Rule) -> str:
    return "_polars_matched" if rule.polars is not None else "events"


def _frame(rule: Rule) -> str:
    """The window frame of a group: its events within `window` before each one."""
    return (
        f"PARTITION BY tenant{_cols(rule.group_columns)} ORDER BY time "
        f"RANGE BETWEEN INTERVAL {duration_us(rule.window)} MICROSECONDS PRECEDING AND CURRENT ROW"
    )


def _counting_sql(rule: Rule, params: list[object], now: datetime | None) -> str:
    """threshold and distinct: a window count over the group's matching events."""
    g = rule.group_columns
    where = _match_sql(rule, rule.match, params)
    distinct = rule.kind == RuleKind.DISTINCT
    counter = f'count(DISTINCT "{rule.distinct}")' if distinct else "count(*)"
    extra = f', "{rule.distinct}"' if distinct and rule.distinct not in g else ""
    return f"""
        m AS (SELECT tenant{_cols(g)}, event_id, time{extra} FROM {_source(rule)} WHERE {where}),
        trig AS (
            SELECT tenant{_cols(g)}, time AS trigger_time FROM (
                SELECT tenant{_cols(g)}, time, {counter} OVER ({_frame(rule)}) AS n FROM m
            ) WHERE n >= {int(rule.threshold)}
        )"""


_SEQUENCE_TAIL: Final = """
        trig AS (SELECT tenant, k AS "{key}", time AS trigger_time FROM hits),
        m AS (
            SELECT tenant, k AS "{key}", event_id, time FROM a
            UNION ALL SELECT tenant, k AS "{key}", event_id, time FROM hits
        )"""


def _sequence_sql(rule: Rule, params: list[object], now: datetime | None) -> str:
    """sequence: N events of step 1, then one of step 2 with the same key, within `window`."""
    first, then = rule.steps
    w = duration_us(rule.window)
    tail = _SEQUENCE_TAIL.format(key=then.by)
    if first.by == then.by:
        # Same key on both steps: one window count over the union, linear in the
        # events (the range join below is quadratic per busy key: 3.6x slower at 10M).
        s1 = _match_sql(rule, first.match, params)
        s2 = _match_sql(rule, then.match, params)
        o1 = _match_sql(rule, first.match, params)
        o2 = _match_sql(rule, then.match, params)
        return f"""
        u AS (
            SELECT tenant, "{then.by}" AS k, event_id, time,
                   coalesce({s1}, false) AS is_a, coalesce({s2}, false) AS is_b
            FROM {_source(rule)} WHERE ({o1}) OR ({o2})
        ),
        c AS (
            SELECT *, count(*) FILTER (WHERE is_a) OVER (
                PARTITION BY tenant, k ORDER BY time
                RANGE BETWEEN INTERVAL {w} MICROSECONDS PRECEDING AND CURRENT ROW
            ) - CASE WHEN is_a THEN 1 ELSE 0 END AS n_a
            FROM u
        ),
        a AS (SELECT tenant, k, event_id, time FROM u WHERE is_a),
        hits AS (
            SELECT tenant, k, event_id, time FROM c
            WHERE is_b AND n_a >= {int(first.min_count)} AND k IS NOT NULL
        ),{tail}"""
    w1 = _match_sql(rule, first.match, params)
    w2 = _match_sql(rule, then.match, params)
    return f"""
        a AS (SELECT tenant, "{first.by}" AS k, event_id, time FROM {_source(rule)} WHERE {w1}),
        b AS (SELECT tenant, "{then.by}" AS k, event_id, time FROM {_source(rule)} WHERE {w2}),
        hits AS (
            SELECT b.tenant, b.k, b.event_id, b.time FROM b JOIN a
              ON a.tenant = b.tenant AND a.k = b.k AND a.event_id <> b.event_id
             AND a.time >= b.time - INTERVAL {w} MICROSECONDS AND a.time <= b.time
            GROUP BY ALL HAVING count(*) >= {int(first.min_count)}
        ),{tail}"""


def _silence_sql(rule: Rule, params: list[object], now: datetime | None) -> str:
    """silence: a group seen within `lookback` that has sent nothing for `window`."""
    if now is None:
        raise UsageError(f"rule {rule.id!r}: a silence rule needs the run's time")
    g = rule.group_columns
    w = duration_us(rule.window)
    where = _match_sql(rule, rule.match, params)
    params += [now - rule.lookback, now]
    return f"""
        last AS (
            SELECT tenant{_cols(g)}, max(received_at) AS last_at,
                   arg_max(event_id, received_at) AS event_id
            FROM {_source(rule)} WHERE {where} AND received_at >= ? AND received_at <= ?
            GROUP BY ALL
        ),
        trig AS (
            SELECT tenant{_cols(g)}, last_at + INTERVAL {w} MICROSECONDS AS trigger_time
            FROM last WHERE last_at + INTERVAL {w} MICROSECONDS <= ?
        ),
        m AS (SELECT tenant{_cols(g)}, event_id, last_at AS time FROM last)"""


def _user_sql(rule: Rule, params: list[object], now: datetime | None) -> str:
    """sql: the user's query returns evidence rows; each row is also a trigger at its time."""
    g = rule.group_columns
    assert rule.sql is not None
    query = rule.sql.strip().rstrip(";").rstrip()
    return f"""
        u AS (
{query}
        ),
        m AS (SELECT tenant{_cols(g)}, event_id, time FROM u),
        trig AS (SELECT tenant{_cols(g)}, time AS trigger_time FROM u)"""


_KIND_SQL: Final[Mapping[RuleKind, Callable[[Rule, list[object], datetime | None], str]]] = {
    RuleKind.THRESHOLD: _counting_sql,
    RuleKind.DISTINCT: _counting_sql,
    RuleKind.SEQUENCE: _sequence_sql,
    RuleKind.SILENCE: _silence_sql,
    RuleKind.SQL: _user_sql,
}


def alerts(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    *,
    bounds: Sequence[Bounds] | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """The alerts of `rule` over the `events` relation of `con`, by tenant and bucket.

    `bounds` limits the result to those dedup buckets per tenant; the caller must have
    made `events` hold every event in `scan_range` of them.
    """
    params: list[object] = []
    if rule.polars is not None:
        _materialise_polars(con, rule)
    body = _KIND_SQL[rule.kind](rule, params, now)
    if rule.kind == RuleKind.SILENCE:
        params.append(now)
    _register_targets(con, rule, bounds)
    try:
        found = con.sql(_alerts_sql(rule, body, bounds is not None), params=params)
        rows = found.to_arrow_table().to_pylist()
    except duckdb.Error as exc:
        raise UsageError(f"rule {rule.id!r} failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.unregister("_targets")
        if bounds is not None:
            con.unregister("_bounds")
    return [_alert(rule, row) for row in rows]


def _register_targets(
    con: duckdb.DuckDBPyConnection, rule: Rule, bounds: Sequence[Bounds] | None
) -> None:
    """`_targets`: per tenant, the event times whose triggers this call reports, and
    `_bounds`: the dedup buckets to report (only when `bounds` limits them).

    An sql rule with a long lookback should draw its candidates from `_targets`, and only
    use the rest of `events` as history (see detect/rules/key_off_hours_or_new_actor.yaml).
    """
    if bounds is None:
        everything = (
            f"SELECT DISTINCT tenant, make_timestamptz({MIN_US}::BIGINT) AS lo, "
            f"make_timestamptz({MAX_US}::BIGINT) AS hi FROM events"
        )
        con.register("_targets", con.sql(everything).to_arrow_table())
        return
    d = duration_us(rule.dedup_period)
    tenants = [b.tenant for b in bounds]
    con.register(
        "_targets",
        pa.table(
            {
                "tenant": tenants,
                "lo": timestamps([b.lo * d for b in bounds]),
                "hi": timestamps([(b.hi + 1) * d for b in bounds]),
            }
        ),
    )
    con.register(
        "_bounds",
        pa.table(
            {
                "tenant": tenants,
                "b_lo": pa.array([b.lo for b in bounds], pa.int64()),
                "b_hi": pa.array([b.hi for b in bounds], pa.int64()),
            }
        ),
    )


def _alerts_sql(rule: Rule, body: str, bounded: bool) -> str:
    """The common tail: triggers to (tenant, group, bucket) alerts with their evidence."""
    g = rule.group_columns
    d = duration_us(rule.dedup_period)
    w = duration_us(rule.window)
    bound_join = "JOIN _bounds USING (tenant) WHERE bucket BETWEEN b_lo AND b_hi" if bounded else ""
    on_group = "".join(f' AND m."{c}" IS NOT DISTINCT FROM al."{c}"' for c in g)
    return f"""
    WITH {body},
    al AS (
        SELECT * FROM (
            SELECT tenant{_cols(g)}, floor(epoch_us(trigger_time) / {d})::BIGINT AS bucket,
                   min(trigger_time) AS t0, max(trigger_time) AS t1
            FROM trig GROUP BY ALL
        ) {bound_join}
    ),
    ev AS (
        SELECT DISTINCT al.tenant{_cols(g, "al.")}, al.bucket, m.event_id, m.time
        FROM al JOIN m ON m.tenant = al.tenant{on_group}
         AND m.time >= al.t0 - INTERVAL {w} MICROSECONDS AND m.time <= al.t1
    )
    SELECT tenant{_cols(g)}, bucket, count(*) AS event_count,
           min(time) AS first_seen, max(time) AS last_seen,
           list(event_id ORDER BY time, event_id)[1:{MAX_EVIDENCE_IDS}] AS event_ids
    FROM ev GROUP BY ALL ORDER BY tenant, bucket{_cols(g)}
    """


def _materialise_polars(con: duckdb.DuckDBPyConnection, rule: Rule) -> None:
    import polars as pl

    frame = pl.from_arrow(con.sql("SELECT * FROM events").to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    con.register("_polars_matched", frame.filter(rule.polars).to_arrow())


def _alert(rule: Rule, row: dict[str, Any]) -> Alert:
    """One result row as its alert, with the deterministic id of the module docstring."""
    group = {c: _plain(row[c]) for c in rule.group_columns}
    group_json = orjson.dumps(group, option=orjson.OPT_SORT_KEYS).decode()
    key = "\x00".join([rule.id, row["tenant"], group_json, str(row["bucket"])])
    return Alert(
        tenant=row["tenant"],
        alert_id=hashlib.sha256(key.encode()).hexdigest()[:32],
        rule_id=rule.id,
        severity=rule.severity,
        title=_title(rule, group),
        group=group_json,
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        event_count=row["event_count"],
        event_ids=tuple(row["event_ids"]),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _title(rule: Rule, group: dict[str, Any]) -> str:
    try:
        return rule.title.format_map(_Missing(group))
    except (ValueError, IndexError):
        return rule.title
