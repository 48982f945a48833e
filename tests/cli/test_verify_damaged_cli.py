"""`auditlake verify` on a damaged lake: each unreadable part is a named finding (#17 B18).

Verify used to die with a traceback (FileNotFoundError, DeltaError) when a checkpoints
file was removed or a Delta commit was garbage. Each damage here is done to a copy of a
real demo lake; the answer must be exit 1, valid JSON and a finding that names the kind,
the tenant where the path tells it, and the path relative to the lake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run

Damage = Callable[[Path], tuple[str, str, str]]  # lake -> (kind, tenant, path in the lake)


def _first(lake: Path, pattern: str) -> Path:
    found = sorted(lake.glob(pattern))
    assert found, pattern
    return found[0]


def _rel(lake: Path, path: Path) -> str:
    return path.relative_to(lake).as_posix()


def remove_checkpoints_file(lake: Path) -> tuple[str, str, str]:
    path = _first(lake, "checkpoints/tenant=contoso/*.parquet")
    path.unlink()
    return "unreadable_file", "contoso", _rel(lake, path)


def garbage_checkpoints_commit(lake: Path) -> tuple[str, str, str]:
    path = sorted(lake.glob("checkpoints/_delta_log/*.json"))[-1]
    path.write_text("garbage\n")
    return "unreadable_table", "", _rel(lake, path)


def garbage_events_commit(lake: Path) -> tuple[str, str, str]:
    path = sorted(lake.glob("events/_delta_log/*.json"))[-1]
    path.write_text('{"commitInfo": {}}\nnot json at all\n')
    return "unreadable_table", "", _rel(lake, path)


def remove_events_commit(lake: Path) -> tuple[str, str, str]:
    path = sorted(lake.glob("events/_delta_log/*.json"))[1]
    path.unlink()
    return "unreadable_table", "", _rel(lake, path)


def remove_events_file(lake: Path) -> tuple[str, str, str]:
    path = _first(lake, "events/tenant=globex/*/*.parquet")
    path.unlink()
    return "unreadable_file", "globex", _rel(lake, path)


def corrupt_checkpoints_file(lake: Path) -> tuple[str, str, str]:
    path = _first(lake, "checkpoints/tenant=northwind/*.parquet")
    path.write_bytes(b"PAR1 not really")
    return "unreadable_file", "northwind", _rel(lake, path)


DAMAGES = [
    remove_checkpoints_file,
    garbage_checkpoints_commit,
    garbage_events_commit,
    remove_events_commit,
    remove_events_file,
    corrupt_checkpoints_file,
]


def _all_findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [*doc["lake_findings"], *(f for t in doc["tenants"] for f in t["findings"])]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_lake_is_a_finding_not_a_traceback(
    run: Run, demo_copy: DemoLake, damage: Damage
) -> None:
    kind, tenant, path = damage(demo_copy.lake)
    result = run("verify", "--format", "json")  # run() fails the test on a traceback
    assert result.returncode == 1, result
    doc = result.json()
    assert doc["ok"] is False
    named = [f for f in _all_findings(doc) if f["kind"] == kind and f.get("file") == path]
    assert named, _all_findings(doc)
    assert all(f.get("tenant", "") == tenant for f in named)
    assert path in named[0]["message"]
    # For people too: a table and a one-line count, still exit 1.
    table = run("verify")
    assert table.returncode == 1, table
    assert kind in table.stdout and "finding(s)" in table.stderr


def test_an_unreadable_events_log_is_a_finding_for_a_named_tenant_too(
    run: Run, demo_copy: DemoLake
) -> None:
    _, _, path = garbage_events_commit(demo_copy.lake)
    result = run("verify", "--tenant", "contoso", "--format", "json")
    assert result.returncode == 1, result  # not "no events for tenant contoso" (exit 2)
    assert [f["file"] for f in result.json()["lake_findings"]] == [path]
    # The record the dashboard shows does not call the unchecked tenant ok.
    last = json.loads((demo_copy.lake / "_auditlake" / "verify" / "last.json").read_text())
    assert last["contoso"]["ok"] is False
    assert "unreadable_table" in last["contoso"]["kinds"]


def test_a_missing_hash_tile_is_a_finding(run: Run, demo_copy: DemoLake) -> None:
    # Tiles are what verify checks the rows against and what proofs read.
    sealed = int(run("checkpoint", "export", "--tenant", "contoso").stdout.splitlines()[1])
    tile = demo_copy.lake / "tiles" / "contoso" / "tile" / "0" / "000.p" / str(sealed)
    tile.unlink()
    result = run("verify", "--format", "json")
    assert result.returncode == 1, result
    found = [f for t in result.json()["tenants"] for f in t["findings"]]
    assert [(f["tenant"], f["kind"]) for f in found] == [("contoso", "bad_tiles")]
    assert "missing" in found[0]["message"]
    assert found[0]["file"] == tile.relative_to(demo_copy.lake).as_posix()
