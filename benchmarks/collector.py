"""Collector throughput: HTTP on loopback, WAL fsync on, until sealed in the lake.

4 client threads send 1,000-event NDJSON batches to a real `auditlake serve` process; the
clock stops when every event is under a signed checkpoint. The baseline, in the same run,
is the file ingestor (`load` + `append`) on the same events: the ceiling for the collector,
which does the same validation and commit work plus HTTP and the WAL.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import free_port
from ingest.demo import iter_events
from ingest.files import load
from ingest.tokens import TokenStore
from lake.secrets import KeyStore
from lake.storage import Lake
from lake.write import append

CLIENTS = 4
BATCH = 1_000


def sealed_events(lake: Lake) -> int:
    cps = lake.checkpoints_table()
    return sum(Lake.sealed_size(cps, t) for t in lake.tenants(lake.events_table()))


def run(events: int) -> dict[str, Any]:
    """Send `events` through the collector and through the file ingestor; return figures."""
    with tempfile.TemporaryDirectory(prefix="auditlake-collector-bench-") as tmp:
        work = Path(tmp)
        tenants = [f"tenant-{i:02d}" for i in range(4)]
        per_day = max(1, events // (len(tenants) * 10))
        rows = list(
            iter_events(tenants=tenants, days=10, events_per_tenant_per_day=per_day, seed=5)
        )
        bodies = [
            b"\n".join(orjson.dumps(e) for e in rows[i : i + BATCH]) + b"\n"
            for i in range(0, len(rows), BATCH)
        ]
        (work / "events.jsonl").write_bytes(b"".join(bodies))
        home = work / "home"
        signer = KeyStore(home).generate("bench")

        # Baseline: the file ingestor on the same events.
        base_lake = Lake.init(work / "file-lake", "bench", signer.verifier_key.encode())
        t0 = time.perf_counter()
        append(
            base_lake,
            load(str(work / "events.jsonl"), workers=os.cpu_count() or 1).validated.table,
            signer,
        )
        file_s = time.perf_counter() - t0

        lake = Lake.init(work / "lake", "bench", signer.verifier_key.encode())
        token = TokenStore(home).create(tenants, "bench")
        proc, url = _serve(home, lake)
        latencies: list[float] = []
        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=_client, args=(url, token, bodies[k::CLIENTS], latencies))
            for k in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked_s = time.perf_counter() - t0
        while sealed_events(lake) < len(rows):
            time.sleep(0.05)
        sealed_s = time.perf_counter() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(work / "file-lake", ignore_errors=True)
    lat = sorted(latencies)
    return {
        "events": len(rows),
        "collector_events_per_s": len(rows) / sealed_s,
        "acked_events_per_s": len(rows) / acked_s,
        "file_ingest_events_per_s": len(rows) / file_s,
        "ack_p50_ms": statistics.median(lat) * 1000,
        "ack_p99_ms": lat[max(0, int(len(lat) * 0.99) - 1)] * 1000,
    }


def _serve(home: Path, lake: Lake) -> tuple[subprocess.Popen[bytes], str]:
    """A real `auditlake serve` process on a free port, once it answers its health check."""
    port = free_port()
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    exe = str(Path(sys.executable).with_name("auditlake"))
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/v1/health", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def _client(url: str, token: str, mine: list[bytes], latencies: list[float]) -> None:
    """Post each body until it is accepted (waiting out 429/503); note each ack's latency."""
    for body in mine:
        req = urllib.request.Request(
            url + "/v1/events",
            data=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/x-ndjson",
            },
        )
        while True:
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    ok = r.status == 202
            except urllib.error.HTTPError as e:
                ok = False
                if e.code not in (429, 503):
                    raise
                time.sleep(float(e.headers.get("Retry-After", "0.2")))
            if ok:
                latencies.append(time.perf_counter() - start)  # list.append is atomic
                break


if __name__ == "__main__":
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200_000
    print(orjson.dumps(run(n), option=orjson.OPT_INDENT_2).decode())
