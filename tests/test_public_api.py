"""`import auditlake` is the Python API: lazy, typed, and immune to a folder called `lake/`.

Each case runs in a fresh interpreter whose working directory is a notebook's would-be
directory, since what is tested is what Python finds on `sys.path` there: the working
directory comes first, and a folder `lake/` (a namespace package when empty, a regular
one with an `__init__.py`) used to win over our package with an editable install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import auditlake
import lake.api

ROOT = Path(__file__).resolve().parents[1]
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
HEAVY = ("duckdb", "pyarrow", "polars", "deltalake", "orjson", "streamlit", "textual")

# Opens the demo lake through `auditlake` only, searches and verifies, and reports where
# the packages it used came from.
USE_THE_API = """
import json, sys
import auditlake
s = auditlake.open(sys.argv[1], home=sys.argv[2])
found = s.search("outcome:failure", limit=5).to_polars()
report = s.verify()
s.close()
import lake, detect
print(json.dumps({
    "rows": found.height,
    "outcomes": sorted(set(found["outcome"].to_list())),
    "ok": report.ok,
    "lake": lake.__file__,
    "detect": detect.__file__,
}))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small demo lake and the config home whose key signed it."""
    assert AUDITLAKE, "the auditlake console script is not installed beside this Python"
    base = tmp_path_factory.mktemp("public-api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}
    env.update(AUDITLAKE_HOME=str(base / "home"), AUDITLAKE_LAKE=str(base / "lake"))
    built = subprocess.run(
        [AUDITLAKE, "demo", "--days", "1", "--events-per-day", "40"],
        env=env, cwd=base, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return base / "lake", base / "home"


def python_in(cwd: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter of this venv, in `cwd` (first on sys.path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def shadowing_folders(cwd: Path, *, lake_init: str | None) -> Path:
    """Empty folders `lake/` and `detect/` in `cwd`; `lake/` gets an `__init__.py` holding
    `lake_init` when given (a user's own package of that name)."""
    (cwd / "lake").mkdir(parents=True)
    (cwd / "detect").mkdir()
    if lake_init is not None:
        (cwd / "lake" / "__init__.py").write_text(lake_init, encoding="utf-8")
    return cwd


@pytest.mark.parametrize(
    "lake_init",
    [None, "MINE = True\n"],
    ids=["empty-folders", "a-lake-package-of-the-users"],
)
def test_auditlake_opens_a_lake_beside_folders_named_lake_and_detect(
    demo: tuple[Path, Path], tmp_path: Path, lake_init: str | None
) -> None:
    cwd = shadowing_folders(tmp_path / "notebook", lake_init=lake_init)

    done = python_in(cwd, USE_THE_API, str(demo[0]), str(demo[1]))

    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["rows"] == 5 and got["outcomes"] == ["failure"]
    assert got["ok"] is True
    assert got["lake"] == str(ROOT / "lake" / "__init__.py")
    assert got["detect"] == str(ROOT / "detect" / "__init__.py")


def test_a_shadowing_lake_imported_before_auditlake_is_replaced(
    demo: tuple[Path, Path], tmp_path: Path
) -> None:
    cwd = shadowing_folders(tmp_path / "notebook", lake_init="MINE = True\n")
    code = "import lake\nassert lake.MINE\n" + USE_THE_API

    done = python_in(cwd, code, str(demo[0]), str(demo[1]))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lake"] == str(ROOT / "lake" / "__init__.py")


@pytest.mark.parametrize("lake_init", [None, "MINE = True\n"], ids=["empty", "package"])
def test_without_auditlake_the_folder_is_the_lake_python_imports(
    tmp_path: Path, lake_init: str | None
) -> None:
    # Guards the tests above against passing vacuously: the set-up does shadow our `lake`
    # (a namespace package has no __file__; the user's package is theirs).
    cwd = shadowing_folders(tmp_path / "notebook", lake_init=lake_init)

    done = python_in(cwd, "import lake\nprint(lake.__file__)")

    assert done.returncode == 0, done.stderr
    expected = "None" if lake_init is None else str(cwd / "lake" / "__init__.py")
    assert done.stdout.strip() == expected


def test_import_auditlake_loads_no_lake_module_nor_heavy_packages(tmp_path: Path) -> None:
    code = (
        "import json, sys, auditlake\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(HEAVY)!r} or m.startswith('lake.'))))\n"
    )

    done = python_in(tmp_path, code)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_every_public_name_is_the_facades_own() -> None:
    assert auditlake.__all__ == sorted(auditlake.__all__)
    for name in auditlake.__all__:
        assert getattr(auditlake, name) is getattr(lake.api, name), name
    assert set(auditlake.__all__) <= set(dir(auditlake))
    assert auditlake.open is lake.api.open
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = auditlake.nothing_here


def test_the_one_call_forms_match_a_session(demo: tuple[Path, Path]) -> None:
    path, home = demo
    with auditlake.open(path, home=home) as s:
        first = s.search("", limit=3).to_polars()
        event_id, tenant = first["event_id"][0], first["tenant"][0]
        n = s.events().collect().height
    assert auditlake.search(path, "", limit=3, home=home)["event_id"].to_list() == (
        first["event_id"].to_list()
    )
    assert auditlake.events(path, home=home).collect().height == n
    assert auditlake.verify(path, home=home).ok
    proof = auditlake.prove(path, event_id, tenant=tenant, home=home)
    assert proof == auditlake.open(path, home=home).prove(event_id, tenant=tenant)


def test_the_readme_example_uses_only_public_names() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    example = next(b for b in blocks if "auditlake.open(" in b)
    assert "import auditlake" in example and "import lake" not in example
    for name in re.findall(r"\bauditlake\.(\w+)", example):
        assert name in auditlake.__all__, name
    for method in re.findall(r"\bs\.(\w+)\(", example):
        assert callable(getattr(auditlake.LakeSession, method, None)), method
