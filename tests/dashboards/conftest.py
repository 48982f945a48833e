"""Fixtures of the dashboard tests: a demo lake with principals and sign-in tokens.

The demo lake is built once per session (per xdist worker) by the real `auditlake demo`,
with grants and tokens made by the real `auditlake access grant|token`; every test gets a
private copy, because every page render writes to the read audit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dashkit import GRANTS, PRINCIPALS, Demo, cli, sign_in
from streamlit.testing.v1 import AppTest
from testkit import clean_env


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`auditlake demo --days 2 --events-per-day 60`, grants and tokens. Do not modify."""
    base = tmp_path_factory.mktemp("dash-demo")
    env = clean_env(base / "home", base / "lake")
    built = cli("demo", "--days", "2", "--events-per-day", "60", env=env, cwd=base)
    assert built.returncode == 0, built.stderr
    for principal, tenant, role in GRANTS:
        granted = cli(
            "access", "grant", principal, "--tenant", tenant, "--role", role, env=env, cwd=base
        )
        assert granted.returncode == 0, granted.stderr
    tokens = {}
    for principal in PRINCIPALS:
        made = cli("access", "token", principal, env=env, cwd=base)
        assert made.returncode == 0, made.stderr
        tokens[principal] = made.stdout.strip()
    key = cli("keys", "export", env=env, cwd=base)
    assert key.returncode == 0, key.stderr
    return Demo(base / "lake", base / "home", tokens, key.stdout.strip())


@pytest.fixture
def demo(demo_source: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """A private copy of the demo lake and home, which the dashboard is pointed at."""
    copy = Demo(tmp_path / "lake", tmp_path / "home", demo_source.tokens, demo_source.verifier_key)
    shutil.copytree(demo_source.lake, copy.lake)
    shutil.copytree(demo_source.home, copy.home)  # copy2 keeps the 0600 modes
    for key in [k for k in os.environ if k.startswith("AUDITLAKE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AUDITLAKE_HOME", str(copy.home))
    monkeypatch.setenv("AUDITLAKE_LAKE", str(copy.lake))
    return copy


@pytest.fixture
def signed_in(demo: Demo) -> Callable[[str], AppTest]:
    """`signed_in(principal)`: the app, signed in through the form with that principal's token."""

    def _sign_in(principal: str) -> AppTest:
        at = sign_in(demo.tokens[principal])
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _sign_in
