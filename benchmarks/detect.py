"""Detection benchmark (#5, speed): the built-in rule pack over a lake of N events.

The lake is the benchmarks' cached one (`benchmarks/dataset.py`: 20 tenants x 30 days
ending 2026-10-31, seed 4, under `benchmarks/results/query-cache-<N>/seed-4/`), worked on
as a copy (data files hard-linked, logs copied) because a detection run writes its state,
its lock and the `alerts` Delta table into the lake.

Measured, beside baselines run in the same process on the same files:

- backfill: `detect.runner.run(lake, rules, since=<first day>, until=<day after the last>)`
  for the whole pack and for each rule alone (`[rule]`); events/s per rule pass = N /
  seconds. The alerts table and the detection state are removed before each repeat, so
  every repeat does the same work (alert upsert included).
- baselines: each rule as one plain DuckDB SQL query over `read_parquet(<all data files of
  the lake>)` (window functions: a count, a distinct count, or a filtered count of step-1
  events before each step-2 event; the sql rule's own query), returning one row per
  (tenant, group, dedup bucket) with a trigger: the alerts the rule should give, without
  the evidence lists.
- incremental: after one full run (state saved), each repeat appends 100k fresh events
  (the latest day, over the 20 tenants, generated like the cache's, plus a planted brute
  force: 12 failed logins of a new account in 4 minutes) with `lake.write.append`, outside
  the clock, then times `detect.runner.run(lake, rules)`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from benchmarks.common import summary, timed
from benchmarks.dataset import (
    DAYS,
    END,
    FIRST_DAY,
    SEED,
    TENANTS,
    ensure_cache,
    epoch_us,
    generate_batch,
    lake_files,
    midnight,
    reset_detection,
    sorted_times,
    working_copy,
)
from detect.model import Rule, load_rules
from detect.runner import RunResult
from detect.runner import run as detect_run
from lake.log import generate_signer
from lake.query import HIVE
from lake.storage import Lake
from lake.write import append

NEW_EVENTS: Final = 100_000
PLANTED: Final = 12  # failed logins of the planted brute force (the rule fires at 10)
PLANTED_EVERY: Final = timedelta(seconds=20)
GOAL_EVENTS_PER_S: Final = 2_000_000
GOAL_INCREMENTAL_S: Final = 2.0
PACK: Final = "pack (all rules)"

_US_PER_DAY: Final = 86_400_000_000


def log(message: str) -> None:
    print(f"[detect] {message}", file=sys.stderr, flush=True)


# -- baselines: each rule as one plain DuckDB query ----------------------------------------


def _bucket(rule: Rule, col: str = "time") -> str:
    d = int(rule.dedup_period.total_seconds()) * 1_000_000
    return f"floor(epoch_us({col}) / {d})::BIGINT"


def _window(rule: Rule, by: str) -> str:
    w = int(rule.window.total_seconds())
    return (
        f"PARTITION BY tenant, {by} ORDER BY time "
        f"RANGE BETWEEN INTERVAL {w} SECOND PRECEDING AND CURRENT ROW"
    )


def _counted(rule: Rule, where: str, by: str, counter: str) -> str:
    """Threshold/distinct: rows of (tenant, group, bucket) where the window count >= N."""
    distinct = f", {rule.distinct}" if rule.distinct else ""
    return f"""
    WITH m AS (SELECT tenant, {by}, time{distinct} FROM events WHERE {where}),
    t AS (SELECT tenant, {by}, time, {counter} OVER ({_window(rule, by)}) AS n FROM m)
    SELECT tenant, {by}, {_bucket(rule)} AS bucket, count(*) AS triggers
    FROM t WHERE n >= {rule.threshold} GROUP BY ALL"""


def _ordered(rule: Rule, first: str, then: str, by1: str, by2: str, min_count: int) -> str:
    """Sequence: rows of (tenant, key, bucket) with a step-2 event preceded by enough step 1."""
    return f"""
    WITH m AS (
        SELECT tenant, {by1} AS k, time, true AS first FROM events WHERE {first}
        UNION ALL SELECT tenant, {by2} AS k, time, false FROM events WHERE {then}
    ),
    t AS (
        SELECT tenant, k, time, first,
               count(*) FILTER (WHERE first) OVER ({_window(rule, "k")}) AS n FROM m
    )
    SELECT tenant, k, {_bucket(rule)} AS bucket, count(*) AS triggers
    FROM t WHERE NOT first AND n >= {min_count} GROUP BY ALL"""


def baseline_sql(rule: Rule) -> str | None:
    """The rule as one plain query over `events`, written by hand (None: no baseline)."""
    failed_login = "category = 'authentication' AND action = 'login' AND outcome = 'failure'"
    if rule.id == "auth.brute_force":
        return _counted(rule, failed_login, "actor_id", "count(*)")
    if rule.id == "auth.password_spray":
        where = f"{failed_login} AND actor_ip IS NOT NULL"
        return _counted(rule, where, "actor_ip", "count(DISTINCT actor_id)")
    if rule.id == "flag.mass_change":
        return _counted(
            rule, "category = 'flag_change' AND action = 'flag.update'", "actor_id", "count(*)"
        )
    if rule.id == "recovery.spree":
        where = (
            "category = 'account_recovery' AND action IN ('recovery.request', 'recovery.complete')"
        )
        return _counted(rule, where, "actor_id", "count(DISTINCT target_id)")
    if rule.id == "auth.success_after_failures":
        success = failed_login.replace("'failure'", "'success'")
        return _ordered(rule, failed_login, success, "actor_id", "actor_id", 5)
    if rule.id == "admin.grant_then_sensitive":
        grant = "category = 'admin_action' AND action = 'role.grant' AND outcome = 'success'"
        sensitive = "action IN ('key.create', 'key.export', 'user.delete')"
        return _ordered(rule, grant, sensitive, "target_id", "actor_id", 1)
    if rule.kind == "sql" and rule.sql:
        query = rule.sql.strip().rstrip(";")
        g = ", ".join(rule.group_by)
        return (
            f"WITH u AS ({query}) SELECT tenant, {g}, {_bucket(rule)} AS bucket, "
            "count(*) AS triggers FROM u GROUP BY ALL"
        )
    return None  # ingest.silence: judged against the run's clock, no batch equivalent


def run_baseline(files: list[str], sql: str) -> int:
    """One fresh connection (as each detection run has), a view over every data file."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listing}], {HIVE})")
        # sql rules draw candidates from _targets: for a backfill, every tenant, all time
        con.execute(
            "CREATE VIEW _targets AS SELECT DISTINCT tenant, "
            "TIMESTAMPTZ '0001-01-01 00:00:00+00' AS lo, "
            "TIMESTAMPTZ '9999-12-31 00:00:00+00' AS hi FROM events"
        )
        return len(con.sql(sql).fetchall())
    finally:
        con.close()


