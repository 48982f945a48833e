"""`python -m benchmarks.memory --events 1e6,1e7`: peak memory of ingest and verify.

Runs the real `auditlake ingest` and `auditlake verify` commands in child processes on
generated JSON Lines (20 tenants × 30 days, as `python -m benchmarks`) of each size, and
reports peak memory beside the input's size. Memory should stay flat as the input grows:
bounded by the chunk and batch sizes, not by the file.

Two figures per command:
- largest process: the peak resident set size (RSS) of the command or of any process
  below it (worker pools, a fork server's workers), exact, from the rusage of a small
  launcher that reaps them all;
- process tree: the peak of the summed proportional set size (PSS: shared pages split
  between the processes sharing them) of the command and its descendants, sampled every
  50 ms: what the machine must hold while workers run side by side.

Baselines in the same run: the interpreter floor (`auditlake --help`) and the bare load
of the same file (pyarrow's JSON reader + partitioned `write_deltalake`), both streamed
(`open_json`, one batch at a time) and, up to --whole-max events, whole (`read_json`, the
ingest benchmark's baseline, whose memory grows with the file).

Writes Markdown and JSON under benchmarks/results/. Needs about 1.3 kB of free disk per
event (input, spool, lake, baseline lake); everything is removed after each size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, make_input

AUDITLAKE = str(Path(sys.executable).with_name("auditlake"))
DISK_PER_EVENT = 1300  # bytes: JSONL ≈ 505, spool ≈ 380, lake ≈ 170, baseline lake ≈ 170
SAMPLE_S = 0.05
# Runs the command and writes its rusage: a process's peak RSS includes that of the process
# it was exec'd from, so the command is started from this small launcher, not from the
# benchmark (which holds pyarrow and the generator): the floor it adds is ~10 MB. As a
# child subreaper it also reaps what the command leaves behind (a fork server and its
# workers, which the command never waits for), so their peaks count too.
LAUNCHER = """
import ctypes, os, resource, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, _ = os.wait4(pid, 0)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""

# verify_lake as the CLI runs it (one worker per core) with smaller seq ranges, so that the
# tenants of both sizes span several ranges: shows the peak is bounded by the range.
SMALL_RANGES = 32_768
VERIFY_RANGES = f"""
import os, sys
from lake.log import generate_signer
from lake.storage import Lake
from lake.verify import verify_lake
if __name__ == "__main__":
    key = generate_signer("any").verifier_key  # findings do not change the work done
    verify_lake(Lake.open(sys.argv[1]), [key], workers=os.cpu_count() or 1,
                range_events={SMALL_RANGES})
"""

