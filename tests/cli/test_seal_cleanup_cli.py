"""`seal` removes temporary tile files a crash or a full disk left behind, and only those."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lake.log import STALE_TEMP_SECONDS

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


def test_seal_removes_stale_temporary_tile_files(run: Run, demo_copy: DemoLake) -> None:
    tenant = demo_copy.tenants()[0]
    tiles = demo_copy.lake / "tiles" / tenant / "tile" / "0"
    stale, fresh = tiles / ".tmp-0123abcd", tiles / ".tmp-4567ef01"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")  # as a concurrent writer's would be, between write and rename
    st = fresh.stat()
    old = st.st_mtime - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    result = run("seal", "--tenant", tenant)
    assert result.returncode == 0, result
    assert "removed 1 stale temporary tile file" in result.stderr
    assert not stale.exists() and fresh.exists()
    tile_files = [p for p in (demo_copy.lake / "tiles").rglob("*") if p.is_file()]
    assert tile_files and all(p == fresh or not p.name.startswith(".tmp-") for p in tile_files)
    assert run("verify").returncode == 0


def test_seal_of_every_tenant_cleans_each(run: Run, demo_copy: DemoLake) -> None:
    stale: list[Path] = []
    for tenant in demo_copy.tenants():
        path = demo_copy.lake / "tiles" / tenant / f".tmp-{tenant}"
        path.write_bytes(b"")
        os.utime(path, (0, 0))
        stale.append(path)
    assert run("seal").returncode == 0
    assert not any(p.exists() for p in stale)
