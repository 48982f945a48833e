"""`auditlake tui` on the command line: its help explains the keys, and what can be
refused before a screen appears is refused with a one-line message (exit 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tui_testkit import DemoLake

from lake.secrets import AccessPolicy

AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))


def run(demo: DemoLake, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert AUDITLAKE
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}
    env |= {"AUDITLAKE_HOME": str(demo.home), "AUDITLAKE_LAKE": str(demo.lake)}
    return subprocess.run(
        [AUDITLAKE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_help_explains_the_keys(demo: DemoLake, tmp_path: Path) -> None:
    done = run(demo, "tui", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for key in ("/", "Enter", "a i t", "w ", "A ", "e ", "E ", "?", "q ", "ctrl+p", "--tenant"):
        assert key in done.stdout, key


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--as", "bob", "tui", "--tenant", "globex"), "bob"),
        (("tui", "--tenant", "Not A Tenant"), "tenant"),
        (("tui",), "needs a terminal"),
    ],
)
def test_refusals_are_one_line(
    demo: DemoLake, tmp_path: Path, args: tuple[str, ...], reason: str
) -> None:
    AccessPolicy(demo.home).grant("bob", "contoso", "viewer")
    done = run(demo, *args, cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.startswith("auditlake: ") and len(done.stderr.splitlines()) == 1
    assert reason in done.stderr
