"""PostgreSQL, the query benchmark's baseline: a private throw-away server, loaded from the
plain Parquet files, timed with psql's `\\timing` inside one session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv

from benchmarks.common import free_port
from benchmarks.dataset import log
from lake.contract import EVENTS_SCHEMA


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


@contextmanager
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def explain(pg: Postgres, sql: str) -> dict[str, Any]:
    """EXPLAIN ANALYZE of `sql`, warmed in the same backend first, as the timed runs are."""
    plan = pg.psql(f"\\o /dev/null\n{sql};\n{sql};\n\\o\nEXPLAIN (ANALYZE, TIMING OFF) {sql};")
    scans = re.findall(r"((?:Parallel )?(?:Index|Seq|Bitmap Heap|Bitmap Index) Scan[^(]*)", plan)
    return {
        "scan": scans[0].strip() if scans else plan.strip().splitlines()[0].strip(),
        "execution_ms": float(re.findall(r"Execution Time: ([0-9.]+)", plan)[0]),
        "planning_ms": float(re.findall(r"Planning Time: ([0-9.]+)", plan)[0]),
        "plan": plan,
    }


def sizes(pg: Postgres) -> tuple[int, int, int, int]:
    """(total, heap, indexes, table) bytes of `events`."""
    out = pg.psql(
        "SELECT pg_total_relation_size('events'), pg_relation_size('events'), "
        "pg_indexes_size('events'), pg_table_size('events');"
    ).strip()
    total, heap, index, table = (int(x) for x in out.split("|"))
    return total, heap, index, table
