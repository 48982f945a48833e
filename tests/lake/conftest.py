"""Small real lakes in tmp dirs: built once per session from the demo generator, copied per test."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.demo import generate
from lake.contract import validate
from lake.log import NoteSigner, VerifierKey
from lake.secrets import FIELDS, KeyStore, TrustStore
from lake.storage import Lake
from lake.write import append


@dataclass
class Built:
    root: Path
    home: Path

    def copy(self, dest: Path) -> tuple[Lake, NoteSigner, list[VerifierKey]]:
        shutil.copytree(self.root, dest / "lake")
        store = KeyStore(self.home)
        return Lake.open(dest / "lake"), store.active(), TrustStore(self.home).keys()


def build_lake(root: Path, home: Path, *, days: int = 3, per_day: int = 120) -> None:
    store = KeyStore(home)
    signer = store.generate("test-key")
    TrustStore(home).add(signer.verifier_key)
    lake = Lake.init(root, "test", signer.verifier_key.encode())
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
def lake_copy(built_lake: Built, tmp_path: Path) -> tuple[Lake, NoteSigner, list[VerifierKey]]:
    return built_lake.copy(tmp_path)


EncryptedAppend = Callable[[list[dict[str, object]]], tuple[Lake, Path]]


@pytest.fixture
def encrypted_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EncryptedAppend:
    """`encrypted_lake(events)`: a lake created with encryption (master key from the
    environment, home in tmp_path) holding these wire events of tenant acme, signed."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUDITLAKE_HOME", str(home))
    monkeypatch.setenv("AUDITLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())

    def make(events: list[dict[str, object]]) -> tuple[Lake, Path]:
        signer = KeyStore(home).generate("k")
        TrustStore(home).add(signer.verifier_key)
        sealed = {"encryption": {"enabled": True, "fields": list(FIELDS)}}
        lake = Lake.init(tmp_path / "lake", "enc", signer.verifier_key.encode(), extra=sealed)
        append(lake, validate(events, namespace=b"acme").table, signer)
        return lake, home

    return make
