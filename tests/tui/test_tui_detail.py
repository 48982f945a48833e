"""The detail pane: opening an event shows its fields and checks its inclusion proof;
a tampered row shows the finding instead of a tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tui_testkit import (
    DemoLake,
    app_of,
    running,
    search,
    settle,
)

from lake.api import LakeSession
from tui.app import AuditlakeApp
from tui.components.detail import Check

pytestmark = pytest.mark.anyio


def check_of(app: AuditlakeApp) -> Check:
    """The detail pane's proof state, read afresh (workers change it between awaits)."""
    return app.detail.integrity.check


async def test_opening_an_event_shows_a_verified_proof(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("down", "down")
        event = app.results.events[2]
        assert app.detail.event is event
        assert check_of(app) is Check.NOT_RUN  # moving only previews
        await pilot.press("enter")
        await settle(pilot)
        assert check_of(app) is Check.VERIFIED
        text = app.detail.text()
        assert "✓ verified" in text
        assert f"event {event['event_id']} is leaf {event['seq']}" in text
        assert "signed by a trusted key" in text
        for value in (event["event_id"], event["actor_id"], event["action"]):
            assert value in text


async def test_clicking_an_event_opens_it(make_app: Any) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        row_3 = (5, 1 + 3)  # below the header row
        await pilot.click("#results", offset=row_3)  # the first click moves the cursor…
        await settle(pilot)
        assert app.detail.event is app.results.events[3]
        assert check_of(app) is Check.NOT_RUN
        await pilot.click("#results", offset=row_3)  # …a click on the cursor opens it
        await settle(pilot)
        assert check_of(app) is Check.VERIFIED


async def test_the_details_json_is_pretty_printed(make_app: Any, reference: LakeSession) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        row = next(i for i, e in enumerate(app.results.events) if e["details"] not in (None, "{}"))
        app.results.move_cursor(row=row)
        await settle(pilot)
        details = orjson.loads(app.results.events[row]["details"])
        text = app.detail.text()
        key = sorted(details)[0]
        assert f'  "{key}": ' in text  # indented, one key a line


def tamper(root: Path, tenant: str) -> tuple[str, str]:
    """Change one stored value (actor_id) of one event in place, as an attacker with write
    access to the lake's files could; returns (event_id, new actor)."""
    path = max(
        (root / "events" / f"tenant={tenant}").rglob("*.parquet"), key=lambda p: p.stat().st_size
    )
    table = pq.read_table(path)
    actors = table.column("actor_id").to_pylist()
    actors[3] = "mallory@evil.example"
    index = table.schema.get_field_index("actor_id")
    pq.write_table(table.set_column(index, "actor_id", pa.array(actors)), path)
    return str(table.column("event_id")[3].as_py()), actors[3]


async def test_a_tampered_event_shows_the_finding(demo: DemoLake, workdir: Path) -> None:
    event_id, actor = tamper(demo.lake, "northwind")
    with demo.open() as session:
        async with running(AuditlakeApp(session, workdir=workdir)) as pilot:
            app = app_of(pilot)
            await search(pilot, f"id:{event_id}")
            assert [e["actor_id"] for e in app.results.events] == [actor]
            await pilot.press("enter")
            await settle(pilot)
            assert check_of(app) is Check.FAILED
            text = app.detail.text()
            assert "✗ integrity check failed" in text
            assert f"the stored event {event_id} does not match its leaf hash" in text
            # An untouched event of the same tenant still checks.
            await search(pilot, "tenant:northwind")
            clean = next(i for i, e in enumerate(app.results.events) if e["event_id"] != event_id)
            app.results.move_cursor(row=clean)
            await pilot.press("enter")
            await settle(pilot)
            assert check_of(app) is Check.VERIFIED
