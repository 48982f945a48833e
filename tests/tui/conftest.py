"""Fixtures of the TUI tests: a demo lake built once per session (per xdist worker) and
a private copy of it per test (every search writes the read audit), sessions on it, and
the app. See tui_testkit for why the lake is built in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_testkit import DemoLake, build_demo

import lake.api
from lake.api import LakeSession
from tui.app import AuditlakeApp


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> DemoLake:
    """The session's demo lake. Do not open it: every search writes; use `demo`."""
    base = tmp_path_factory.mktemp("tui-demo")
    build_demo(base / "lake", base / "home")
    return DemoLake(base / "lake", base / "home")


@pytest.fixture
def demo(demo_lake: DemoLake, tmp_path: Path) -> DemoLake:
    """A private copy of the demo lake and its home."""
    return demo_lake.copy(tmp_path)


@pytest.fixture
def session(demo: DemoLake) -> Iterator[LakeSession]:
    """The operator's session on the private copy, closed (audit flushed) afterwards."""
    with demo.open() as s:
        yield s


@pytest.fixture
def reference(demo: DemoLake) -> Iterator[LakeSession]:
    """A second, unbuffered session to compute what the TUI should show."""
    with lake.api.open(demo.lake, home=demo.home, interface="test") as s:
        yield s


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def make_app(session: LakeSession, workdir: Path) -> Any:
    """`make_app(**kwargs)`: the app on the operator's session, writing into `workdir`."""

    def _make(**kwargs: Any) -> AuditlakeApp:
        kwargs.setdefault("workdir", workdir)
        return AuditlakeApp(kwargs.pop("session", session), **kwargs)

    return _make


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"