# -- new events for the incremental runs ---------------------------------------------------


def new_events(k: int, events: int, seed: int) -> tuple[pa.Table, str, str]:
    """The k-th batch of NEW_EVENTS fresh events on the lake's last day, and its planted
    brute force's (tenant, actor).

    Background: the cache's generator (`generate_batch`, its diurnal `sorted_times` folded
    onto the last day), ids numbered after the N cached events and earlier batches.
    """
    rng = np.random.default_rng([seed, 0xDE7EC7, k])
    first = epoch_us(midnight(FIRST_DAY))
    times = sorted_times(NEW_EVENTS - PLANTED, rng)
    times = np.sort(first + (DAYS - 1) * _US_PER_DAY + (times - first) % _US_PER_DAY)
    index = events + k * NEW_EVENTS
    background = generate_batch(times, index, seed, 1_000_000 + k)

    tenant, actor = TENANTS[k % len(TENANTS)], f"intruder-{k:03d}"
    start = midnight(END) + timedelta(hours=2, minutes=5 * (k % 200))
    step = int(PLANTED_EVERY / timedelta(microseconds=1))
    at = epoch_us(start)
    planted = generate_batch(
        np.arange(PLANTED, dtype=np.int64) * step + at,
        index + NEW_EVENTS - PLANTED,
        seed,
        2_000_000 + k,
    )
    fixed = {
        "tenant": tenant,
        "category": "authentication",
        "action": "login",
        "outcome": "failure",
        "severity": "low",
        "actor_id": actor,
        "actor_type": "user",
        "source": "web",
        "target_type": None,
        "target_id": None,
    }
    for name, value in fixed.items():
        i = planted.schema.get_field_index(name)
        planted = planted.set_column(
            i, planted.schema.field(i), pa.array([value] * PLANTED, pa.string())
        )
    return pa.concat_tables([background, planted]), tenant, actor


# -- the benchmark -------------------------------------------------------------------------


def _alert_counts(result: RunResult) -> dict[str, int]:
    return {r.rule_id: r.alerts for r in result.rules}


