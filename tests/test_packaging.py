"""Packaging that fits other people's environments: ranges in pyproject, pins in constraints.

A service installs the SDK alone (`pip install auditlake`), the lake and each app come as
extras, and the `auditlake` command names the extra it misses instead of a traceback.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_sdk_import import fresh_python

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["lake", "ingest", "detect", "tui", "dashboards", "auditlake", "benchmarks"]
HEAVY = {"streamlit", "textual", "duckdb", "pyarrow", "deltalake", "numpy", "polars"}


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        doc: dict[str, Any] = tomllib.load(f)["project"]
    return doc


def requirements(project: dict[str, Any]) -> Iterator[tuple[str, Requirement]]:
    """(group, requirement) of the base set ("") and every extra, self-references left out."""
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    for group, lines in groups.items():
        for line in lines:
            req = Requirement(line)
            if canonicalize_name(req.name) != "auditlake":
                yield group, req


def constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exactly: {raw!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_requires_python_admits_3_11_to_3_13(project: dict[str, Any]) -> None:
    spec = SpecifierSet(project["requires-python"])
    assert all(spec.contains(v) for v in ("3.11.0", "3.12.8", "3.13.1"))
    assert not spec.contains("3.10.14")


def test_pyproject_has_ranges_and_constraints_pin_each_inside_its_range(
    project: dict[str, Any],
) -> None:
    pins = constraints()
    seen = list(requirements(project))
    assert len(seen) > 20
    for group, req in seen:
        where = f"{req} ({group or 'base'})"
        assert req.specifier, f"{where} has no range"
        assert all(s.operator not in ("==", "===") for s in req.specifier), f"{where} is exact"
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{where} has no pin in constraints.txt"
        assert req.specifier.contains(pin), f"{where}: constraints.txt pins {pin}, outside it"


def test_the_base_set_is_the_sdks_and_the_apps_are_extras(project: dict[str, Any]) -> None:
    base = {canonicalize_name(r.name) for g, r in requirements(project) if g == ""}
    assert base == {"orjson"}
    extras = project["optional-dependencies"]
    for extra, package in (("dashboard", "streamlit"), ("tui", "textual"), ("lake", "duckdb")):
        assert any(Requirement(r).name == package for r in extras[extra])
    assert Requirement(extras["all"][0]).extras == {"lake", "collector", "tui", "dashboard"}


def test_the_console_script_names_the_missing_extra_in_one_line(project: dict[str, Any]) -> None:
    assert project["scripts"] == {"auditlake": "auditlake._entry:main"}
    # An SDK-only install: the lake's packages cannot be imported (None in sys.modules).
    script = (
        "import sys\n"
        "for name in ('pyarrow', 'deltalake', 'numpy', 'duckdb', 'polars'):\n"
        "    sys.modules[name] = None\n"
        "sys.argv = ['auditlake', '--help']\n"
        "from auditlake._entry import main\n"
        "main()\n"
    )
    done = fresh_python(script)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "pip install 'auditlake[lake]'" in done.stderr


def test_the_console_script_runs_the_cli_when_everything_is_installed() -> None:
    script = (
        "import sys; sys.argv = ['auditlake', '--help']; from auditlake._entry import main; main()"
    )
    done = fresh_python(script)
    assert done.returncode == 0, done.stderr
    assert "verify" in done.stdout


@pytest.mark.slow
def test_the_wheel_declares_the_extras(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "setuptools" in built.stderr and "find" in built.stderr:
        pytest.skip(f"no build backend reachable offline: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("auditlake-*.whl")
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(z.read(meta))
        (entry,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert "auditlake = auditlake._entry:main" in z.read(entry).decode()
    assert SpecifierSet(message["Requires-Python"]) == SpecifierSet(">=3.11,<3.14")
    requires = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    unconditional = {r.name for r in requires if r.marker is None}
    assert unconditional == {"orjson"}
    by_extra: dict[str, set[str]] = {}
    for r in requires:
        for extra in ("lake", "collector", "tui", "dashboard", "all"):
            if r.marker is not None and r.marker.evaluate({"extra": extra}):
                by_extra.setdefault(extra, set()).add(r.name)
    assert {"pyarrow", "deltalake", "duckdb"} <= by_extra["lake"]
    assert "textual" in by_extra["tui"] and "streamlit" in by_extra["dashboard"]
    assert not HEAVY & unconditional
    assert set(message.get_all("Provides-Extra") or []) >= {"lake", "tui", "dashboard", "all"}
