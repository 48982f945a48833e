"""The layers hold at run time, not only in the import statements.

The layer rules themselves are import-linter contracts in pyproject.toml, checked by
`make test` (`lint-imports`) and by `test_the_import_contracts_are_kept` here. What a static
graph cannot see is checked in fresh interpreters:

- a core package that pulls in a UI toolkit, the CLI or a package above it *through a
  third-party dependency* shows up in `sys.modules`;
- an import cycle hidden behind `__init__.py` re-exports only breaks when its modules are
  imported in one particular order: every module is imported *first* (with every one of
  our packages dropped from `sys.modules` before it), so each order a user might hit is
  tried once.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("lake", "ingest", "detect", "tui", "dashboards", "auditlake", "benchmarks")
# Never importable from the core: UI toolkits, the CLI stack, and every package above.
ABOVE_CORE = frozenset(
    {"textual", "streamlit", "click", "rich", "auditlake", "tui", "dashboards", "detect"}
)
FORBIDDEN = {
    "lake": ABOVE_CORE | {"ingest"},
    "ingest": ABOVE_CORE,
    "detect": ABOVE_CORE - {"detect"},
}
# Streamlit page scripts: they run inside a Streamlit session only (st.navigation).
SCRIPTS = ("dashboards.views.",)


def package_modules(package: str) -> list[str]:
    """The package and every module under it, found on disk (not via its imports)."""

    def fail(name: str) -> None:
        raise ImportError(f"cannot walk {name}")

    found = pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.", onerror=fail)
    return [package, *sorted(m.name for m in found)]


def python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def imported_by(modules: list[str]) -> set[str]:
    """Top-level names in sys.modules after importing `modules` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    return {name.split(".", 1)[0] for name in json.loads(python(code))}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    modules = package_modules(package)
    assert modules, package

    leaked = sorted(imported_by(modules) & FORBIDDEN[package])

    assert not leaked, f"importing {package} ({len(modules)} modules) pulls in {leaked}"


@pytest.mark.parametrize("package", OURS)
def test_every_module_imports_first(package: str) -> None:
    modules = [m for m in package_modules(package) if not m.startswith(SCRIPTS)]
    code = (
        "import importlib, json, sys, traceback\n"
        f"ours = {OURS!r}\n"
        "failed = {}\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ours]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed[name] = traceback.format_exc(limit=-3)\n"
        "print(json.dumps(failed))\n"
    )

    failed = json.loads(python(code))

    assert not failed, "\n".join(f"{name}:\n{why}" for name, why in failed.items())


def test_the_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed beside this Python"

    proc = subprocess.run(
        [lint, "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )

    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "BROKEN" not in proc.stdout
    assert proc.stdout.count("KEPT") >= 4, proc.stdout  # every layer contract was checked


def test_the_walk_finds_the_core_modules() -> None:
    # Guards the tests above against vacuously passing on an empty walk.
    lake = package_modules("lake")
    assert {"lake.storage", "lake.verify", "lake.log", "lake.api"} <= set(lake)
    assert "lake.storage._lake" in lake  # private modules are walked too
    assert "ingest.files" in package_modules("ingest")
