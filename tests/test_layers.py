"""Layers point down (the layout contract: layers point down), proven by what gets imported.

Each package's modules are all imported in one fresh interpreter, which then reports
`sys.modules`: a core package that pulls in a UI toolkit, the CLI or a package above it
(even indirectly, through a dependency) fails here, whatever the import statements look
like.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Never importable from the core: UI toolkits, the CLI stack, and every package above.
ABOVE_CORE = frozenset(
    {"textual", "streamlit", "click", "rich", "auditlake", "tui", "dashboards", "detect"}
)
FORBIDDEN = {
    "lake": ABOVE_CORE | {"ingest"},
    "ingest": ABOVE_CORE,
    "detect": ABOVE_CORE - {"detect"},
}


def package_modules(package: str) -> list[str]:
    """The package and every module under it, found on disk (not via its imports)."""

    def fail(name: str) -> None:
        raise ImportError(f"cannot walk {name}")

    found = pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.", onerror=fail)
    return [package, *sorted(m.name for m in found)]


def imported_by(modules: list[str]) -> set[str]:
    """Top-level names in sys.modules after importing `modules` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {name.split(".", 1)[0] for name in json.loads(proc.stdout)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    modules = package_modules(package)
    assert modules, package

    leaked = sorted(imported_by(modules) & FORBIDDEN[package])

    assert not leaked, f"importing {package} ({len(modules)} modules) pulls in {leaked}"


def test_the_walk_finds_the_core_modules() -> None:
    # Guards the test above against vacuously passing on an empty walk.
    lake = package_modules("lake")
    assert {"lake.storage", "lake.verify", "lake.log"} <= set(lake)
    assert "ingest.files" in package_modules("ingest")
