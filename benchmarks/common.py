"""What every benchmark shares: where results go, timing with a median, the JSONL input."""

from __future__ import annotations

import gc
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.demo import iter_events, write_jsonl

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(
    fn: Callable[[], Any], repeat: int, setup: Callable[[], None] | None = None
) -> list[float]:
    out = []
    for _ in range(repeat):
        if setup:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(name: str, times: list[float], events: int) -> dict[str, Any]:
    med = statistics.median(times)
    return {
        "name": name,
        "min_s": min(times),
        "median_s": med,
        "max_s": max(times),
        "events_per_s": events / med,
    }


def make_input(work: Path, events: int) -> Path:
    tenants = [f"tenant-{i:02d}" for i in range(20)]
    days = 30
    per_day = max(1, events // (len(tenants) * days))
    path = work / "events.jsonl"
    n = write_jsonl(
        iter_events(tenants=tenants, days=days, events_per_tenant_per_day=per_day, seed=1),
        path,
    )
    print(f"input: {n:,} events, {path.stat().st_size / 1e6:.0f} MB JSONL")
    return path
