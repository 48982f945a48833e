"""Snapshots of the main screens (pytest-textual-snapshot): results, an opened event,
alerts, help. Deterministic by construction: a fixed terminal size, the demo lake built
without the wall clock (tui_testkit), and nothing on screen that reads the clock.
Update after an intended change with `pytest tests/tui --snapshot-update` and look at
the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from tui_testkit import SIZE, DemoLake, settle

from tui.app import AuditlakeApp

Compare = Callable[..., bool]


def steps(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A `run_before`: settle on the opening search, press `keys`, settle again."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return run


def snap(snap_compare: Compare, demo: DemoLake, workdir: Path, *keys: str) -> bool:
    with demo.open() as session:
        app = AuditlakeApp(session, workdir=workdir)
        return snap_compare(app, terminal_size=SIZE, run_before=steps(*keys))


def test_results_screen(snap_compare: Compare, demo: DemoLake, workdir: Path) -> None:
    assert snap(snap_compare, demo, workdir)


def test_opened_event_with_its_proof(snap_compare: Compare, demo: DemoLake, workdir: Path) -> None:
    assert snap(snap_compare, demo, workdir, "down", "down", "enter")


def test_alerts_screen(snap_compare: Compare, demo: DemoLake, workdir: Path) -> None:
    assert snap(snap_compare, demo, workdir, "A", "down")


def test_help_screen(snap_compare: Compare, demo: DemoLake, workdir: Path) -> None:
    assert snap(snap_compare, demo, workdir, "question_mark")
