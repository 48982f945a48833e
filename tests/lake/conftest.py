"""Small real lakes in tmp dirs: built once per session from the demo generator, copied per test."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from lake_testkit import Built, EncryptedAppend, LakeCopy, new_lake

from ingest.demo import generate
from lake.contract import validate
from lake.storage import Lake
from lake.write import append


def build_lake(root: Path, home: Path, *, days: int = 3, per_day: int = 120) -> None:
    lake, signer = new_lake(root, home, "test")
    data = generate(days=days, events_per_tenant_per_day=per_day, seed=3)
    days_seen: dict[str, list[dict[str, object]]] = {}
    for event in data.events:
        days_seen.setdefault(str(event["time"])[:10], []).append(event)
    for day in sorted(days_seen):
        append(lake, validate(days_seen[day], namespace=day.encode()).table, signer)


@pytest.fixture(scope="session")
def built_lake(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("golden")
    build_lake(base / "lake", base / "home")
    return Built(base / "lake", base / "home")


@pytest.fixture
def lake_copy(built_lake: Built, tmp_path: Path) -> LakeCopy:
    return built_lake.copy(tmp_path)


@pytest.fixture
def encrypted_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EncryptedAppend:
    """`encrypted_lake(events)`: a lake created with encryption (master key from the
    environment, home in tmp_path) holding these wire events of tenant acme, signed."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUDITLAKE_HOME", str(home))
    monkeypatch.setenv("AUDITLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())

    def make(events: list[dict[str, object]]) -> tuple[Lake, Path]:
        lake, signer = new_lake(tmp_path / "lake", home, "enc", encrypted=True)
        append(lake, validate(events, namespace=b"acme").table, signer)
        return lake, home

    return make
