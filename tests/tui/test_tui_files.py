"""Files the TUI writes: exports of every result (not just the loaded page) and evidence
packs that verify offline; defaults in the working directory, nothing overwritten."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from textual.widgets import Input
from tui_testkit import (
    DemoLake,
    app_of,
    running,
    search,
    settle,
    status,
)

from lake.api import LakeSession
from lake.contract import EVENTS_SCHEMA
from lake.proofs import check_pack
from lake.query import read_export
from lake.secrets import TrustStore
from tui.components.prompt import PathPrompt

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("name", "fmt"), [(None, "csv"), ("failures.json", "json")])
async def test_export_writes_every_result_of_the_search(
    make_app: Any, reference: LakeSession, workdir: Path, name: str | None, fmt: str
) -> None:
    query = "outcome:failure"
    async with running(make_app(page_rows=20)) as pilot:
        app = app_of(pilot)
        await search(pilot, query)
        await pilot.press("e")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        assert prompt.default == workdir / "auditlake-results.csv"
        if name is not None:
            prompt.query_one(Input).value = name  # relative: into the working directory
        await pilot.press("enter")
        await settle(pilot)
        assert len(app.results.events) == 20  # only a page is loaded…
        path = workdir / (name or "auditlake-results.csv")
        assert any(str(path) in n.message for n in app._notifications)
    exported = read_export(path, fmt, EVENTS_SCHEMA)
    want = reference.search(query, limit=None).to_arrow()
    assert exported.num_rows == want.num_rows > 20  # …but every result is exported
    assert exported.to_pylist() == want.to_pylist()
    assert not list(workdir.glob("*.part"))


async def test_export_never_overwrites_a_file(make_app: Any, workdir: Path) -> None:
    (workdir / "auditlake-results.csv").write_text("keep me")
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("e")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        assert prompt.default == workdir / "auditlake-results-2.csv"  # a free name
        prompt.query_one(Input).value = "auditlake-results.csv"
        await pilot.press("enter")
        await settle(pilot)
        assert any("exists already" in n.message for n in app._notifications)
    assert (workdir / "auditlake-results.csv").read_text() == "keep me"


async def test_evidence_pack_of_marked_events(make_app: Any, demo: DemoLake, workdir: Path) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        await pilot.press("space", "down", "down", "space")
        marked = [app.results.events[0]["event_id"], app.results.events[2]["event_id"]]
        assert "2 marked" in status(app)
        await pilot.press("E")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        assert prompt.default == workdir / "evidence-2-events.zip"
        await pilot.press("enter")
        await settle(pilot)
    data = (workdir / "evidence-2-events.zip").read_bytes()
    assert len(check_pack(data, TrustStore(demo.home).keys())) == 2
    manifest = orjson.loads(
        zipfile.ZipFile(workdir / "evidence-2-events.zip").read("manifest.json")
    )
    assert sorted(manifest["event_ids"]) == sorted(marked)


async def test_evidence_pack_of_the_event_under_the_cursor(make_app: Any, workdir: Path) -> None:
    async with running(make_app()) as pilot:
        app = app_of(pilot)
        event = app.results.events[0]
        await pilot.press("E")
        await settle(pilot)
        await pilot.press("escape")  # cancelled: nothing written
        await settle(pilot)
        assert not list(workdir.iterdir())
        await pilot.press("E")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
    name = f"evidence-{event['tenant']}-{event['event_id'][:13]}.zip"
    assert (workdir / name).is_file()
