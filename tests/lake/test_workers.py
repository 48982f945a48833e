"""Worker pools (lake.storage): the fork server must import our packages, not folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
from concurrent.futures import ProcessPoolExecutor

from lake.storage import process_context

if __name__ == "__main__":
    with ProcessPoolExecutor(1, mp_context=process_context("lake.verify")) as pool:
        where = "__import__('lake.log', fromlist=['TileLog']).TileLog.__module__"
        print(pool.submit(eval, where).result())
"""


def test_workers_import_our_lake_package_from_a_directory_holding_a_lake(tmp_path: Path) -> None:
    # `auditlake verify` run next to a lake called `lake` (which has a `tiles/` folder):
    # Python 3.11's fork server puts its working directory first on sys.path, so without
    # care `lake` would be that folder in every worker ("cannot import name 'TileLog'").
    work = tmp_path / "work"
    (work / "lake" / "tiles").mkdir(parents=True)
    (work / "ingest").mkdir()
    script = tmp_path / "probe" / "run.py"
    script.parent.mkdir()
    script.write_text(PROBE)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "lake.log._tiles"
