"""JetStream → lake throughput: events/s from the first publish until all are sealed.

A real `nats-server -js` on 127.0.0.1 (file storage in a temp dir) and real `auditlake
consume` processes, started and idle before the clock starts. One producer publishes
NDJSON messages of `--per-message` events to `<stream>.<tenant>` (8 tenants), waiting for
JetStream's acknowledgements in windows of 256; the clock stops when every event is under
a signed checkpoint. Each figure is the median of `--repeat` runs on a fresh lake and a
fresh stream. Baseline in the same run: the file ingestor (`load` + `append`, the work
`auditlake ingest` does) on the same events, and the publish rate alone.

    python -m benchmarks.jetstream [N] [--repeat 3] [--per-message 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import orjson

from benchmarks.collector import sealed_events
from benchmarks.common import free_port
from ingest.demo import iter_events
from ingest.files import load
from ingest.jetstream import Connection
from lake.secrets import KeyStore
from lake.storage import Lake
from lake.write import append

TENANTS = [f"tenant-{i:02d}" for i in range(8)]
WINDOW = 256  # publishes in flight
BIN = Path(sys.executable).parent


async def _publish(url: str, messages: list[tuple[str, bytes]]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    started = time.perf_counter()
    for i in range(0, len(messages), WINDOW):
        await asyncio.gather(*(js.publish(s, d) for s, d in messages[i : i + WINDOW]))
    took = time.perf_counter() - started
    await nc.close()
    return took


def _messages(rows: list[dict[str, Any]], stream: str, per: int) -> list[tuple[str, bytes]]:
    out = []
    for tenant in TENANTS:
        mine = [r for r in rows if r["tenant"] == tenant]
        for i in range(0, len(mine), per):
            body = b"\n".join(orjson.dumps(e) for e in mine[i : i + per]) + b"\n"
            out.append((f"{stream.lower()}.{tenant}", body))
    # Interleave tenants, as independent producers would.
    return sorted(out, key=lambda m: hash(m[1]))


def _through_jetstream(
    work: Path, url: str, home: Path, rows: list[dict[str, Any]], per: int, consumers: int, k: int
) -> tuple[float, float]:
    """(seconds until sealed, seconds to publish) for one run with `consumers` processes."""
    signer = KeyStore(home).active()
    lake = Lake.init(work / f"lake-{consumers}-{k}", "bench", signer.verifier_key.encode())
    stream = f"B{consumers}R{k}"
    Connection(url, stream).close()
    messages = _messages(rows, stream, per)
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    logs = [work / f"consume-{stream}-{i}.log" for i in range(consumers)]
    procs = []
    for log in logs:
        with log.open("wb") as fh:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "auditlake"), "consume", "--nats", url, "--stream", stream],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=fh,
                )
            )
    while not all(b'"event":"start"' in log.read_bytes() for log in logs):
        time.sleep(0.05)
    started = time.perf_counter()
    published = asyncio.run(_publish(url, messages))
    while sealed_events(lake) < len(rows):
        time.sleep(0.05)
    took = time.perf_counter() - started
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=120)
    return took, published


def run(events: int, repeat: int = 3, per_message: int = 100) -> dict[str, Any]:
    """Figures for `events` events; medians of `repeat` runs."""
    with tempfile.TemporaryDirectory(prefix="auditlake-jetstream-bench-") as tmp:
        work = Path(tmp)
        per_day = max(1, events // (len(TENANTS) * 10))
        rows = list(
            iter_events(tenants=TENANTS, days=10, events_per_tenant_per_day=per_day, seed=5)
        )
        home = work / "home"
        signer = KeyStore(home).generate("bench")
        src = work / "events.jsonl"
        src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in rows))

        file_s = []
        for k in range(repeat):
            lake = Lake.init(work / f"file-lake-{k}", "bench", signer.verifier_key.encode())
            t0 = time.perf_counter()
            append(lake, load(str(src), workers=os.cpu_count() or 1).validated.table, signer)
            os.sync()  # as `auditlake ingest` and the consumer do
            file_s.append(time.perf_counter() - t0)

        server = work / "nats-store"
        port = free_port()
        url = f"nats://127.0.0.1:{port}"
        nats_log = (work / "nats.log").open("wb")
        broker = subprocess.Popen(
            [str(BIN / "nats-server"), "-js", "-a", "127.0.0.1", "-p", str(port),
             "-sd", str(server)],
            stdout=nats_log, stderr=nats_log,
        )  # fmt: skip
        try:
            time.sleep(0.5)
            sealed: dict[int, list[float]] = {1: [], 2: []}
            publish: list[float] = []
            for k in range(repeat):
                for consumers in (1, 2):
                    took, pub = _through_jetstream(work, url, home, rows, per_message, consumers, k)
                    sealed[consumers].append(took)
                    publish.append(pub)
        finally:
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=60)
    n = len(rows)
    return {
        "events": n,
        "per_message": per_message,
        "repeat": repeat,
        "file_ingest_events_per_s": n / statistics.median(file_s),
        "publish_events_per_s": n / statistics.median(publish),
        "jetstream_1_consumer_events_per_s": n / statistics.median(sealed[1]),
        "jetstream_2_consumers_events_per_s": n / statistics.median(sealed[2]),
    }


def table(r: dict[str, Any]) -> str:
    base = r["file_ingest_events_per_s"]
    lines = [
        f"JetStream → lake, {r['events']:,} events, {r['per_message']} per message, "
        f"median of {r['repeat']}",
        "",
        "| path | events/s | vs file ingest |",
        "|---|---:|---:|",
    ]
    for label, key in (
        ("file ingestor (`load` + `append`), baseline", "file_ingest_events_per_s"),
        ("publish only (1 producer, acks awaited)", "publish_events_per_s"),
        ("publish → sealed, 1 consumer", "jetstream_1_consumer_events_per_s"),
        ("publish → sealed, 2 consumers", "jetstream_2_consumers_events_per_s"),
    ):
        lines.append(f"| {label} | {r[key]:,.0f} | {r[key] / base:.2f}× |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="?", type=float, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-message", type=int, default=100)
    args = parser.parse_args()
    result = run(int(args.events), args.repeat, args.per_message)
    print(table(result))
    print()
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
