"""`python -m benchmarks`: auditlake's hot paths beside a baseline measured in the same run.

- ingest: `ingest.files.load` + `lake.write.append` of a JSONL file, against the bare load
  of the same file (pyarrow JSON reader + partitioned `write_deltalake`) and a plain
  Parquet write (the disk's limit).
- verify: `lake.verify.verify_lake` over that lake, against hashlib SHA-256 over the same
  leaf bytes (one call per leaf, and one stream: the floor).
- collector, query, detect: see benchmarks/collector.py, benchmarks/query.py (the query
  layer beside PostgreSQL and plain DuckDB) and benchmarks/detect.py (the rule pack beside
  each rule as a plain DuckDB query).
- jetstream, distributed: benchmarks/jetstream.py (publish -> sealed through a real
  nats-server, 1 and 2 consumers, beside the file ingestor) and benchmarks/distributed.py
  (verify and detection on a local Ray instance beside one process).
- peak memory is a separate, longer run: `python -m benchmarks.memory --events 1e6,1e7`.

Prints min/median/max over repeats and the ratio to the baseline; writes JSON and
Markdown under benchmarks/results/. Wall-clock figures live here, never in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from deltalake import write_deltalake

from benchmarks.common import RESULTS, make_input, summary, timed
from ingest.files import load
from lake.contract import LEAF_FIELDS, leaf_inputs
from lake.log import generate_signer
from lake.storage import Lake
from lake.verify import verify_lake
from lake.write import append


def bench_ingest(work: Path, src: Path, repeat: int) -> tuple[list[dict[str, Any]], Path]:
    n = sum(1 for _ in src.open("rb"))
    signer = generate_signer("bench")
    target = work / "lake"

    def reset(path: Path) -> Callable[[], None]:
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def ours() -> None:
        lake = Lake.init(target, "bench", signer.verifier_key.encode())
        # as the CLI runs it: validation and verify use one process per core
        append(lake, load(str(src), workers=os.cpu_count() or 1).validated.table, signer)

    def bare() -> None:
        table = pj.read_json(src)
        day = pc.cast(pc.cast(table.column("time"), pa.timestamp("us", tz="UTC")), pa.date32())
        table = table.append_column("event_date", day)
        write_deltalake(work / "bare", table, partition_by=["tenant", "event_date"])

    def parquet() -> None:
        pq.write_table(pj.read_json(src), work / "plain.parquet")

    results = [
        summary(
            "ingest: bare pyarrow JSON + write_deltalake",
            timed(bare, repeat, reset(work / "bare")),
            n,
        ),
        summary("ingest: pyarrow JSON + plain Parquet write", timed(parquet, repeat), n),
        summary(
            "ingest: auditlake (validate, hash, sequence, commit, seal)",
            timed(ours, repeat, reset(target)),
            n,
        ),
    ]
    return results, target


def bench_verify(lake_path: Path, repeat: int) -> list[dict[str, Any]]:
    lake = Lake.open(lake_path)
    table = lake.events_table()
    trusted = [generate_signer("x").verifier_key]  # findings don't change the work done
    rows = lake.read_rows(lake.data_files(table), list(LEAF_FIELDS))
    n = rows.num_rows
    leaves = [leaf_inputs(rows.slice(i, 65536)) for i in range(0, n, 65536)]
    blob = b"".join(b.buffers()[2].to_pybytes() for b in leaves)
    flat = [x for b in leaves for x in b.to_pylist()]

    def per_leaf() -> None:
        sha = hashlib.sha256
        for x in flat:
            sha(x).digest()

    def stream() -> None:
        hashlib.sha256(blob).digest()

    keys = trusted
    results = [
        summary(
            "verify floor: hashlib SHA-256, one stream over the leaf bytes",
            timed(stream, repeat),
            n,
        ),
        summary("verify baseline: hashlib SHA-256, one call per leaf", timed(per_leaf, repeat), n),
        summary(
            "verify: auditlake verify_lake (read, re-encode, hash, tree, signatures)",
            timed(lambda: verify_lake(lake, keys, workers=os.cpu_count() or 1), repeat),
            n,
        ),
    ]
    print(f"leaf bytes: {len(blob) / n:.0f} B/event on average")
    return results


ALL = ("ingest", "verify", "collector", "query", "detect", "jetstream", "distributed")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--events", type=float, default=1e6, help="events to generate (1e6)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=[*ALL], action="append")
    parser.add_argument(
        "--collector-events", type=float, default=1e5, help="events through the collector (1e5)"
    )
    parser.add_argument(
        "--stream-events", type=float, default=2e5, help="events through JetStream (2e5)"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    only = set(args.only or ALL)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = _ingest_and_verify(args, only)
    sections = _sections(args, only)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    ratios = _ratios(results, only, sections["collector"])
    report = _report(args, machine, results, ratios, sections)
    print(report)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"{stamp}.md").write_text(report)
    (RESULTS / f"{stamp}.json").write_text(
        json.dumps({"machine": machine, "results": results, **sections, "ratios": ratios}, indent=2)
    )


def _ingest_and_verify(args: argparse.Namespace, only: set[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if only & {"ingest", "verify"}:
        with tempfile.TemporaryDirectory(prefix="auditlake-bench-") as tmp:
            work = Path(tmp)
            src = make_input(work, int(args.events))
            repeat = args.repeat if "ingest" in only else 1
            ingest_results, lake_path = bench_ingest(work, src, repeat)
            if "ingest" in only:
                results += ingest_results
            if "verify" in only:
                results += bench_verify(lake_path, args.repeat)
    return results


def _sections(args: argparse.Namespace, only: set[str]) -> dict[str, dict[str, Any] | None]:
    """The benchmarks with a module of their own, in order (None: not run)."""
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(
        ("collector", "query", "detect", "jetstream", "distributed")
    )
    if "collector" in only:
        from benchmarks.collector import run as run_collector

        out["collector"] = run_collector(int(args.collector_events))
    if "query" in only:
        from benchmarks.query import run as run_query

        out["query"] = run_query(int(args.events), args.repeat)
    if "detect" in only:
        from benchmarks.detect import run as run_detect

        out["detect"] = run_detect(int(args.events), args.repeat)
    if "jetstream" in only:
        from benchmarks.jetstream import run as run_jetstream

        out["jetstream"] = run_jetstream(int(args.stream_events), args.repeat)
    if "distributed" in only:
        from benchmarks.distributed import run as run_distributed
        from lake.verify import RANGE_EVENTS

        out["distributed"] = run_distributed(
            int(args.events), args.repeat, RANGE_EVENTS, {"verify", "detect"}
        )
    return out


def _ratios(
    results: list[dict[str, Any]], only: set[str], collector: dict[str, Any] | None
) -> list[str]:
    ratios = []
    if "ingest" in only:
        ours = next(r for r in results if r["name"].startswith("ingest: auditlake"))
        bare = next(r for r in results if r["name"].startswith("ingest: bare"))
        ratios.append(
            f"ingest / bare Delta load: {ours['median_s'] / bare['median_s']:.2f}x (goal <= 1.5x)"
        )
    if "verify" in only:
        ours = next(r for r in results if r["name"].startswith("verify: auditlake"))
        floor = next(r for r in results if r["name"].startswith("verify baseline"))
        ratios.append(
            f"verify: {ours['events_per_s']:,.0f} events/s (goal >= 1,000,000); "
            f"{ours['median_s'] / floor['median_s']:.2f}x the per-leaf hashlib time"
        )
    if collector is not None:
        ratios.append(
            f"collector: {collector['collector_events_per_s']:,.0f} events/s sealed "
            f"({collector['acked_events_per_s']:,.0f}/s acknowledged; goal >= 200,000), "
            f"{collector['collector_events_per_s'] / collector['file_ingest_events_per_s']:.2f}x "
            f"the file ingestor in the same run; ack p50 {collector['ack_p50_ms']:.0f} ms, "
            f"p99 {collector['ack_p99_ms']:.0f} ms (goal < 50 ms)"
        )
    return ratios


def _report(
    args: argparse.Namespace,
    machine: str,
    results: list[dict[str, Any]],
    ratios: list[str],
    sections: dict[str, dict[str, Any] | None],
) -> str:
    lines = [
        f"# auditlake benchmarks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine}; {int(args.events):,} events requested; {args.repeat} repeats.",
    ]
    if results:
        header = "| benchmark | min s | median s | max s | events/s |"
        lines += ["", header, "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['min_s']:.2f} | {r['median_s']:.2f} | "
            f"{r['max_s']:.2f} | {r['events_per_s']:,.0f} |"
        )
    lines += ["", *ratios]
    for name in ("query", "detect"):
        section = sections[name]
        if section is not None:
            lines += ["", section["markdown"].rstrip()]
    if (jetstream := sections["jetstream"]) is not None:
        from benchmarks.jetstream import table as jetstream_table

        lines += ["", jetstream_table(jetstream)]
    if (distributed := sections["distributed"]) is not None:
        from benchmarks.distributed import markdown as distributed_markdown

        lines += ["", distributed_markdown(distributed).rstrip()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
