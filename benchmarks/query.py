"""Query benchmark (#4): point search and aggregation over a lake of N events.

The lake is benchmarks/dataset.py's cached one (20 tenants x 30 days ending 2026-10-31,
built through the real write path, with the same events as JSON Lines and as a few big
plain Parquet files).

Measured, each beside baselines run in the same process on the same events:

- point search: one actor of one tenant over 7 days, newest first, limit 100, through
  `QuerySession.search(parse_query(...)).to_arrow()`; once more with a `ReadAudit`, whose
  cost is reported on its own;
- aggregation: failures per hour of one tenant over 30 days through `QuerySession.sql`;
- both before and after `lake.storage.optimize` (time and file counts reported);
- bytes on disk per event: the lake, PostgreSQL (heap + TOAST + index) and the JSONL.

Baselines: a private PostgreSQL server (benchmarks/postgres.py: `initdb` in a temp dir,
B-tree index on (tenant, actor_id, time), `VACUUM ANALYZE`), timed with psql's `\\timing`
inside one session; and plain DuckDB over the plain Parquet files (one file per ~1M rows,
in arrival order, no partitioning, no sorting by tenant or actor).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import postgres
from benchmarks.common import summary, timed
from benchmarks.dataset import (
    DAYS,
    SEED,
    TENANTS,
    ensure_cache,
    lake_files,
    log,
    midnight,
    working_copy,
)
from lake.log import generate_signer
from lake.query import QuerySession, ReadAudit, parse_query
from lake.secrets import AccessPolicy
from lake.storage import Lake, optimize

TENANT: Final = "t03"
WINDOW: Final = (date(2026, 10, 20), date(2026, 10, 27))
TARGET_ACTOR_EVENTS: Final = 150  # more than LIMIT, so the limit cuts
LIMIT: Final = 100
AGG_SQL: Final = (
    "SELECT date_trunc('hour', time) AS hour, count(*) AS failures FROM events "
    f"WHERE tenant = '{TENANT}' AND outcome = 'failure' GROUP BY 1 ORDER BY 1"
)

PG_SEARCH: Final = "search: PostgreSQL, B-tree (tenant, actor_id, time)"
PG_AGG: Final = "aggregation: PostgreSQL"
PG_AGG_INDEXED: Final = "aggregation: PostgreSQL with a 2nd index (tenant, outcome, time)"
AUDITED: Final = "search: auditlake with ReadAudit, after optimize"
DUCK_SEARCH: Final = "search: DuckDB, plain Parquet"
DUCK_AGG: Final = "aggregation: DuckDB, plain Parquet"


def _dir_bytes(path: Path) -> tuple[int, int, int]:
    """(apparent bytes, allocated bytes, files) under `path`."""
    size = blocks = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            st = (Path(root) / name).stat()
            size += st.st_size
            blocks += st.st_blocks * 512
            files += 1
    return size, blocks, files


def _row_groups(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)


def _ms(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k != "events_per_s"}
    for k in ("min", "median", "max"):
        out[f"{k}_ms"] = out.pop(f"{k}_s") * 1000
    return out


@dataclass
class _Runs:
    """What the paths measured and returned, in the order they ran."""

    repeat: int
    results: list[dict[str, Any]] = field(default_factory=list)
    found: dict[str, list[str]] = field(default_factory=dict)  # search: event ids per path
    agg_rows: dict[str, list[int]] = field(default_factory=dict)  # failures per hour per path

    def record(self, name: str, times: list[float]) -> dict[str, Any]:
        r = _ms(summary(name, times, 1))
        self.results.append(r)
        log(f"{name}: median {r['median_ms']:.1f} ms")
        return r


@dataclass(frozen=True)
class _Search:
    """The point search: one actor of TENANT in WINDOW."""

    actor: str
    actor_events: int
    since: datetime
    until: datetime

    @property
    def query(self) -> str:
        return f"tenant:{TENANT} actor:{self.actor} created:>={WINDOW[0]} created:<{WINDOW[1]}"


def _choose_actor(con: duckdb.DuckDBPyConnection, plain: list[str]) -> _Search:
    """The actor of the tenant with about TARGET_ACTOR_EVENTS in the window."""
    since, until = midnight(WINDOW[0]), midnight(WINDOW[1])
    chosen = con.sql(
        "SELECT actor_id, count(*) AS n FROM read_parquet(?) WHERE tenant = ? AND time >= ? "
        "AND time < ? GROUP BY 1 ORDER BY abs(n - ?), actor_id LIMIT 1",
        params=[plain, TENANT, since, until, TARGET_ACTOR_EVENTS],
    ).to_arrow_table()
    assert chosen is not None
    actor, actor_events = chosen.column("actor_id")[0].as_py(), chosen.column("n")[0].as_py()
    return _Search(actor, actor_events, since, until)


def run(events: int, repeat: int, seed: int = SEED) -> dict[str, Any]:
    """Build or reuse the cached lake, then measure our query layer beside the baselines."""
    cache, meta = ensure_cache(events, seed)
    plain = sorted(str(p) for p in (cache / "plain").glob("*.parquet"))
    runs = _Runs(repeat)
    plain_con = duckdb.connect()
    plain_con.execute("SET TimeZone = 'UTC'")
    search = _choose_actor(plain_con, plain)
    log(f"point search: {search.query} ({search.actor_events} events in the window)")
    lake = _auditlake(cache, search, runs)
    _duckdb(plain_con, plain, search, runs)
    plain_con.close()
    pg = _postgres(plain, search, runs)
    jsonl_bytes = (cache / "events.jsonl").stat().st_size
    plain_bytes = sum(Path(p).stat().st_size for p in plain)
    sizes = {
        "jsonl": jsonl_bytes,
        "postgres_total": pg.pop("total"),
        "postgres_heap": pg.pop("heap"),
        "postgres_toast_etc": pg.pop("toast_etc"),
        "postgres_index": pg.pop("index"),
        **lake.pop("bytes"),
        "plain_parquet": plain_bytes,
    }
    checks = _checks(runs)
    out: dict[str, Any] = {
        "events": events,
        "seed": seed,
        "repeat": repeat,
        "query": search.query,
        "actor_events_in_window": search.actor_events,
        "build": meta,
        "results": runs.results,
        "optimize": lake["optimize"],
        "lake_files": lake["lake_files"],
        "bytes": sizes,
        "postgres": pg,
        "checks": checks,
    }
    out["markdown"] = markdown(out)
    return out


def _auditlake(cache: Path, search: _Search, runs: _Runs) -> dict[str, Any]:
    """Our query layer on a working copy, before and after optimize, then with ReadAudit."""
    with tempfile.TemporaryDirectory(prefix="auditlake-query-bench-") as tmp:
        work = Path(tmp)
        lake = working_copy(cache, work)
        principal = AccessPolicy(work / "home").principal("admin")
        files_before = len(lake_files(lake))
        row_groups_before = _row_groups(lake_files(lake))
        _ours(lake, principal, search, runs, "before optimize")
        t0 = time.perf_counter()
        opt = optimize(lake)
        optimize_s = time.perf_counter() - t0
        files_after = len(lake_files(lake))
        row_groups_after = _row_groups(lake_files(lake))
        log(f"optimize: {optimize_s:.1f} s, {files_before} -> {files_after} files")
        _ours(lake, principal, search, runs, "after optimize")

        # One search with the read audit on (a signed, sealed commit per search).
        audit = ReadAudit(lake, generate_signer("bench-audit"), source="bench")
        audited = QuerySession(lake, principal, audit, interface="bench")
        query = search.query
        audited.search(parse_query(query), limit=LIMIT).to_arrow()  # creates the audit tenant
        runs.record(
            AUDITED,
            timed(lambda: audited.search(parse_query(query), limit=LIMIT).to_arrow(), runs.repeat),
        )

        # Bytes on disk (after optimize: plus the audit events, a few hundred bytes each).
        snapshot_bytes = sum(p.stat().st_size for p in lake_files(lake))
        lake_size, lake_alloc, lake_count = _dir_bytes(work / "lake")
        tiles_size, tiles_alloc, tiles_count = _dir_bytes(work / "lake" / "tiles")
        cached_size, cached_alloc, _ = _dir_bytes(cache / "lake")
        cached_snapshot = sum(p.stat().st_size for p in lake_files(Lake.open(cache / "lake")))
    return {
        "optimize": {
            "seconds": optimize_s,
            "files_before": files_before,
            "files_after": files_after,
            "row_groups_before": row_groups_before,
            "row_groups_after": row_groups_after,
            **opt.as_dict(),
        },
        "lake_files": lake_count,
        "bytes": {
            "lake_snapshot_before_optimize": cached_snapshot,
            "lake_snapshot_after_optimize": snapshot_bytes,
            "lake_dir_before_optimize": cached_size,
            "lake_dir_before_optimize_allocated": cached_alloc,
            "lake_dir_after_optimize": lake_size,
            "lake_dir_after_optimize_allocated": lake_alloc,
            "tiles": tiles_size,
            "tiles_allocated": tiles_alloc,
            "tile_files": tiles_count,
        },
    }


def _ours(lake: Lake, principal: Any, search: _Search, runs: _Runs, stage: str) -> None:
    session = QuerySession(lake, principal, None, interface="bench")
    query = search.query

    def search_() -> pa.Table:
        return session.search(parse_query(query), limit=LIMIT).to_arrow()

    def aggregate() -> pa.Table:
        return session.sql(AGG_SQL).to_arrow()

    def aggregate_new_session() -> None:
        QuerySession(lake, principal, None, interface="bench").sql(AGG_SQL).to_arrow()

    runs.found[stage] = sorted(search_().column("event_id").to_pylist())
    runs.agg_rows[stage] = aggregate().column("failures").to_pylist()
    runs.record(f"search: auditlake, {stage}", timed(search_, runs.repeat))
    runs.record(f"aggregation: auditlake, {stage}", timed(aggregate, runs.repeat))
    runs.record(
        f"aggregation: auditlake, {stage}, new QuerySession each time",
        timed(aggregate_new_session, runs.repeat),
    )


def _duckdb(con: duckdb.DuckDBPyConnection, plain: list[str], search: _Search, runs: _Runs) -> None:
    """Plain DuckDB over the plain files."""
    search_sql = (
        "SELECT * FROM read_parquet(?) WHERE tenant = ? AND actor_id = ? AND time >= ? "
        f"AND time < ? ORDER BY time DESC LIMIT {LIMIT}"
    )
    search_params = [plain, TENANT, search.actor, search.since, search.until]
    agg_plain = AGG_SQL.replace("FROM events", "FROM read_parquet(?)")

    def plain_query(sql: str, params: list[Any]) -> pa.Table:
        result = con.sql(sql, params=params).to_arrow_table()
        assert result is not None
        return result

    runs.found["duckdb"] = sorted(
        plain_query(search_sql, search_params).column("event_id").to_pylist()
    )
    runs.agg_rows["duckdb"] = plain_query(agg_plain, [plain]).column("failures").to_pylist()
    runs.record(DUCK_SEARCH, timed(lambda: plain_query(search_sql, search_params), runs.repeat))
    runs.record(DUCK_AGG, timed(lambda: plain_query(agg_plain, [plain]), runs.repeat))


def _postgres(plain: list[str], search: _Search, runs: _Runs) -> dict[str, Any]:
    """PostgreSQL: load, time, explain, sizes, then the aggregation with an index for it."""
    pg_search = (
        f"SELECT * FROM events WHERE tenant = '{TENANT}' AND actor_id = '{search.actor}' "
        f"AND time >= '{search.since.isoformat()}' AND time < '{search.until.isoformat()}' "
        f"ORDER BY time DESC LIMIT {LIMIT}"
    )
    with postgres.postgres() as pg:
        pg_load_s = postgres.load_postgres(pg, plain)
        runs.found["postgres"] = sorted(
            pg.psql(pg_search.replace("SELECT *", "SELECT event_id", 1) + ";").split()
        )
        runs.agg_rows["postgres"] = [
            int(line.rsplit("|", 1)[1]) for line in pg.psql(AGG_SQL + ";").splitlines() if line
        ]
        runs.record(PG_SEARCH, pg.timed(pg_search, runs.repeat))
        runs.record(PG_AGG, pg.timed(AGG_SQL, runs.repeat))
        plans = {
            name: postgres.explain(pg, sql)
            for name, sql in (("search", pg_search), ("aggregation", AGG_SQL))
        }
        pg_total, pg_heap, pg_index, pg_table = postgres.sizes(pg)
        pg_version = pg.psql("SHOW server_version;").strip()
        # Not part of the sizes above: what an index made for the aggregation gives.
        pg.psql("CREATE INDEX events_tenant_outcome_time ON events (tenant, outcome, time);")
        pg.psql("VACUUM ANALYZE events;")
        runs.record(PG_AGG_INDEXED, pg.timed(AGG_SQL, runs.repeat))
    return {
        "version": pg_version,
        "settings": postgres.PG_SETTINGS,
        "load_s": pg_load_s,
        "explain": plans,
        "total": pg_total,
        "heap": pg_heap,
        "toast_etc": pg_table - pg_heap,
        "index": pg_index,
    }


def _checks(runs: _Runs) -> dict[str, Any]:
    found, agg_rows = runs.found, runs.agg_rows
    checks = {
        "search_rows": len(found["postgres"]),
        "search_rows_match": len({tuple(v) for v in found.values()}) == 1,
        "aggregation_rows": len(agg_rows["postgres"]),
        "aggregation_failures": sum(agg_rows["postgres"]),
        "aggregation_match": len({tuple(v) for v in agg_rows.values()}) == 1,
    }
    if not (checks["search_rows_match"] and checks["aggregation_match"]):
        log(f"WARNING: the paths disagree: {checks}")
    return checks


def _explained(pg: dict[str, Any], name: str) -> str:
    e = pg["explain"][name]
    return f"{e['planning_ms'] + e['execution_ms']:.2f} ms ({e['scan']})"


def _bytes_table(b: dict[str, int], n: int) -> list[str]:
    """Bytes on disk per store, in MB and per event."""
    lake_label = "auditlake: whole lake dir (Delta logs, checkpoints, tiles)"
    rows = [
        ("JSON Lines (wire form)", b["jsonl"]),
        ("PostgreSQL: pg_total_relation_size (heap + TOAST + index)", b["postgres_total"]),
        ("PostgreSQL: of which the index", b["postgres_index"]),
        ("auditlake: events Parquet, snapshot before optimize", b["lake_snapshot_before_optimize"]),
        ("auditlake: events Parquet, snapshot after optimize", b["lake_snapshot_after_optimize"]),
        (f"{lake_label}, before optimize", b["lake_dir_before_optimize"]),
        (f"{lake_label}, before optimize, allocated", b["lake_dir_before_optimize_allocated"]),
        (f"{lake_label}, after optimize (old files kept)", b["lake_dir_after_optimize"]),
        (f"auditlake: of which tiles ({b['tile_files']:,} files)", b["tiles"]),
        ("plain Parquet (DuckDB baseline)", b["plain_parquet"]),
    ]  # fmt: skip
    return ["", "| bytes on disk | MB | B/event |", "|---|---|---|"] + [
        f"| {name} | {v / 1e6:,.0f} | {v / n:.0f} |" for name, v in rows
    ]


def markdown(r: dict[str, Any]) -> str:
    n = r["events"]
    by = {x["name"]: x for x in r["results"]}

    def med(name: str) -> float:
        return float(by[name]["median_ms"])

    lines = [
        f"## Query (#4): {n:,} events, {len(TENANTS)} tenants x {DAYS} days; "
        f"{r['repeat']} repeats after one warm-up, warm caches",
        "",
        f"Point search `{r['query']}` ({r['actor_events_in_window']} matching events), "
        f"newest first, limit {LIMIT}, all columns, into Arrow. Aggregation: failures per "
        f"hour of {TENANT} over {DAYS} days (`QuerySession.sql`), into Arrow.",
        "",
        "| path | min ms | median ms | max ms |",
        "|---|---|---|---|",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['name']} | {x['min_ms']:.1f} | {x['median_ms']:.1f} | {x['max_ms']:.1f} |"
        )
    b = r["bytes"]
    lines += _bytes_table(b, n)
    o, pg, c = r["optimize"], r["postgres"], r["checks"]
    lines += [
        "",
        f"optimize: {o['seconds']:.1f} s; events data files {o['files_before']:,} -> "
        f"{o['files_after']:,}, row groups {o['row_groups_before']:,} -> "
        f"{o['row_groups_after']:,}.",
        f"PostgreSQL {pg['version']}: times are psql `\\timing` in one session over a Unix "
        "socket (client round trip, result rows transferred and discarded); load (COPY + "
        f"index + VACUUM ANALYZE) {pg['load_s']:.0f} s; EXPLAIN (ANALYZE, TIMING OFF) "
        f"planning + execution: search {_explained(pg, 'search')}, aggregation "
        f"{_explained(pg, 'aggregation')}.",
        f"Same results on every path: search ({c['search_rows']} rows) "
        f"{'yes' if c['search_rows_match'] else 'NO'}, aggregation ({c['aggregation_rows']} "
        f"hours, {c['aggregation_failures']:,} failures) "
        f"{'yes' if c['aggregation_match'] else 'NO'}.",
        "",
    ]
    pg_search = med(PG_SEARCH)
    pg_agg = med(PG_AGG)
    for stage in ("before optimize", "after optimize"):
        s = med(f"search: auditlake, {stage}")
        a = med(f"aggregation: auditlake, {stage}")
        lines.append(
            f"- {stage}: search {s:.1f} ms = {s / pg_search:.1f}x PostgreSQL "
            f"(goal < 50 ms: {'met' if s < 50 else 'not met'}); aggregation "
            f"{pg_agg / a:.1f}x faster than PostgreSQL (goal >= 3x: "
            f"{'met' if pg_agg / a >= 3 else 'not met'}; "
            f"{med(PG_AGG_INDEXED) / a:.2f}x against PostgreSQL with an index for it)"
        )
    audit_cost = med(AUDITED) - med("search: auditlake, after optimize")
    lake_b = b["lake_dir_before_optimize"]
    lines += [
        f"- read audit: +{audit_cost:.0f} ms per search (median with ReadAudit minus without)",
        f"- bytes/event: whole lake {lake_b / n:.0f} B = 1/{b['postgres_total'] / lake_b:.1f} "
        f"of PostgreSQL's {b['postgres_total'] / n:.0f} B (goal <= 1/5: "
        f"{'met' if b['postgres_total'] / lake_b >= 5 else 'not met'}); JSONL "
        f"{b['jsonl'] / n:.0f} B",
        f"- DuckDB over plain Parquet: search {med(DUCK_SEARCH):.1f} ms, aggregation "
        f"{med(DUCK_AGG):.1f} ms",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000
    res = run(n, 5)
    print(res["markdown"])