@dataclass
class _Timer:
    """Times runs over the lake's N events and keeps the summaries in the order they ran."""

    events: int
    repeat: int
    results: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        name: str,
        fn: Callable[[], None],
        setup: Callable[[], None] | None = None,
        passes: int = 1,
    ) -> dict[str, Any]:
        r = summary(name, timed(fn, self.repeat, setup), self.events * passes)
        self.results.append(r)
        log(f"{name}: median {r['median_s']:.2f} s ({r['events_per_s']:,.0f} events/s)")
        return r


def run(events: int, repeat: int, seed: int = SEED) -> dict[str, Any]:
    """Backfill (pack and per rule), baselines and incremental runs over the cached lake."""
    cache, meta = ensure_cache(events, seed)
    rules = load_rules()
    timer = _Timer(events, repeat)
    with tempfile.TemporaryDirectory(prefix="auditlake-detect-bench-") as tmp:
        lake = working_copy(cache, Path(tmp), log)
        files = [str(p) for p in lake_files(lake)]
        alerts = _backfill(lake, rules, timer)
        baseline_groups = _baselines(files, rules, timer)
        full_run, incremental = _incremental(lake, rules, timer, seed)
    out: dict[str, Any] = {
        "events": events,
        "seed": seed,
        "repeat": repeat,
        "rules": [r.summary() | {"alerts": alerts[r.id]} for r in rules],
        "build": meta,
        "results": timer.results,
        "baseline_groups": baseline_groups,
        "full_run": full_run,
        "incremental": incremental,
    }
    out["markdown"] = markdown(out)
    return out


def _backfill(lake: Lake, rules: list[Rule], timer: _Timer) -> dict[str, int]:
    """Each rule alone, then the pack, over every day; the alerts of each rule alone."""
    since = midnight(FIRST_DAY)
    until = midnight(END + timedelta(days=1))
    alerts: dict[str, int] = {}

    def reset() -> None:
        reset_detection(lake)

    for rule in rules:
        last: list[RunResult] = []

        def one(rule: Rule = rule, last: list[RunResult] = last) -> None:
            last[:] = [detect_run(lake, [rule], since=since, until=until)]

        timer.record(f"backfill: {rule.id}", one, reset)
        alerts[rule.id] = _alert_counts(last[0])[rule.id]
    pack_last: list[RunResult] = []

    def pack() -> None:
        pack_last[:] = [detect_run(lake, rules, since=since, until=until)]

    timer.record(f"backfill: {PACK}", pack, reset, passes=len(rules))
    pack_alerts = _alert_counts(pack_last[0])
    if pack_alerts != alerts:
        log(f"WARNING: the pack's alerts differ from the rules' alone: {pack_alerts}")
    return alerts


def _baselines(files: list[str], rules: list[Rule], timer: _Timer) -> dict[str, int]:
    """Plain DuckDB over the same files; the rows each rule's query gives."""
    groups: dict[str, int] = {}
    for rule in rules:
        sql = baseline_sql(rule)
        if sql is None:
            continue
        groups[rule.id] = run_baseline(files, sql)

        def plain(sql: str = sql) -> None:
            run_baseline(files, sql)

        timer.record(f"baseline: {rule.id}", plain)
    return groups


