"""Distributed verify and detect (#11): Ray with 2 workers beside one process, same lake.

    python -m benchmarks.distributed [N] [--repeat R] [--range-events K] [--only verify|detect]

On the cached lake of benchmarks/dataset.py (N events, default 1e6, 20 tenants x 30 days),
in one run:

- verify: `verify_lake(workers=1)` (one process: the baseline), `verify_lake(workers=2)`
  (the CLI's local engine on this 2-core machine) and `verify_lake_ray` on a local Ray
  instance of 2 CPUs (started once, before the timings; its start-up is reported apart);
- detect: the built-in pack as a backfill over the whole lake, `detect.runner.run` locally
  and with the `ray_evaluate` hook, alerts reset before each repeat.

Every engine's output is compared with the baseline's (the verify report, the alerts) and
a difference is printed as a failure. The lake is signed by a key the benchmark does not
keep, so every checkpoint is `untrusted_key`: the work done is that of a full check.
Prints Markdown (min/median/max over the repeats and the ratio to the baseline).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from lake.verify import RANGE_EVENTS

# The local engine's pool starts its processes with "spawn", which imports this module
# again in each: the benchmarks' heavy imports stay inside the functions.
WORKERS = 2


def log(message: str) -> None:
    print(f"[distributed] {message}", file=sys.stderr, flush=True)


def run(events: int, repeat: int, range_events: int, only: set[str]) -> dict[str, Any]:
    from benchmarks.common import summary, timed
    from benchmarks.dataset import SEED, ensure_cache
    from lake.log import generate_signer
    from lake.storage import Lake
    from lake.verify import ray_session, verify_lake, verify_lake_ray

    cache, _ = ensure_cache(events, SEED)
    lake = Lake.open(cache / "lake")
    keys = [generate_signer("not-the-signer").verifier_key]
    results: list[dict[str, Any]] = []
    problems: list[str] = []

    def record(name: str, times: list[float]) -> dict[str, Any]:
        r = summary(name, times, events)
        results.append(r)
        log(f"{name}: median {r['median_s']:.2f} s")
        return r

    reports: dict[str, Any] = {}

    def verify_with(name: str, fn: Any) -> None:
        def once() -> None:
            reports[name] = fn().as_dict()

        record(name, timed(once, repeat))

    if "verify" in only:
        verify_with("verify: 1 process", lambda: verify_lake(lake, keys, workers=1))
        verify_with(
            f"verify: local, {WORKERS} processes",
            lambda: verify_lake(lake, keys, workers=WORKERS, range_events=range_events),
        )
    t0 = time.perf_counter()
    with ray_session(None, num_cpus=WORKERS) as ray:
        ray_start_s = time.perf_counter() - t0
        log(f"local Ray instance with {WORKERS} CPUs started in {ray_start_s:.1f} s")
        if "verify" in only:
            verify_with(
                f"verify: Ray, {WORKERS} workers",
                lambda: verify_lake_ray(lake, keys, range_events=range_events),
            )
            base = reports["verify: 1 process"]
            for name, report in reports.items():
                if report != base:
                    problems.append(f"{name}: the report differs from the single process's")
        if "detect" in only:
            results += _detect(cache, events, repeat, ray, problems)
    return {
        "events": events,
        "repeat": repeat,
        "range_events": range_events,
        "ray_start_s": ray_start_s,
        "results": results,
        "problems": problems,
    }


def _detect(
    cache: Path, events: int, repeat: int, ray: Any, problems: list[str]
) -> list[dict[str, Any]]:
    from benchmarks.common import summary, timed
    from benchmarks.dataset import END, FIRST_DAY, midnight, reset_detection, working_copy
    from detect.distributed import ray_evaluate
    from detect.model import load_rules
    from detect.runner import run as detect_run

    rules = load_rules()
    since, until = midnight(FIRST_DAY), midnight(END + timedelta(days=1))
    now = until
    out: list[dict[str, Any]] = []
    alerts: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="auditlake-distributed-bench-") as tmp:
        lake = working_copy(cache, Path(tmp), log)

        def reset() -> None:
            reset_detection(lake)

        for name, evaluate in (
            ("detect pack backfill: local, 1 process", None),
            (f"detect pack backfill: Ray, {WORKERS} workers", ray_evaluate(ray)),
        ):

            def once(evaluate: Any = evaluate, name: str = name) -> None:
                detect_run(lake, rules, since=since, until=until, now=now, evaluate=evaluate)
                alerts[name] = sorted(lake.read_alerts().to_pylist(), key=lambda a: a["alert_id"])

            r = summary(name, timed(once, repeat, reset), events)
            log(f"{name}: median {r['median_s']:.2f} s, {len(alerts[name])} alerts")
            out.append(r)
    (local_name, local), *others = alerts.items()
    for name, got in others:
        if got != local:
            problems.append(f"{name}: the alerts differ from {local_name}'s")
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"## Distributed verify and detect ({r['events']:,} events, 20 tenants)",
        "",
        f"{r['repeat']} repeats; range tasks of {r['range_events']:,} events; the local Ray "
        f"instance started in {r['ray_start_s']:.1f} s (not in the timings).",
        "",
        "| benchmark | min s | median s | max s | events/s | vs baseline |",
        "|---|---|---|---|---|---|",
    ]
    base: dict[str, float] = {}
    for x in r["results"]:
        kind = x["name"].split(":")[0]
        base.setdefault(kind, x["median_s"])
        ratio = x["median_s"] / base[kind]
        lines.append(
            f"| {x['name']} | {x['min_s']:.2f} | {x['median_s']:.2f} | {x['max_s']:.2f} | "
            f"{x['events_per_s']:,.0f} | {ratio:.2f}x |"
        )
    lines += ["", "Baseline of each group: its first row (one process). Same output: "]
    lines[-1] += "yes." if not r["problems"] else "NO: " + "; ".join(r["problems"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("events", nargs="?", type=float, default=1e6, help="events (1e6)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--range-events", type=int, default=RANGE_EVENTS)
    parser.add_argument("--only", choices=["verify", "detect"], action="append")
    args = parser.parse_args()
    result = run(
        int(args.events), args.repeat, args.range_events, set(args.only or ["verify", "detect"])
    )
    print(markdown(result))
    if result["problems"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
