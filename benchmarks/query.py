"""Query benchmark (#4): point search and aggregation over a lake of N events.

The lake (20 tenants x 30 days ending 2026-10-31) is built through the real write path
(`Lake.init` + `lake.write.append` in batches of 500k events, in arrival order) from
events generated with numpy/pyarrow, seeded, and cached under
`benchmarks/results/query-cache-<N>/seed-<seed>/` with the same events as JSON Lines and
as a few big plain Parquet files.

Measured, each beside baselines run in the same process on the same events:

- point search: one actor of one tenant over 7 days, newest first, limit 100, through
  `QuerySession.search(parse_query(...)).to_arrow()`; once more with a `ReadAudit`, whose
  cost is reported on its own;
- aggregation: failures per hour of one tenant over 30 days through `QuerySession.sql`;
- both before and after `lake.storage.optimize` (time and file counts reported);
- bytes on disk per event: the lake, PostgreSQL (heap + TOAST + index) and the JSONL.

Baselines: a private PostgreSQL server (`initdb` in a temp dir, B-tree index on
(tenant, actor_id, time), `VACUUM ANALYZE`), timed with psql's `\\timing` inside one
session; and plain DuckDB over the plain Parquet files (one file per ~1M rows, in
arrival order, no partitioning, no sorting by tenant or actor).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from benchmarks.collector import free_port
from benchmarks.common import RESULTS, summary, timed
from lake.contract import EVENTS_SCHEMA, OUTPUT_SCHEMA, assign_ids, finish, validate
from lake.log import generate_signer
from lake.query import QuerySession, ReadAudit, parse_query
from lake.secrets import AccessPolicy
from lake.storage import Lake, optimize
from lake.write import append

SEED: Final = 4
# Bump when the generator changes: a cache built by another version is rebuilt.
GENERATOR_VERSION: Final = 1
TENANTS: Final = tuple(f"t{i:02d}" for i in range(20))
DAYS: Final = 30
END: Final = date(2026, 10, 31)
FIRST_DAY: Final = END - timedelta(days=DAYS - 1)
ACTORS: Final = 2_000
APPEND_BATCH: Final = 500_000
PLAIN_FILE_ROWS: Final = 1_000_000

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

_US_PER_HOUR: Final = 3_600_000_000
_US_PER_DAY: Final = 24 * _US_PER_HOUR
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

# (action, category, weight)
_ACTIONS: Final = (
    ("login", "authentication", 0.46),
    ("logout", "authentication", 0.14),
    ("mfa.challenge", "authentication", 0.14),
    ("flag.update", "flag_change", 0.09),
    ("key.create", "key_change", 0.015),
    ("key.rotate", "key_change", 0.03),
    ("key.revoke", "key_change", 0.01),
    ("key.export", "key_change", 0.005),
    ("recovery.request", "account_recovery", 0.02),
    ("recovery.complete", "account_recovery", 0.015),
    ("role.grant", "admin_action", 0.012),
    ("role.revoke", "admin_action", 0.008),
    ("user.create", "admin_action", 0.008),
    ("user.delete", "admin_action", 0.002),
)
_CATEGORY_SOURCE: Final = {
    "authentication": "web",
    "flag_change": "flags",
    "key_change": "kms",
    "account_recovery": "web",
    "admin_action": "admin-console",
}
_METHODS: Final = ("password", "webauthn", "sso", "totp", "api", "console")
_REASONS: Final = ("bad_password", "mfa_timeout", "locked", "denied", "expired_token")
_GEOS: Final = ("DE", "FR", "GB", "US", "JP", "BR", "IN", "NL", "SE", "PL", "ES", "CA")
_USER_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "okhttp/4.12.0",
    "auditlake-sdk/0.4 python/3.12",
)
_SERVICES: Final = ("svc-sync", "svc-billing", "svc-ci")
_ADMINS: Final = 25  # ranks below this (and above the services) are admins


def log(message: str) -> None:
    print(f"[query] {message}", file=sys.stderr, flush=True)


# -- generation ----------------------------------------------------------------------------


def _pool(values: list[str] | tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """`values[codes]` as a plain string array, without a Python loop over rows."""
    indices = pa.array(codes.astype(np.int32))
    return pc.cast(pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string())), "string")


def _hex(raw: np.ndarray) -> pa.StringArray:
    """Rows of bytes (n x k uint8) as n lower-case hex strings of 2k characters."""
    n, k = raw.shape
    text = np.empty((n, 2 * k), dtype=np.uint8)
    text[:, 0::2] = _HEX[raw >> 4]
    text[:, 1::2] = _HEX[raw & 0x0F]
    offsets = np.arange(0, 2 * k * (n + 1), 2 * k, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _sorted_times(n: int, rng: np.random.Generator) -> np.ndarray:
    """n event times (µs since the epoch) over the 30 days, diurnal, in arrival order."""
    start = int((datetime.combine(FIRST_DAY, datetime.min.time(), UTC) - _EPOCH).total_seconds())
    hours = np.arange(24)
    weights = 0.3 + np.exp(-(((hours - 14) / 4.0) ** 2))
    day = rng.integers(0, DAYS, n, dtype=np.int64)
    hour = rng.choice(24, n, p=weights / weights.sum()).astype(np.int64)
    within = rng.integers(0, _US_PER_HOUR, n, dtype=np.int64)
    times = start * 1_000_000 + day * _US_PER_DAY + hour * _US_PER_HOUR + within
    times.sort()
    return times


def _actor_cdf() -> np.ndarray:
    ranks = np.arange(ACTORS, dtype=np.float64)
    p = 1.0 / (ranks + 3.0)  # Zipf-ish: the busiest actor ~5% of its tenant's events
    return np.cumsum(p / p.sum())


def generate_batch(times: np.ndarray, first_index: int, seed: int, batch: int) -> pa.Table:
    """Events at `times` (one append batch) as OUTPUT_SCHEMA + received_at, vectorised."""
    rng = np.random.default_rng([seed, batch])
    n = len(times)
    tenant = rng.integers(0, len(TENANTS), n)
    rank = np.minimum(np.searchsorted(_actor_cdf(), rng.random(n)), ACTORS - 1)
    weights = np.array([a[2] for a in _ACTIONS])
    action = rng.choice(len(_ACTIONS), n, p=weights / weights.sum())
    categories = sorted({a[1] for a in _ACTIONS})
    category = np.array([categories.index(a[1]) for a in _ACTIONS])[action]
    is_auth = category == categories.index("authentication")
    u = rng.random(n)
    outcome = np.where(u < 0.08, 1, np.where(u < 0.085, 2, 0))  # success, failure, unknown
    failed = outcome == 1

    names = [*_SERVICES, *(f"user-{r:05d}" for r in range(len(_SERVICES), ACTORS))]
    actor_type = np.where(rank < len(_SERVICES), 0, np.where(rank < _ADMINS, 1, 2))
    risky = np.isin(category, [categories.index(c) for c in ("key_change", "admin_action")])
    export = action == [a[0] for a in _ACTIONS].index("key.export")
    severity = np.where(
        export, np.where(failed, 4, 3), np.where(failed, np.where(risky, 2, 1), 0)
    )  # info, low, medium, high, critical

    # The actor's usual office address, else (10%) a home address.
    away = rng.random(n) < 0.1
    o1 = np.where(away, np.where(rank % 2 == 0, 198, 192), 10)
    o2 = np.where(away, np.where(rank % 2 == 0, 51, 0), tenant)
    o3 = np.where(away, np.where(rank % 2 == 0, 100, 2), rank // 256)
    o4 = np.where(away, rng.integers(1, 255, n), rank % 256)
    ip = pc.binary_join_element_wise(
        *(pc.cast(pa.array(o.astype(np.int64)), pa.string()) for o in (o1, o2, o3, o4)), "."
    )
    ua = np.where(rank < len(_SERVICES), len(_USER_AGENTS) - 1, rank % (len(_USER_AGENTS) - 1))

    # Targets: none for logins, else a user, key or flag of the tenant.
    kinds = ("user", "key", "flag")
    target_pool = [
        *(f"user-{r:05d}" for r in range(ACTORS)),
        *(f"key-{k:04d}" for k in range(200)),
        *(f"flag-{k:03d}" for k in range(300)),
    ]
    target_kind = np.select(
        [category == categories.index(c) for c in ("key_change", "flag_change")], [1, 2], 0
    )
    target_index = np.select(
        [target_kind == 1, target_kind == 2],
        [ACTORS + rng.integers(0, 200, n), ACTORS + 200 + rng.integers(0, 300, n)],
        rng.integers(0, ACTORS, n),
    )
    no_target = pa.array(is_auth)
    target_type = pc.if_else(no_target, pa.scalar(None, pa.string()), _pool(kinds, target_kind))
    target_id = pc.if_else(
        no_target, pa.scalar(None, pa.string()), _pool(target_pool, target_index)
    )
    sources = sorted(set(_CATEGORY_SOURCE.values()))
    source = np.array([sources.index(_CATEGORY_SOURCE[c]) for c in categories])[category]

    # details: canonical JSON (sorted keys, compact) of ~100-150 bytes.
    geo = np.where(rng.random(n) < 0.05, rng.integers(0, len(_GEOS), n), rank % len(_GEOS))
    method = np.where(is_auth, rng.integers(0, 4, n), 4 + rng.integers(0, 2, n))
    reason = np.where(failed, rng.integers(0, len(_REASONS), n), len(_REASONS))
    reasons = [f',"reason":"{r}"' for r in _REASONS] + [""]
    latency = pc.cast(pa.array(rng.integers(3, 900, n)), pa.string())
    ids = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    details = _join(
        '{"geo":"',
        _pool(_GEOS, geo),
        '","latency_ms":',
        latency,
        ',"method":"',
        _pool(_METHODS, method),
        '"',
        _pool(reasons, reason),
        ',"request_id":"',
        _hex(ids[:, :8]),
        '","session":"',
        _hex(ids[:, 8:]),
        '"}',
    )

    utc = pa.timestamp("us", tz="UTC")
    ts = pa.array(times, utc)
    columns = {
        "tenant": _pool(TENANTS, tenant),
        "event_date": pc.cast(ts, pa.date32()),
        "event_id": assign_ids(ts, f"auditlake-bench-{seed}".encode(), first_index),
        "time": ts,
        "category": _pool(categories, category),
        "action": _pool([a[0] for a in _ACTIONS], action),
        "outcome": _pool(("success", "failure", "unknown"), outcome),
        "severity": _pool(("info", "low", "medium", "high", "critical"), severity),
        "actor_id": _pool(names, rank),
        "actor_type": _pool(("service", "admin", "user"), actor_type),
        "actor_ip": ip,
        "user_agent": _pool(_USER_AGENTS, ua),
        "target_type": target_type,
        "target_id": target_id,
        "source": _pool(sources, source),
        "details": details,
    }
    table = pa.table([columns[name] for name in OUTPUT_SCHEMA.names], schema=OUTPUT_SCHEMA)
    received = times + rng.integers(20_000, 2_000_000, n)
    return table.append_column(
        pa.field("received_at", utc, nullable=False), pa.array(received, utc)
    )


def to_jsonl(table: pa.Table) -> bytes:
    """The wire form of generated events, one JSON object a line (no received_at)."""
    col = table.column

    def quoted(name: str) -> pa.Array:
        return _join('"', col(name), '"')

    target = pc.coalesce(
        _join('{"type":', quoted("target_type"), ',"id":', quoted("target_id"), "}"), "null"
    )
    lines = _join(
        '{"tenant":',
        quoted("tenant"),
        ',"id":',
        quoted("event_id"),
        ',"time":"',
        pc.strftime(col("time"), "%Y-%m-%dT%H:%M:%SZ"),
        '","category":',
        quoted("category"),
        ',"action":',
        quoted("action"),
        ',"outcome":',
        quoted("outcome"),
        ',"severity":',
        quoted("severity"),
        ',"actor":{"id":',
        quoted("actor_id"),
        ',"type":',
        quoted("actor_type"),
        ',"ip":',
        quoted("actor_ip"),
        ',"user_agent":',
        quoted("user_agent"),
        '},"target":',
        target,
        ',"source":',
        quoted("source"),
        ',"details":',
        col("details"),
        "}\n",
    )
    arr = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    data: bytes = arr.buffers()[2].to_pybytes()
    return data[start:end]


def _check_against_validator(table: pa.Table, jsonl: bytes, k: int = 2_000) -> None:
    """The generated rows are what the wire validator makes of their JSON Lines."""
    records = [orjson.loads(line) for line in jsonl.split(b"\n")[:k]]
    validated = validate(records, namespace=b"check")
    if validated.rejected:
        raise AssertionError(f"generated events rejected: {validated.rejected[0].issues}")
    want = table.slice(0, k).select(OUTPUT_SCHEMA.names)
    if not finish(validated.table).equals(want):
        raise AssertionError("generated rows differ from the validator's reading of their JSON")


# -- the cached lake -----------------------------------------------------------------------


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


def _lake_files(lake: Lake) -> list[Path]:
    events = Path(lake.base) / "events"
    return [events / f.path for f in lake.data_files(lake.events_table())]


def build_cache(events: int, seed: int, cache: Path) -> dict[str, Any]:
    """Generate the events, append them to a new lake, write the JSONL and plain Parquet."""
    building = cache.with_name(cache.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    signer = generate_signer("bench")
    lake = Lake.init(building / "lake", "bench", signer.verifier_key.encode())
    t0 = time.perf_counter()
    times = _sorted_times(events, np.random.default_rng([seed, 0xFFFF]))
    gen_s = append_s = 0.0
    batches = range(0, events, APPEND_BATCH)
    with (building / "events.jsonl").open("wb") as fh:
        for b, lo in enumerate(batches):
            t1 = time.perf_counter()
            table = generate_batch(times[lo : lo + APPEND_BATCH], lo, seed, b)
            jsonl = to_jsonl(table)
            if b == 0:
                _check_against_validator(table, jsonl)
            fh.write(jsonl)
            t2 = time.perf_counter()
            append(lake, table, signer)
            gen_s += t2 - t1
            append_s += time.perf_counter() - t2
            log(
                f"built batch {b + 1}/{len(batches)} ({lo + table.num_rows:,} events; "
                f"generate {gen_s:.0f} s, append {append_s:.0f} s)"
            )
    # Plain Parquet: the same stored rows in arrival order, ~1M rows a file, DuckDB's
    # default writer settings (Snappy, 122,880-row row groups), no partitions.
    t3 = time.perf_counter()
    plain = building / "plain"
    plain.mkdir()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = [str(p) for p in _lake_files(lake)]
    cols = ", ".join(f'"{n}"' for n in EVENTS_SCHEMA.names)
    for k, lo in enumerate(range(0, events, PLAIN_FILE_ROWS)):
        hi = lo + PLAIN_FILE_ROWS
        bounds = ["time >= ?"] + (["time < ?"] if hi < events else [])
        params: list[Any] = [files, _as_datetime(int(times[lo]))]
        if hi < events:
            params.append(_as_datetime(int(times[hi])))
        con.execute(
            f"COPY (SELECT {cols} FROM read_parquet(?, hive_partitioning=true) "
            f"WHERE {' AND '.join(bounds)} ORDER BY time) "
            f"TO '{plain}/part-{k:03d}.parquet' (FORMAT parquet)",
            params,
        )
    con.close()
    plain_s = time.perf_counter() - t3
    log(f"wrote plain Parquet in {plain_s:.0f} s")
    meta = {
        "generator_version": GENERATOR_VERSION,
        "events": events,
        "seed": seed,
        "generate_and_jsonl_s": gen_s,
        "append_s": append_s,
        "plain_parquet_s": plain_s,
        "total_s": time.perf_counter() - t0,
    }
    (building / "ready.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(cache, ignore_errors=True)
    building.rename(cache)
    return meta


def _as_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def ensure_cache(events: int, seed: int) -> tuple[Path, dict[str, Any]]:
    cache = RESULTS / f"query-cache-{events}" / f"seed-{seed}"
    marker = cache / "ready.json"
    if marker.exists():
        meta: dict[str, Any] = json.loads(marker.read_text())
        if meta.get("generator_version") == GENERATOR_VERSION:
            log(f"using the cached lake in {cache}")
            return cache, meta
    log(f"building a lake of {events:,} events in {cache} (cached for later runs)")
    return cache, build_cache(events, seed, cache)


def _link_or_copy(src: str, dst: str) -> object:
    # Data, tile and checkpoint files are never rewritten in place (new names, or a temp
    # file renamed over the old one), so the working copy may share them with the cache;
    # the Delta logs and lake.json are copied.
    if "/_delta_log/" in src or "/_auditlake/" in src:
        return shutil.copy2(src, dst)
    os.link(src, dst)
    return dst


# -- PostgreSQL ----------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    return versions[-1].parent


PG_SETTINGS: Final = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_wal_size": "8GB",
    "shared_buffers": "2GB",
    "maintenance_work_mem": "1GB",
    "timezone": "UTC",
}


class Postgres:
    """A private, throw-away server in a temp dir (run as `postgres` when we are root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="auditlake-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.started = False

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-locale",
        )  # fmt: skip
        opts = f"-p {self.port} -k {self.dir} " + " ".join(
            f"-c {k}={v}" for k, v in PG_SETTINGS.items()
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
            "-w", "-o", opts, "start",
        )  # fmt: skip
        self.started = True

    def stop(self) -> None:
        try:
            if self.started:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql_args(self, *extra: str) -> list[str]:
        psql = shutil.which("psql") or str(self.bin / "psql")
        return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir), "-p",
                str(self.port), "-U", "postgres", "-d", "postgres", *extra]  # fmt: skip

    def psql(self, script: str) -> str:
        out = subprocess.run(
            self.psql_args("-A", "-t"), input=script, check=True, capture_output=True, text=True
        )
        return out.stdout

    def timed(self, sql: str, repeat: int) -> list[float]:
        """`sql` run 1 + repeat times in one session; psql's \\timing of each but the first."""
        script = "\\timing on\n\\o /dev/null\n" + f"{sql};\n" * (repeat + 1)
        times = [
            float(t) / 1000 for t in re.findall(r"^Time: ([0-9.]+) ms", self.psql(script), re.M)
        ]
        if len(times) != repeat + 1:
            raise RuntimeError(f"expected {repeat + 1} timings from psql, got {len(times)}")
        return times[1:]


