"""`python -m benchmarks.sdk_import`: what `import ingest.sdk` costs a service, beside baselines.

Each figure is a fresh interpreter (`python -c ...`), best of `--repeat`: the bare
interpreter, the SDK, and the lake's contract (what the SDK imported before it became
standard-library only). Also the SDK's own cumulative time from `python -X importtime`,
which leaves out the interpreter's start-up. The goal is an SDK import under 0.15 s.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from typing import Any

from benchmarks.common import timed

CASES = {
    "bare interpreter": "pass",
    "import ingest.sdk": "import ingest.sdk",
    "import lake.contract (the SDK's import before)": "import lake.contract",
}


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


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
    best = {name: min(timed(functools.partial(run, code), repeat)) for name, code in CASES.items()}
    bare = best["bare interpreter"]
    return {
        "best_s": best,
        "sdk_over_bare_s": best["import ingest.sdk"] - bare,
        "contract_over_bare_s": best["import lake.contract (the SDK's import before)"] - bare,
        "sdk_importtime_s": min(importtime_s("ingest.sdk") for _ in range(repeat)),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = ["| python -c | best s |", "|---|---|"]
    lines += [f"| {name} | {s:.3f} |" for name, s in result["best_s"].items()]
    sdk, contract = result["sdk_over_bare_s"], result["contract_over_bare_s"]
    lines += [
        "",
        f"sdk import: {sdk:.3f} s over the bare interpreter "
        f"({result['sdk_importtime_s']:.3f} s by -X importtime; goal < 0.15 s), "
        f"{sdk / contract:.2f}x the lake contract's {contract:.3f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    print(markdown(measure(parser.parse_args().repeat)))


if __name__ == "__main__":
    main()
