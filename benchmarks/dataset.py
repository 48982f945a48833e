"""The benchmarks' lake of N events: generated, appended through the real write path, cached.

The lake (20 tenants x 30 days ending 2026-10-31) is built through the real write path
(`Lake.init` + `lake.write.append` in batches of 500k events, in arrival order) from
events generated with numpy/pyarrow, seeded, and cached under
`benchmarks/results/query-cache-<N>/seed-<seed>/` with the same events as JSON Lines and
as a few big plain Parquet files. The query, detection and distributed benchmarks work on
copies of it (`working_copy`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.common import RESULTS
from lake.contract import EVENTS_SCHEMA, OUTPUT_SCHEMA, assign_ids, finish, validate
from lake.log import generate_signer
from lake.query import HIVE
from lake.storage import Lake
from lake.storage import paths as lake_paths
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

_US_PER_HOUR: Final = 3_600_000_000
_US_PER_DAY: Final = 24 * _US_PER_HOUR
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
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


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def epoch_us(at: datetime) -> int:
    """`at` in microseconds since the epoch."""
    return (at - EPOCH) // timedelta(microseconds=1)


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


def sorted_times(n: int, rng: np.random.Generator) -> np.ndarray:
    """n event times (µs since the epoch) over the 30 days, diurnal, in arrival order."""
    start = int((midnight(FIRST_DAY) - EPOCH).total_seconds())
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


# The category of each action, and the source of each category, as indices into sorted lists.
_CATEGORIES: Final = sorted({a[1] for a in _ACTIONS})
_SOURCES: Final = sorted(set(_CATEGORY_SOURCE.values()))
_ACTION_CATEGORY: Final = np.array([_CATEGORIES.index(a[1]) for a in _ACTIONS])
_CATEGORY_SOURCE_INDEX: Final = np.array([_SOURCES.index(_CATEGORY_SOURCE[c]) for c in _CATEGORIES])


def _category(name: str) -> int:
    return _CATEGORIES.index(name)


def generate_batch(times: np.ndarray, first_index: int, seed: int, batch: int) -> pa.Table:
    """Events at `times` (one append batch) as OUTPUT_SCHEMA + received_at, vectorised.

    The draws from the batch's generator come in a fixed order (tenant, actor, action,
    outcome, then the actor's address, the target, the details, received_at): changing it
    changes the events, so bump GENERATOR_VERSION with it.
    """
    rng = np.random.default_rng([seed, batch])
    n = len(times)
    tenant = rng.integers(0, len(TENANTS), n)
    rank = np.minimum(np.searchsorted(_actor_cdf(), rng.random(n)), ACTORS - 1)
    weights = np.array([a[2] for a in _ACTIONS])
    action = rng.choice(len(_ACTIONS), n, p=weights / weights.sum())
    category = _ACTION_CATEGORY[action]
    is_auth = category == _category("authentication")
    u = rng.random(n)
    outcome = np.where(u < 0.08, 1, np.where(u < 0.085, 2, 0))  # success, failure, unknown
    failed = outcome == 1

    utc = pa.timestamp("us", tz="UTC")
    ts = pa.array(times, utc)
    columns = {
        "tenant": _pool(TENANTS, tenant),
        "event_date": pc.cast(ts, pa.date32()),
        "event_id": assign_ids(ts, f"auditlake-bench-{seed}".encode(), first_index),
        "time": ts,
        "category": _pool(_CATEGORIES, category),
        "action": _pool([a[0] for a in _ACTIONS], action),
        "outcome": _pool(("success", "failure", "unknown"), outcome),
        "severity": _severity(category, action, failed),
        **_actor_columns(rng, tenant, rank),
        **_target_columns(rng, category, is_auth),
        "source": _pool(_SOURCES, _CATEGORY_SOURCE_INDEX[category]),
        "details": _details(rng, rank, is_auth, failed),
    }
    table = pa.table([columns[name] for name in OUTPUT_SCHEMA.names], schema=OUTPUT_SCHEMA)
    received = times + rng.integers(20_000, 2_000_000, n)
    return table.append_column(
        pa.field("received_at", utc, nullable=False), pa.array(received, utc)
    )


def _severity(category: np.ndarray, action: np.ndarray, failed: np.ndarray) -> pa.Array:
    risky = np.isin(category, [_category(c) for c in ("key_change", "admin_action")])
    export = action == [a[0] for a in _ACTIONS].index("key.export")
    severity = np.where(export, np.where(failed, 4, 3), np.where(failed, np.where(risky, 2, 1), 0))
    return _pool(("info", "low", "medium", "high", "critical"), severity)


def _actor_columns(
    rng: np.random.Generator, tenant: np.ndarray, rank: np.ndarray
) -> dict[str, pa.Array]:
    """actor_id, actor_type, actor_ip (the usual office address, else (10%) a home one)."""
    n = len(rank)
    names = [*_SERVICES, *(f"user-{r:05d}" for r in range(len(_SERVICES), ACTORS))]
    actor_type = np.where(rank < len(_SERVICES), 0, np.where(rank < _ADMINS, 1, 2))
    away = rng.random(n) < 0.1
    o1 = np.where(away, np.where(rank % 2 == 0, 198, 192), 10)
    o2 = np.where(away, np.where(rank % 2 == 0, 51, 0), tenant)
    o3 = np.where(away, np.where(rank % 2 == 0, 100, 2), rank // 256)
    o4 = np.where(away, rng.integers(1, 255, n), rank % 256)
    ip = pc.binary_join_element_wise(
        *(pc.cast(pa.array(o.astype(np.int64)), pa.string()) for o in (o1, o2, o3, o4)), "."
    )
    ua = np.where(rank < len(_SERVICES), len(_USER_AGENTS) - 1, rank % (len(_USER_AGENTS) - 1))
    return {
        "actor_id": _pool(names, rank),
        "actor_type": _pool(("service", "admin", "user"), actor_type),
        "actor_ip": ip,
        "user_agent": _pool(_USER_AGENTS, ua),
    }


def _target_columns(
    rng: np.random.Generator, category: np.ndarray, is_auth: np.ndarray
) -> dict[str, pa.Array]:
    """target_type, target_id: none for logins, else a user, key or flag of the tenant."""
    n = len(category)
    kinds = ("user", "key", "flag")
    target_pool = [
        *(f"user-{r:05d}" for r in range(ACTORS)),
        *(f"key-{k:04d}" for k in range(200)),
        *(f"flag-{k:03d}" for k in range(300)),
    ]
    target_kind = np.select(
        [category == _category(c) for c in ("key_change", "flag_change")], [1, 2], 0
    )
    target_index = np.select(
        [target_kind == 1, target_kind == 2],
        [ACTORS + rng.integers(0, 200, n), ACTORS + 200 + rng.integers(0, 300, n)],
        rng.integers(0, ACTORS, n),
    )
    no_target = pa.array(is_auth)
    none = pa.scalar(None, pa.string())
    return {
        "target_type": pc.if_else(no_target, none, _pool(kinds, target_kind)),
        "target_id": pc.if_else(no_target, none, _pool(target_pool, target_index)),
    }


def _details(
    rng: np.random.Generator, rank: np.ndarray, is_auth: np.ndarray, failed: np.ndarray
) -> pa.Array:
    """details: canonical JSON (sorted keys, compact) of ~100-150 bytes."""
    n = len(rank)
    geo = np.where(rng.random(n) < 0.05, rng.integers(0, len(_GEOS), n), rank % len(_GEOS))
    method = np.where(is_auth, rng.integers(0, 4, n), 4 + rng.integers(0, 2, n))
    reason = np.where(failed, rng.integers(0, len(_REASONS), n), len(_REASONS))
    reasons = [f',"reason":"{r}"' for r in _REASONS] + [""]
    latency = pc.cast(pa.array(rng.integers(3, 900, n)), pa.string())
    ids = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    return _join(
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


def lake_files(lake: Lake) -> list[Path]:
    events = Path(lake.base) / lake_paths.EVENTS
    return [events / f.path for f in lake.data_files(lake.events_table())]


def build_cache(events: int, seed: int, cache: Path) -> dict[str, Any]:
    """Generate the events, append them to a new lake, write the JSONL and plain Parquet."""
    building = cache.with_name(cache.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    signer = generate_signer("bench")
    lake = Lake.init(building / "lake", "bench", signer.verifier_key.encode())
    t0 = time.perf_counter()
    times = sorted_times(events, np.random.default_rng([seed, 0xFFFF]))
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
    files = [str(p) for p in lake_files(lake)]
    cols = ", ".join(f'"{n}"' for n in EVENTS_SCHEMA.names)
    for k, lo in enumerate(range(0, events, PLAIN_FILE_ROWS)):
        hi = lo + PLAIN_FILE_ROWS
        bounds = ["time >= ?"] + (["time < ?"] if hi < events else [])
        params: list[Any] = [files, _as_datetime(int(times[lo]))]
        if hi < events:
            params.append(_as_datetime(int(times[hi])))
        con.execute(
            f"COPY (SELECT {cols} FROM read_parquet(?, {HIVE}) "
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
    return EPOCH + timedelta(microseconds=us)


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


def working_copy(cache: Path, work: Path, say: Callable[[str], None] = log) -> Lake:
    """A copy of the cached lake at `work`/lake that a benchmark may write to, opened."""
    t0 = time.perf_counter()
    shutil.copytree(cache / "lake", work / "lake", copy_function=_link_or_copy)
    say(f"working copy of the lake in {time.perf_counter() - t0:.1f} s")
    return Lake.open(work / "lake")


def reset_detection(lake: Lake) -> None:
    """Remove the alerts table and the detection state, so a detection run starts afresh."""
    base = Path(lake.base)
    shutil.rmtree(base / lake_paths.ALERTS, ignore_errors=True)
    shutil.rmtree((base / lake_paths.DETECT_STATE).parent, ignore_errors=True)