def _incremental(
    lake: Lake, rules: list[Rule], timer: _Timer, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One full run (state saved), then fresh events appended before each timed run."""
    reset_detection(lake)
    t0 = time.perf_counter()
    full = detect_run(lake, rules)
    full_s = time.perf_counter() - t0
    log(f"first full run (mode full, state saved): {full_s:.1f} s")
    signer = generate_signer("bench-detect")
    append_s: list[float] = []
    planted: list[tuple[str, str]] = []
    runs: list[RunResult] = []

    def add_events() -> None:
        table, tenant, actor = new_events(len(planted), timer.events, seed)
        t1 = time.perf_counter()
        append(lake, table, signer)
        append_s.append(time.perf_counter() - t1)
        planted.append((tenant, actor))

    def incremental() -> None:
        runs.append(detect_run(lake, rules))

    timer.record(f"incremental: pack after +{NEW_EVENTS:,} events", incremental, add_events)
    incremental_runs = [
        {
            "modes": sorted({r.mode for r in res.rules}),
            "new_alerts": {r.rule_id: r.new for r in res.rules if r.new},
            "changed_alerts": {r.rule_id: r.changed for r in res.rules if r.changed},
            "planted_caught": _caught(res, tenant, actor),
        }
        for (tenant, actor), res in zip(planted, runs, strict=True)
    ]
    return {"seconds": full_s, "alerts": _alert_counts(full)}, {
        "new_events": NEW_EVENTS,
        "append_s": append_s,
        "runs": incremental_runs,
        "alerts_table_rows": lake.read_alerts().num_rows,
    }


def _caught(result: RunResult, tenant: str, actor: str) -> bool:
    """The run gave a new brute-force alert for the planted (tenant, actor)."""
    return any(
        a.rule_id == "auth.brute_force"
        and a.tenant == tenant
        and a.group is not None
        and orjson.loads(a.group).get("actor_id") == actor
        for a in result.new
    )


def markdown(r: dict[str, Any]) -> str:
    n = r["events"]
    by = {x["name"]: x for x in r["results"]}
    rules = r["rules"]
    lines = [
        f"## Detection (#5): {n:,} events, {len(TENANTS)} tenants x {DAYS} days; "
        f"{r['repeat']} repeats",
        "",
        f"Backfill: `detect.runner.run(lake, rules, since={FIRST_DAY}, until="
        f"{END + timedelta(days=1)})` over a copy of the cached lake; alerts table and state "
        "removed before each repeat. Baseline: the rule as one plain DuckDB query over "
        "`read_parquet(<the same data files>)` giving one row per (tenant, group, dedup "
        "bucket) that fires, without evidence lists. Events/s per rule pass = N / seconds "
        f"(goal >= {GOAL_EVENTS_PER_S:,}).",
        "",
        "| rule | kind | alerts | baseline rows | min s | median s | max s | "
        "events/s per rule pass | baseline median s | ours / baseline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = r["baseline_groups"]
    for rule in rules:
        x = by[f"backfill: {rule['id']}"]
        b = by.get(f"baseline: {rule['id']}")
        rows = f"{groups[rule['id']]:,}" if rule["id"] in groups else "-"
        lines.append(
            f"| `{rule['id']}` | {rule['kind']} | {rule['alerts']:,} | {rows} | "
            f"{x['min_s']:.2f} | {x['median_s']:.2f} | "
            f"{x['max_s']:.2f} | {x['events_per_s']:,.0f} | "
            + (f"{b['median_s']:.2f} | {x['median_s'] / b['median_s']:.1f}x |" if b else "- | - |")
        )
    p = by[f"backfill: {PACK}"]
    base_total = sum(by[f"baseline: {x['id']}"]["median_s"] for x in rules if x["id"] in groups)
    ours_same = sum(by[f"backfill: {x['id']}"]["median_s"] for x in rules if x["id"] in groups)
    lines.append(
        f"| {PACK} | | {sum(x['alerts'] for x in rules):,} | | {p['min_s']:.2f} | "
        f"{p['median_s']:.2f} | {p['max_s']:.2f} | {p['events_per_s']:,.0f} (N / s: "
        f"{n / p['median_s']:,.0f}) | | |"
    )
    inc = by[f"incremental: pack after +{NEW_EVENTS:,} events"]
    runs = r["incremental"]["runs"]
    slow = [x["id"] for x in rules if by[f"backfill: {x['id']}"]["events_per_s"] < 2e6]
    lines += [
        "",
        "| incremental run (pack) | min s | median s | max s |",
        "|---|---|---|---|",
        f"| after +{NEW_EVENTS:,} new events on top of {n:,} (fresh events each repeat) | "
        f"{inc['min_s']:.2f} | {inc['median_s']:.2f} | {inc['max_s']:.2f} |",
        "",
        f"- backfill goal (>= {GOAL_EVENTS_PER_S:,} events/s per rule pass): "
        + (f"not met by {', '.join(f'`{s}`' for s in slow)}" if slow else "met by every rule")
        + f"; whole pack {p['events_per_s']:,.0f}/s per rule pass "
        f"({'met' if p['events_per_s'] >= GOAL_EVENTS_PER_S else 'not met'})",
        f"- against the baselines: the rules that have one take {ours_same:.2f} s one by one, "
        f"their plain queries {base_total:.2f} s ({ours_same / base_total:.1f}x)",
        f"- incremental goal (< {GOAL_INCREMENTAL_S:.0f} s): "
        f"{'met' if inc['median_s'] < GOAL_INCREMENTAL_S else 'not met'} "
        f"(median {inc['median_s']:.2f} s; first full run {r['full_run']['seconds']:.1f} s; "
        f"appends of {NEW_EVENTS:,} events, untimed: "
        + ", ".join(f"{s:.1f}" for s in r["incremental"]["append_s"])
        + " s)",
        "- incremental new alerts per repeat: "
        + "; ".join(
            ", ".join(f"{k} {v}" for k, v in x["new_alerts"].items()) or "none" for x in runs
        )
        + f"; planted brute force caught: {sum(x['planted_caught'] for x in runs)}/{len(runs)}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    count = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000
    print(run(count, 3)["markdown"])
