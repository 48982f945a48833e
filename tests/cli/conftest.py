"""Run the real `auditlake` console script against small lakes in tmp dirs.

Every test gets its own config home and lake path through the environment (never the
user's), and a `run` helper that executes the installed script in a subprocess, as a user
or a cron job would: stdout, stderr and the exit code are what the contract is about.
A demo lake is built once per session (per xdist worker) for read-only tests; tests that
change a lake or a home work on a copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_testkit import DEMO_ARGS, DemoLake, Result, Run, clean_env, run_cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def env(home: Path, lake: Path) -> dict[str, str]:
    """A copy of os.environ with AUDITLAKE_HOME and AUDITLAKE_LAKE in tmp_path, nothing else."""
    return clean_env(home, lake)


@pytest.fixture
def make_env() -> Callable[[Path, Path], dict[str, str]]:
    """`make_env(home, lake)`: a clean environment for another home or lake."""
    return clean_env


@pytest.fixture
def run(env: dict[str, str], tmp_path: Path) -> Run:
    """`run(*args, input=None)`: the real command in tmp_path with `env`.

    `env=` replaces the environment for one call; `cwd=` the working directory.
    """

    default_env = env

    def _run(
        *args: Any,
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        use = dict(default_env if env is None else env)
        return run_cli(args, env=use, cwd=cwd or tmp_path, input=input)

    return _run


# -- lakes -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> DemoLake:
    """`auditlake demo --days 2 --events-per-day 60` with its own home. Do not modify."""
    base = tmp_path_factory.mktemp("demo")
    env = clean_env(base / "home", base / "lake")
    built = run_cli(DEMO_ARGS, env=env, cwd=base)
    assert built.returncode == 0, built
    exported = run_cli(("keys", "export"), env=env, cwd=base)
    assert exported.returncode == 0, exported
    return DemoLake(base / "lake", base / "home", exported.stdout.strip())


@pytest.fixture
def demo_copy(demo_lake: DemoLake, home: Path, lake: Path) -> DemoLake:
    """A private copy of the demo lake and its home at the `env` fixture's paths."""
    shutil.copytree(demo_lake.lake, lake)
    shutil.copytree(demo_lake.home, home)  # copy2 keeps the key file's 0600 mode
    return DemoLake(lake, home, demo_lake.verifier_key)
