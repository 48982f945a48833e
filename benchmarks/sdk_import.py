"""`python -m benchmarks.sdk_import`: what `import ingest.sdk` costs a service, beside baselines.

Each figure is a fresh interpreter (`python -c ...`), best of `--repeat`, as wall-clock
and as CPU time (user + system: steadier on a loaded machine): the bare interpreter, the
SDK, and the lake's contract (what the SDK imported before it became standard-library
only). Also the SDK's own cumulative time from `python -X importtime`, which leaves out
the interpreter's start-up. The goal is an SDK import under 0.15 s.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from typing import Any

CASES = {
    "bare interpreter": "pass",
    "import ingest.sdk": "import ingest.sdk",
    "import lake.contract (the SDK's import before)": "import lake.contract",
}


def best_of(code: str, repeat: int) -> tuple[float, float]:
    """(wall s, CPU s) of `python -c code`, each the best of `repeat` runs."""
    wall, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(wall), min(cpu)


def importtime_s(module: str) -> float:
    """Cumulative import time of `module` alone, from `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.M)
    match = pattern.search(done.stderr)
    assert match is not None, f"{module} not in the importtime output"
    return int(match.group(1)) / 1e6


def measure(repeat: int) -> dict[str, Any]:
    best = {name: best_of(code, repeat) for name, code in CASES.items()}
    bare_wall, bare_cpu = best["bare interpreter"]
    over = {name: (w - bare_wall, c - bare_cpu) for name, (w, c) in best.items()}
    return {
        "best_s": best,
        "over_bare_s": over,
        "sdk_importtime_s": min(importtime_s("ingest.sdk") for _ in range(repeat)),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = ["| python -c | best wall s | best CPU s |", "|---|---|---|"]
    lines += [f"| {name} | {w:.3f} | {c:.3f} |" for name, (w, c) in result["best_s"].items()]
    (sdk_wall, sdk_cpu), (_lake_wall, lake_cpu) = list(result["over_bare_s"].values())[1:]
    lines += [
        "",
        f"sdk import over the bare interpreter: {sdk_wall:.3f} s wall, {sdk_cpu:.3f} s CPU, "
        f"{result['sdk_importtime_s']:.3f} s by -X importtime (goal < 0.15 s); "
        f"{sdk_cpu / lake_cpu:.2f}x the CPU of the lake contract's import ({lake_cpu:.3f} s)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    print(markdown(measure(parser.parse_args().repeat)))


if __name__ == "__main__":
    main()
