"""tui/ sits between the CLI and the core: it may import lake/ and detect/, never the CLI
(auditlake/) or the dashboards; proven like tests/test_layers.py, by what a fresh
interpreter has imported after importing every tui module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tui_imports_neither_the_cli_nor_the_dashboards() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "names = ['tui'] + [m.name for m in pkgutil.walk_packages(['tui'], prefix='tui.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps([len(names), sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    count, loaded = json.loads(done.stdout)
    assert count > 10  # the walk found the modules
    assert "textual" in loaded
    assert not {"auditlake", "dashboards", "streamlit", "click"} & set(loaded)