# The bare load, as the ingest benchmark's baseline does it, without the auditlake code.
BARE = """
import sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.json as pj
from deltalake import write_deltalake
src, dest, mode = sys.argv[1:4]
def with_date(batch):
    day = pc.cast(pc.cast(batch.column("time"), pa.timestamp("us", tz="UTC")), pa.date32())
    return batch.append_column("event_date", day)
if mode == "whole":
    data = with_date(pj.read_json(src))
else:
    # One schema for the whole stream, inferred from the first 32 MB (fields unseen there
    # are dropped: generous to the baseline).
    with open(src, "rb") as fh:
        head = fh.read(32 << 20)
    schema = pj.read_json(pa.BufferReader(head[: head.rfind(b"\\n") + 1])).schema
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    reader = pj.open_json(src, parse_options=options)
    first = with_date(reader.read_next_batch())
    def batches():
        yield first
        for batch in reader:
            yield with_date(batch)
    data = pa.RecordBatchReader.from_batches(first.schema, batches())
write_deltalake(dest, data, partition_by=["tenant", "event_date"])
"""


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0  # gone meanwhile
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run one command; its exit code, wall time and peak memory (MB)."""
    rusage = cwd / "rusage.txt"
    peak_tree = 0
    done = threading.Event()
    launcher = [sys.executable, "-S", "-c", LAUNCHER, str(rusage)]
    with (cwd / "stdout.txt").open("wb") as stdout, (cwd / "stderr.txt").open("wb") as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*launcher, *argv], env=env, cwd=cwd, stdout=stdout, stderr=stderr)

        def sample() -> None:
            nonlocal peak_tree
            while not done.is_set():
                peak_tree = max(peak_tree, sum(_pss_kib(p) for p in _descendants(proc.pid)))
                done.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    code, maxrss_kib = (int(x) for x in rusage.read_text().split())
    if code != 0:
        raise SystemExit(
            f"{' '.join(argv[:2])} failed ({code}): " + (cwd / "stderr.txt").read_text()[-2000:]
        )
    return {
        "wall_s": wall,
        "largest_process_mb": maxrss_kib / 1024,  # KiB on Linux
        "process_tree_mb": peak_tree / 1024,
    }


def run_size(events: int, work: Path, whole_max: int, batch_size: int) -> list[dict[str, Any]]:
    src = make_input(work, events)
    size_mb = src.stat().st_size / 1e6
    n = sum(1 for _ in src.open("rb"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}
    env |= {"AUDITLAKE_HOME": str(work / "home"), "AUDITLAKE_LAKE": str(work / "lake")}
    subprocess.run([AUDITLAKE, "init", "--name", "bench"], env=env, check=True, capture_output=True)
    rows: list[dict[str, Any]] = []

    def row(name: str, argv: list[str]) -> None:
        figures = measure(argv, env, work)
        rows.append({"command": name, "events": n, "input_mb": size_mb, **figures})
        print(
            f"{n:>12,} events {name:<44} largest {figures['largest_process_mb']:8.0f} MB"
            f"  tree {figures['process_tree_mb']:8.0f} MB  {figures['wall_s']:7.1f} s",
            flush=True,
        )

    row("floor: auditlake --help", [AUDITLAKE, "--help"])
    ingest = [AUDITLAKE, "ingest", str(src), "--output-format", "json"]
    row("auditlake ingest", [*ingest, "--batch-size", str(batch_size)])
    row("auditlake verify", [AUDITLAKE, "verify", "--format", "json"])
    py = sys.executable
    row(
        f"verify_lake, seq ranges of {SMALL_RANGES:,}",
        # -P: the working directory holds the lake, a folder named `lake`
        [py, "-P", "-c", VERIFY_RANGES, str(work / "lake")],
    )
    row("baseline: bare load, streamed", [py, "-c", BARE, str(src), str(work / "b1"), "stream"])
    shutil.rmtree(work / "b1", ignore_errors=True)
    if n <= whole_max:
        row(
            "baseline: bare load, whole file", [py, "-c", BARE, str(src), str(work / "b2"), "whole"]
        )
    return rows


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"# auditlake peak memory ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine}. Largest process: peak RSS (rusage of every descendant); "
        f"process tree: peak summed PSS of the command and its workers, sampled every "
        f"{SAMPLE_S * 1000:.0f} ms.",
        "",
        "| events | input MB | command | largest process MB | process tree MB | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['events']:,} | {r['input_mb']:,.0f} | {r['command']} | "
            f"{r['largest_process_mb']:,.0f} | {r['process_tree_mb']:,.0f} | {r['wall_s']:.1f} |"
        )
    by = {(r["command"], r["events"]): r for r in rows}
    sizes = sorted({r["events"] for r in rows})
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        lines.append("")
        commands = (
            "auditlake ingest",
            "auditlake verify",
            f"verify_lake, seq ranges of {SMALL_RANGES:,}",
            "baseline: bare load, streamed",
        )
        for command in commands:
            a, b = by.get((command, lo)), by.get((command, hi))
            if a and b:
                lines.append(
                    f"- {command}: {hi / lo:.0f}x the events, "
                    f"{b['process_tree_mb'] / a['process_tree_mb']:.2f}x the peak (process tree)"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--events", default="1e6,1e7", help="sizes, comma-separated (1e6,1e7)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--whole-max",
        type=float,
        default=2e6,
        help="largest input for the whole-file baseline, whose memory grows with the file",
    )
    parser.add_argument("--batch-size", type=int, default=500_000, help="ingest --batch-size")
    args = parser.parse_args()
    sizes = [int(float(x)) for x in args.events.split(",")]
    free = shutil.disk_usage(args.workdir).free
    need = max(sizes) * DISK_PER_EVENT
    if free < need * 1.2:
        raise SystemExit(
            f"{args.workdir}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed "
            f"for {max(sizes):,} events; pass --workdir elsewhere"
        )
    rows: list[dict[str, Any]] = []
    for events in sizes:
        work = Path(tempfile.mkdtemp(prefix="auditlake-memory-", dir=args.workdir))
        try:
            rows += run_size(events, work, int(args.whole_max), args.batch_size)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    report = markdown(rows, machine)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"memory-{stamp}.md").write_text(report)
    (RESULTS / f"memory-{stamp}.json").write_text(
        json.dumps({"machine": machine, "results": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
