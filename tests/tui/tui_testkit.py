"""Helpers of the TUI tests: the deterministic demo lake, and driving the app.

Why not `auditlake demo` in a subprocess, as tests/cli does: the demo stamps each batch
with the wall clock (`received_at`, `batch_id`, and so every leaf hash), and the detail
pane shows those fields, so snapshots would change from run to run. `build_demo` builds the
same lake the same way (`ingest.demo.generate`, one signed batch a day, the built-in
detection pack) but with a fixed arrival time and fixed batch ids: every byte on screen
is deterministic.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
import zipfile
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from textual.pilot import Pilot

import lake.api
from detect.model import load_rules
from detect.runner import run as run_detection
from ingest.demo import generate
from lake.api import LakeSession
from lake.contract import validate
from lake.query import SearchFilter
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake
from lake.write import append
from tui.app import AuditlakeApp
from tui.components.alerts import AlertsScreen

SIZE = (140, 40)
DAYS, PER_DAY, SEED = 2, 60, 7
RECEIVED_AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
BATCH_NAMESPACE = uuid.UUID("6f1c2a4e-0d3b-4c55-9a77-2e8b1d0c9f10")


@dataclass(frozen=True)
class DemoLake:
    """A demo lake and the config home whose key signed it."""

    lake: Path
    home: Path

    def copy(self, dest: Path) -> DemoLake:
        shutil.copytree(self.lake, dest / "lake")
        shutil.copytree(self.home, dest / "home")  # copy2 keeps the key file's 0600 mode
        return DemoLake(dest / "lake", dest / "home")

    def open(self, principal: str = "admin") -> LakeSession:
        """A session as the TUI opens it (buffered read audit, interface "tui")."""
        return lake.api.open(
            self.lake, as_=principal, home=self.home, interface="tui", buffered=True
        )


def build_demo(root: Path, home: Path) -> None:
    """`auditlake demo --days 2 --events-per-day 60`, without the wall clock."""
    store = KeyStore(home)
    signer = store.generate("demo-signing-key")
    TrustStore(home).add(signer.verifier_key)
    built = Lake.init(root, "demo", signer.verifier_key.encode(), extra={"demo": True})
    data = generate(days=DAYS, events_per_tenant_per_day=PER_DAY, seed=SEED)
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in data.events:
        by_day[event["time"][:10]].append(event)
    for day in sorted(by_day):
        batch = validate(by_day[day], namespace=f"demo-{SEED}-{day}".encode())
        assert not batch.rejected
        batch_id = str(uuid.uuid5(BATCH_NAMESPACE, day))
        append(built, batch.table, signer, batch_id=batch_id, received_at=RECEIVED_AT)
    run_detection(built, load_rules(), now=RECEIVED_AT + timedelta(minutes=5))


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until no worker runs and every message they posted is handled (never sleeps:
    a handled message may start another worker, e.g. the timeline after the first page)."""
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return
    raise AssertionError("workers kept starting")


@contextlib.asynccontextmanager
async def running(app: AuditlakeApp) -> AsyncIterator[Pilot[Any]]:
    """The app running headless at 140×40, settled on its opening search."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        yield pilot


# -- driving the app ----------------------------------------------------------------------


def app_of(pilot: Pilot[Any]) -> AuditlakeApp:
    """The app a pilot drives, typed as ours."""
    app = pilot.app
    assert isinstance(app, AuditlakeApp)
    return app


def shown(app: AuditlakeApp) -> list[str]:
    """Event ids in the results table, top to bottom."""
    return [e["event_id"] for e in app.results.events]


def expected(reference: LakeSession, query: str | SearchFilter) -> list[str]:
    """Event ids the lake returns for `query`, newest first, every page."""
    ids: list[str] = reference.search(query, limit=None).to_arrow().column("event_id").to_pylist()
    return ids


def read_manifest(pack: Path) -> Any:
    with zipfile.ZipFile(pack) as zf:
        return orjson.loads(zf.read("manifest.json"))


async def search(pilot: Pilot[Any], text: str, *, type_it: bool = False) -> None:
    """Focus the search box with /, enter a query (typed key by key, or pasted: typing is
    slow under the Pilot) and apply it with Enter."""
    await pilot.press("slash")
    app = app_of(pilot)
    assert app.search_box.has_focus
    app.search_box.value = ""
    if type_it:
        await pilot.press(*text)
    else:
        app.search_box.insert_text_at_cursor(text)
    await pilot.press("enter")
    await settle(pilot)


async def load_all(pilot: Pilot[Any]) -> None:
    app = app_of(pilot)
    for _ in range(100):
        if app.next_cursor is None:
            return
        await pilot.press("n")
        await settle(pilot)
    raise AssertionError("results never ended")


def status(app: AuditlakeApp) -> str:
    return str(app.query_one("#status").render())


async def open_alerts(pilot: Pilot[Any]) -> AlertsScreen:
    await pilot.press("A")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AlertsScreen)
    return screen
