"""What the CLI tests share at run time: the console script, one run's result, the demo lake.

A module of its own (not conftest.py) so test modules can import it by a name no other
test folder uses: `from conftest import ...` resolves to whichever folder's conftest was
imported first when several folders run in one session. The console-script runner and the
clean environment live in testkit, where the dashboard tests use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from testkit import AUDITLAKE, TIMEOUT, Result, clean_env, run_cli

__all__ = [
    "AUDITLAKE",
    "DEMO_ARGS",
    "TIMEOUT",
    "DemoLake",
    "Result",
    "Run",
    "clean_env",
    "run_cli",
]

DEMO_ARGS = ("demo", "--days", "2", "--events-per-day", "60")

Run = Callable[..., Result]


@dataclass(frozen=True)
class DemoLake:
    """A demo lake built once, with the home whose key signed it."""

    lake: Path
    home: Path
    verifier_key: str

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.home, self.lake)

    def tenants(self) -> list[str]:
        return sorted(p.name.split("=", 1)[1] for p in (self.lake / "events").glob("tenant=*"))

    def event_ids(self, tenant: str) -> list[str]:
        """Stored event ids of one tenant, read straight from its data files."""
        ids: list[str] = []
        for f in sorted((self.lake / "events" / f"tenant={tenant}").rglob("*.parquet")):
            ids += pq.ParquetFile(f).read(columns=["event_id"]).column(0).to_pylist()
        return ids
