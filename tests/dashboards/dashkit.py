"""Helpers for the dashboard tests: the demo lake, the CLI, and reading AppTest pages.

Expected numbers are computed from a test's copy of the lake through the admin's
`LakeSession` and Polars, never through dashboard code. AppTest pages are read through
the helpers at the end (metrics, dataframes, all rendered text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from streamlit.testing.v1 import AppTest
from testkit import Result, clean_env, run_cli

import lake.api

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboards" / "app.py"
RUN_TIMEOUT = 60  # seconds for one AppTest run (first imports of polars/duckdb included)
# Who may see what in every test: alice audits contoso, bob views globex, dave
# investigates northwind; admin is the local operator.
GRANTS = (
    ("alice", "contoso", "auditor"),
    ("bob", "globex", "viewer"),
    ("dave", "northwind", "investigator"),
)
PRINCIPALS = ("admin", "alice", "bob", "dave")


def cli(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """The installed console script (testkit's runner: a traceback fails the test)."""
    return run_cli(args, env=env, cwd=cwd)


@dataclass(frozen=True)
class Demo:
    """A demo lake, its config home, one sign-in token per principal, the verifier key."""

    lake: Path
    home: Path
    tokens: dict[str, str]
    verifier_key: str

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.home, self.lake)

    def events(self) -> pl.DataFrame:
        """Every event of every tenant, read as the operator (for expected values)."""
        with lake.api.open(self.lake, as_="admin", home=self.home) as s:
            frame: pl.DataFrame = s.events().collect()
        return frame

    def admin_sql(self, query: str) -> pl.DataFrame:
        with lake.api.open(self.lake, as_="admin", home=self.home) as s:
            frame: pl.DataFrame = s.sql(query)
        return frame

    def days(self) -> list[date]:
        return sorted(set(self.events()["time"].dt.date().to_list()))


def fresh_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)


def sign_in(token: str) -> AppTest:
    """The app after typing `token` into the sign-in form and pressing Sign in."""
    at = fresh_app().run()
    at.text_input(key="token_input").input(token)
    at.button[0].click()
    return at.run()


def open_page(at: AppTest, name: str) -> AppTest:
    """Switch to one of the pages and render it; fails on any exception."""
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def frames(at: AppTest) -> list[Any]:
    """The pandas frames of every st.dataframe on the page."""
    return [d.value for d in at.dataframe]


def frame_with(at: AppTest, column: str) -> Any:
    """The first dataframe on the page with this column."""
    for f in frames(at):
        if column in f.columns:
            return f
    raise AssertionError(
        f"no dataframe with a {column!r} column: {[list(f.columns) for f in frames(at)]}"
    )


def page_text(at: AppTest) -> str:
    """Every string value rendered on the page (markdown, alerts, captions, cells)."""
    parts: list[str] = []
    for kind in (
        "markdown",
        "caption",
        "info",
        "error",
        "success",
        "warning",
        "subheader",
        "title",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    for f in frames(at):
        parts.append(f.to_csv())
    for m in at.metric:
        parts.append(f"{m.label}: {m.value}")
    for w in at.multiselect:
        parts += [str(o) for o in w.options]
    return "\n".join(parts)
