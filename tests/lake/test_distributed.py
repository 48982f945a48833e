"""Verify split into seq ranges, locally and on Ray, gives the single-pass report.

The demo lake of tests/lake/conftest.py (three tenants, ~400 events each with the
planted incidents) is cut into ranges of 256 events, so every tenant spans two or more
range tasks and the driver must combine subtree roots and merge findings across them.
A local Ray instance (2 CPUs) is started once per test session (per xdist worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_testkit import LakeCopy
from test_verify_kinds import assert_typed

from lake.log import VerifierKey, tile_path
from lake.storage import Lake
from lake.verify import (
    Engine,
    RangeMode,
    RangeTask,
    RayRunner,
    Report,
    ray_session,
    verify_lake,
    verify_lake_ray,
    verify_with,
)

SMALL = 256  # events per range: the smallest (one tile)
Tampered = tuple[Lake, list[VerifierKey]]


@pytest.fixture(scope="session")
def ray_module() -> Iterator[Any]:
    with ray_session(None, num_cpus=2) as ray:
        yield ray


class Recording(RayRunner):
    """A RayRunner that remembers the tasks it ran."""

    def __init__(self, ray: Any) -> None:
        super().__init__(ray)
        self.tasks: list[RangeTask] = []

    def submit(self, task: RangeTask) -> Any:
        self.tasks.append(task)
        return super().submit(task)


def data_files(lake: Lake, tenant: str) -> list[Path]:
    files = lake.data_files(lake.events_table(), tenants={tenant})
    return [
        Path(lake.root) / "events" / f.path for f in sorted(files, key=lambda f: f.min_seq or 0)
    ]


def set_column(table: pa.Table, name: str, values: list[Any], type_: Any = None) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, type_))


def tamper(lake: Lake) -> None:
    """Northwind: a changed row, a deleted row, and in the file that straddles the first
    range boundary, the seqs of two rows on either side of it swapped. Contoso: a
    checkpoint whose signature no longer verifies. Globex: a level-0 tile flipped (so the
    rows are re-hashed into a tree, a second round) and two rows deleted."""
    files = lake.data_files(lake.events_table(), tenants={"northwind"})
    files.sort(key=lambda f: f.min_seq or 0)
    root = Path(lake.root) / "events"
    first = pq.read_table(root / files[0].path)
    actors = first.column("actor_id").to_pylist()
    actors[3] = "mallory"
    pq.write_table(set_column(first, "actor_id", actors), root / files[0].path)
    across = next(f for f in files if (f.min_seq or 0) < SMALL <= (f.max_seq or 0))
    table = pq.read_table(root / across.path)
    seqs = table.column("seq").to_pylist()
    seqs[0], seqs[-1] = seqs[-1], seqs[0]
    pq.write_table(set_column(table, "seq", seqs, pa.int64()), root / across.path)
    last = root / files[-1].path
    pq.write_table(pq.read_table(last).slice(1), last)

    cp_files = sorted((Path(lake.root) / "checkpoints" / "tenant=contoso").glob("*.parquet"))
    newest = max(cp_files, key=lambda p: max(pq.read_table(p).column("tree_size").to_pylist()))
    cps = pq.read_table(newest)
    notes = cps.column("note").to_pylist()
    body, sig = notes[-1].rsplit(" ", 1)
    notes[-1] = body + " " + sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    pq.write_table(set_column(cps, "note", notes), newest)

    tile = Path(lake.root) / tile_path("globex", 0, 0, 256)
    data = bytearray(tile.read_bytes())
    data[0] ^= 1
    tile.write_bytes(bytes(data))
    globex = data_files(lake, "globex")[-1]
    pq.write_table(pq.read_table(globex).slice(2), globex)


def kinds(report: Report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.tenant, set()).add(f.kind)
    return out


@pytest.fixture
def tampered(lake_copy: LakeCopy) -> Tampered:
    lake, _, trusted = lake_copy
    tamper(lake)
    return Lake.open(lake.root), trusted


def test_ranges_in_this_process_give_the_single_pass_report(tampered: Tampered) -> None:
    lake, trusted = tampered
    whole = verify_lake(lake, trusted)
    assert kinds(whole) == {
        "northwind": {"modified", "missing", "reordered"},
        "contoso": {"bad_signature", "unsealed"},  # the newest batch lost its seal
        "globex": {"bad_tiles", "missing"},
    }
    assert verify_lake(lake, trusted, range_events=SMALL).as_dict() == whole.as_dict()


def test_ray_report_equals_local_on_a_clean_lake(lake_copy: LakeCopy, ray_module: Any) -> None:
    lake, _, trusted = lake_copy
    local = verify_lake(lake, trusted)
    assert local.ok
    assert verify_lake_ray(lake, trusted, range_events=SMALL).as_dict() == local.as_dict()


def test_ray_report_equals_local_on_a_tampered_lake(tampered: Tampered, ray_module: Any) -> None:
    lake, trusted = tampered
    local = verify_lake(lake, trusted)
    runner = Recording(ray_module)
    remote = verify_lake(lake, trusted, range_events=SMALL, runner=runner)
    assert remote.as_dict() == local.as_dict()
    assert not remote.ok
    assert_typed(remote)  # findings made on Ray workers come back as FindingKinds
    # Every tenant was really cut: several tiles tasks each, and globex a rows round.
    for tenant in ("northwind", "contoso", "globex"):
        tiles = [t for t in runner.tasks if t.tenant == tenant and t.mode is RangeMode.TILES]
        assert len(tiles) >= 2 and all(t.bits == 8 for t in tiles), tenant
    assert any(t.tenant == "globex" and t.mode is RangeMode.ROWS for t in runner.tasks)
    assert any(t.tenant == "northwind" and t.mode is RangeMode.HOMES for t in runner.tasks)


def test_verify_with_the_cli_engine_name_runs_on_ray(tampered: Tampered, ray_module: Any) -> None:
    lake, trusted = tampered
    local = verify_with(Engine.LOCAL, lake, trusted)
    remote = verify_with("ray", lake, trusted, range_events=SMALL)
    assert not local.ok and remote.as_dict() == local.as_dict()


def test_a_file_with_seqs_outside_its_statistics_is_checked_whole(
    lake_copy: LakeCopy, ray_module: Any
) -> None:
    # An attacker copies one day's file over another's: the Delta statistics (the
    # planner's map from seq to file) now lie, so range tasks could miss rows. The tenant
    # falls back to one range and the report still matches the single pass.
    lake, _, trusted = lake_copy
    files = data_files(lake, "northwind")
    files[-1].write_bytes(files[0].read_bytes())
    runner = Recording(ray_module)
    remote = verify_lake(lake, trusted, range_events=SMALL, runner=runner)
    local = verify_lake(lake, trusted)
    assert remote.as_dict() == local.as_dict()
    assert {"misplaced", "duplicate", "missing"} <= kinds(local)["northwind"]
    northwind = [t for t in runner.tasks if t.tenant == "northwind"]
    assert northwind[0].bits == 8 and northwind[-1].bits is None


def test_unreachable_address_is_a_usage_error() -> None:
    from lake.contract import UsageError

    with (
        pytest.raises(UsageError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1 "),
        ray_session("127.0.0.1:1"),
    ):
        pass
