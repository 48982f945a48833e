"""`verify --engine ray` and `detect run --engine ray` against a real Ray cluster.

The cluster is `ray start --head --block` as a separate process (2 CPUs, its own temp
dir and ports, token auth off), started once for this module and stopped by SIGTERM to
that process (with `--block`, `ray start` takes its processes down with it; `ray stop`
would stop every Ray on the machine, other test workers' included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from testkit import free_port

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run

pytestmark = pytest.mark.slow  # a Ray head and a dozen CLI runs: ~40 s
RAY = shutil.which("ray", path=os.path.dirname(sys.executable))
START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    assert RAY, "the ray command is not installed beside this Python"
    # Short: Ray puts Unix sockets under it, and socket paths are limited to 107 bytes.
    temp = tempfile.mkdtemp(prefix="rl-", dir="/tmp")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    log = Path(temp) / "head.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                f"--temp-dir={temp}", "--node-ip-address=127.0.0.1",
                "--include-dashboard=false", "--disable-usage-stats",
                f"--dashboard-agent-listen-port={free_port()}",
                "--object-store-memory=200000000",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"will now block" not in log.read_bytes():
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        # anything of this cluster still running (it has its own session)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def ray_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "RAY_AUTH_MODE": "disabled"}


def test_verify_on_ray_prints_the_local_report(
    demo_copy: DemoLake, run: Run, ray_address: str
) -> None:
    # The command runs in tmp_path, beside the lake's directory, which is named `lake`. Ray
    # puts the driver's working directory first on its workers' sys.path, so without
    # ray_session's care the workers would import that directory as the `lake` package.
    victim = sorted((demo_copy.lake / "events" / "tenant=contoso").rglob("*.parquet"))[0]
    pq.write_table(pq.read_table(victim).slice(1), victim)
    env = ray_env(demo_copy.env)

    local = run("verify", "--format", "json", env=env)
    remote = run("verify", "--engine", "ray", "--address", ray_address, "--format", "json", env=env)

    assert local.returncode == remote.returncode == 1, remote
    assert remote.json() == local.json()
    assert {f["kind"] for t in local.json()["tenants"] for f in t["findings"]} == {"missing"}


def test_detect_on_ray_writes_the_local_alerts(
    demo_lake: DemoLake,
    tmp_path: Path,
    run: Run,
    make_env: Callable[[Path, Path], dict[str, str]],
    ray_address: str,
) -> None:
    alerts: dict[str, object] = {}
    for engine in ("local", "ray"):
        lake, home = tmp_path / engine / "lake", tmp_path / engine / "home"
        shutil.copytree(demo_lake.lake, lake)
        shutil.copytree(demo_lake.home, home)
        # Forget the demo's own detection run, so that this one writes every alert.
        shutil.rmtree(lake / "alerts")
        (lake / "_auditlake" / "detect" / "state.json").unlink()
        env = ray_env(make_env(home, lake))
        extra = ("--engine", "ray", "--address", ray_address) if engine == "ray" else ()
        ran = run("detect", "run", *extra, "--format", "json", env=env)
        assert ran.returncode == 0, ran
        assert ran.json()["new_alerts"] > 0
        listed = run("alerts", "list", "--format", "json", env=env)
        alerts[engine] = listed.json()
    assert alerts["ray"] == alerts["local"]


def test_unreachable_cluster_is_a_one_line_usage_error(demo_lake: DemoLake, run: Run) -> None:
    port = free_port()  # nothing listens there
    result = run("verify", "--engine", "ray", "--address", f"127.0.0.1:{port}", env=demo_lake.env)
    result.assert_usage_error("cannot reach a Ray cluster", f"127.0.0.1:{port}")


def test_address_without_the_ray_engine_is_refused(demo_lake: DemoLake, run: Run) -> None:
    result = run("detect", "run", "--address", "127.0.0.1:6379", env=demo_lake.env)
    result.assert_usage_error("--address needs --engine ray")