_PG_TYPES: Final = {
    pa.string(): "text",
    pa.date32(): "date",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.int64(): "bigint",
    pa.binary(32): "bytea",
}


def load_postgres(pg: Postgres, plain: list[str]) -> float:
    """Create `events` with the stored columns, COPY the rows in, index, VACUUM ANALYZE."""
    columns = ", ".join(
        f"{f.name} {_PG_TYPES[f.type]}{' NOT NULL' if not f.nullable else ''}"
        for f in EVENTS_SCHEMA
    )
    pg.psql(f"CREATE TABLE events ({columns});")
    t0 = time.perf_counter()
    select = ", ".join(
        "'\\x' || hex(leaf_hash) AS leaf_hash" if n == "leaf_hash" else f'"{n}"'
        for n in EVENTS_SCHEMA.names
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    reader = con.sql(f"SELECT {select} FROM read_parquet(?)", params=[plain]).to_arrow_reader(
        100_000
    )
    assert reader is not None
    proc = subprocess.Popen(
        pg.psql_args("-c", "\\copy events FROM pstdin WITH (FORMAT csv)"), stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    try:
        with pcsv.CSVWriter(
            proc.stdin, reader.schema, write_options=pcsv.WriteOptions(include_header=False)
        ) as writer:
            for batch in reader:
                writer.write_batch(batch)
    finally:
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError("psql \\copy failed")
        con.close()
    copy_s = time.perf_counter() - t0
    pg.psql("CREATE INDEX events_tenant_actor_time ON events (tenant, actor_id, time);")
    pg.psql("VACUUM ANALYZE events;")
    total = time.perf_counter() - t0
    log(f"PostgreSQL: COPY {copy_s:.0f} s, index + VACUUM ANALYZE {total - copy_s:.0f} s")
    return total


# -- the benchmark -------------------------------------------------------------------------


def _ms(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k != "events_per_s"}
    for k in ("min", "median", "max"):
        out[f"{k}_ms"] = out.pop(f"{k}_s") * 1000
    return out


@contextmanager
def _postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def run(events: int, repeat: int, seed: int = SEED) -> dict[str, Any]:
    """Build or reuse the cached lake, then measure our query layer beside the baselines."""
    cache, meta = ensure_cache(events, seed)
    plain = sorted(str(p) for p in (cache / "plain").glob("*.parquet"))
    since = datetime.combine(WINDOW[0], datetime.min.time(), UTC)
    until = datetime.combine(WINDOW[1], datetime.min.time(), UTC)
    results: list[dict[str, Any]] = []

    def record(name: str, times: list[float]) -> dict[str, Any]:
        r = _ms(summary(name, times, 1))
        results.append(r)
        log(f"{name}: median {r['median_ms']:.1f} ms")
        return r

    # The actor: the one of the tenant with about TARGET_ACTOR_EVENTS in the window.
    plain_con = duckdb.connect()
    plain_con.execute("SET TimeZone = 'UTC'")
    chosen = plain_con.sql(
        "SELECT actor_id, count(*) AS n FROM read_parquet(?) WHERE tenant = ? AND time >= ? "
        "AND time < ? GROUP BY 1 ORDER BY abs(n - ?), actor_id LIMIT 1",
        params=[plain, TENANT, since, until, TARGET_ACTOR_EVENTS],
    ).to_arrow_table()
    assert chosen is not None
    actor, actor_events = chosen.column("actor_id")[0].as_py(), chosen.column("n")[0].as_py()
    query = f"tenant:{TENANT} actor:{actor} created:>={WINDOW[0]} created:<{WINDOW[1]}"
    log(f"point search: {query} ({actor_events} events in the window)")

    with tempfile.TemporaryDirectory(prefix="auditlake-query-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        shutil.copytree(cache / "lake", work / "lake", copy_function=_link_or_copy)
        log(f"working copy of the lake in {time.perf_counter() - t0:.1f} s")
        lake = Lake.open(work / "lake")
        principal = AccessPolicy(work / "home").principal("admin")
        agg_rows: dict[str, list[int]] = {}
        found: dict[str, list[str]] = {}

        def ours(stage: str) -> None:
            session = QuerySession(lake, principal, None, interface="bench")

            def search() -> pa.Table:
                return session.search(parse_query(query), limit=LIMIT).to_arrow()

            def aggregate() -> pa.Table:
                return session.sql(AGG_SQL).to_arrow()

            def aggregate_new_session() -> None:
                QuerySession(lake, principal, None, interface="bench").sql(AGG_SQL).to_arrow()

            found[stage] = sorted(search().column("event_id").to_pylist())
            agg_rows[stage] = aggregate().column("failures").to_pylist()
            record(f"search: auditlake, {stage}", timed(search, repeat))
            record(f"aggregation: auditlake, {stage}", timed(aggregate, repeat))
            record(
                f"aggregation: auditlake, {stage}, new QuerySession each time",
                timed(aggregate_new_session, repeat),
            )

        files_before = len(_lake_files(lake))
        row_groups_before = _row_groups(_lake_files(lake))
        ours("before optimize")
        t0 = time.perf_counter()
        opt = optimize(lake)
        optimize_s = time.perf_counter() - t0
        files_after = len(_lake_files(lake))
        row_groups_after = _row_groups(_lake_files(lake))
        log(f"optimize: {optimize_s:.1f} s, {files_before} -> {files_after} files")
        ours("after optimize")

        # One search with the read audit on (a signed, sealed commit per search).
        audit = ReadAudit(lake, generate_signer("bench-audit"), source="bench")
        audited = QuerySession(lake, principal, audit, interface="bench")
        audited.search(parse_query(query), limit=LIMIT).to_arrow()  # creates the audit tenant
        record(
            AUDITED,
            timed(lambda: audited.search(parse_query(query), limit=LIMIT).to_arrow(), repeat),
        )

        # Bytes on disk (after optimize: plus the audit events, a few hundred bytes each).
        snapshot_bytes = sum(p.stat().st_size for p in _lake_files(lake))
        lake_size, lake_alloc, lake_count = _dir_bytes(work / "lake")
        tiles_size, tiles_alloc, tiles_count = _dir_bytes(work / "lake" / "tiles")
        cached_size, cached_alloc, _ = _dir_bytes(cache / "lake")
        cached_snapshot = sum(p.stat().st_size for p in _lake_files(Lake.open(cache / "lake")))

    # Plain DuckDB over the plain files.
    search_sql = (
        "SELECT * FROM read_parquet(?) WHERE tenant = ? AND actor_id = ? AND time >= ? "
        f"AND time < ? ORDER BY time DESC LIMIT {LIMIT}"
    )
    search_params = [plain, TENANT, actor, since, until]
    agg_plain = AGG_SQL.replace("FROM events", "FROM read_parquet(?)")

    def plain_query(sql: str, params: list[Any]) -> pa.Table:
        result = plain_con.sql(sql, params=params).to_arrow_table()
        assert result is not None
        return result

    found["duckdb"] = sorted(plain_query(search_sql, search_params).column("event_id").to_pylist())
    agg_rows["duckdb"] = plain_query(agg_plain, [plain]).column("failures").to_pylist()
    record(DUCK_SEARCH, timed(lambda: plain_query(search_sql, search_params), repeat))
    record(DUCK_AGG, timed(lambda: plain_query(agg_plain, [plain]), repeat))
    plain_con.close()

    # PostgreSQL.
    pg_search = (
        f"SELECT * FROM events WHERE tenant = '{TENANT}' AND actor_id = '{actor}' "
        f"AND time >= '{since.isoformat()}' AND time < '{until.isoformat()}' "
        f"ORDER BY time DESC LIMIT {LIMIT}"
    )
    with _postgres() as pg:
        pg_load_s = load_postgres(pg, plain)
        found["postgres"] = sorted(
            pg.psql(pg_search.replace("SELECT *", "SELECT event_id", 1) + ";").split()
        )
        agg_rows["postgres"] = [
            int(line.rsplit("|", 1)[1]) for line in pg.psql(AGG_SQL + ";").splitlines() if line
        ]
        record(PG_SEARCH, pg.timed(pg_search, repeat))
        record(PG_AGG, pg.timed(AGG_SQL, repeat))
        plans = {}
        for name, sql in (("search", pg_search), ("aggregation", AGG_SQL)):
            # Warmed in the same backend first, as the timed runs are.
            plan = pg.psql(
                f"\\o /dev/null\n{sql};\n{sql};\n\\o\nEXPLAIN (ANALYZE, TIMING OFF) {sql};"
            )
            scans = re.findall(
                r"((?:Parallel )?(?:Index|Seq|Bitmap Heap|Bitmap Index) Scan[^(]*)", plan
            )
            plans[name] = {
                "scan": scans[0].strip() if scans else plan.strip().splitlines()[0].strip(),
                "execution_ms": float(re.findall(r"Execution Time: ([0-9.]+)", plan)[0]),
                "planning_ms": float(re.findall(r"Planning Time: ([0-9.]+)", plan)[0]),
                "plan": plan,
            }
        pg_sizes = pg.psql(
            "SELECT pg_total_relation_size('events'), pg_relation_size('events'), "
            "pg_indexes_size('events'), pg_table_size('events');"
        ).strip()
        pg_total, pg_heap, pg_index, pg_table = (int(x) for x in pg_sizes.split("|"))
        pg_version = pg.psql("SHOW server_version;").strip()
        # Not part of the sizes above: what an index made for the aggregation gives.
        pg.psql("CREATE INDEX events_tenant_outcome_time ON events (tenant, outcome, time);")
        pg.psql("VACUUM ANALYZE events;")
        record(PG_AGG_INDEXED, pg.timed(AGG_SQL, repeat))

    jsonl_bytes = (cache / "events.jsonl").stat().st_size
    plain_bytes = sum(Path(p).stat().st_size for p in plain)
    sizes = {
        "jsonl": jsonl_bytes,
        "postgres_total": pg_total,
        "postgres_heap": pg_heap,
        "postgres_toast_etc": pg_table - pg_heap,
        "postgres_index": pg_index,
        "lake_snapshot_before_optimize": cached_snapshot,
        "lake_snapshot_after_optimize": snapshot_bytes,
        "lake_dir_before_optimize": cached_size,
        "lake_dir_before_optimize_allocated": cached_alloc,
        "lake_dir_after_optimize": lake_size,
        "lake_dir_after_optimize_allocated": lake_alloc,
        "tiles": tiles_size,
        "tiles_allocated": tiles_alloc,
        "tile_files": tiles_count,
        "plain_parquet": plain_bytes,
    }
    checks = {
        "search_rows": len(found["postgres"]),
        "search_rows_match": len({tuple(v) for v in found.values()}) == 1,
        "aggregation_rows": len(agg_rows["postgres"]),
        "aggregation_failures": sum(agg_rows["postgres"]),
        "aggregation_match": len({tuple(v) for v in agg_rows.values()}) == 1,
    }
    if not (checks["search_rows_match"] and checks["aggregation_match"]):
        log(f"WARNING: the paths disagree: {checks}")
    out: dict[str, Any] = {
        "events": events,
        "seed": seed,
        "repeat": repeat,
        "query": query,
        "actor_events_in_window": actor_events,
        "build": meta,
        "results": results,
        "optimize": {
            "seconds": optimize_s,
            "files_before": files_before,
            "files_after": files_after,
            "row_groups_before": row_groups_before,
            "row_groups_after": row_groups_after,
            **opt.as_dict(),
        },
        "lake_files": lake_count,
        "bytes": sizes,
        "postgres": {
            "version": pg_version,
            "settings": PG_SETTINGS,
            "load_s": pg_load_s,
            "explain": plans,
        },
        "checks": checks,
    }
    out["markdown"] = markdown(out)
    return out


def _explained(pg: dict[str, Any], name: str) -> str:
    e = pg["explain"][name]
    return f"{e['planning_ms'] + e['execution_ms']:.2f} ms ({e['scan']})"


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
    lines += ["", "| bytes on disk | MB | B/event |", "|---|---|---|"]
    lines += [f"| {name} | {v / 1e6:,.0f} | {v / n:.0f} |" for name, v in rows]
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
