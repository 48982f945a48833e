"""Every notebook in notebooks/ runs top to bottom on a fresh demo lake, and is committed clean.

The notebooks' own cells assert what they show (the hand-made proof check of notebook 3 is
True on the lake and False on a tampered copy, the new rule of notebook 4 fires on the
planted attacks, ...), so executing them is the test: a failing cell fails it, with the
cell's source and traceback.

Execution needs no Jupyter installation beyond `nbclient` and `ipykernel` in this venv and
no global kernelspec: the kernel is this interpreter (`sys.executable`), named in a
kernelspec written to a temp dir, and the first cell run checks that the kernel really is
this venv's Python. The parameters cell (tagged `parameters`) is replaced by the demo lake's
paths; the working directory is a temp dir, so whatever a notebook writes stays out of the
repo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01-quickstart.ipynb",
    "02-investigate-brute-force.ipynb",
    "03-integrity.ipynb",
    "04-detection-research.ipynb",
]
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
KERNEL_NAME = "auditlake-test-venv"
CELL_TIMEOUT = 120  # seconds, per cell
# Settings of the user's that would change what the notebooks or their plots do.
_DROP = ("MPLBACKEND", "JUPYTER_PATH", "PYTHONPATH", "PYTHONSTARTUP")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the user's AUDITLAKE_* (or other) settings, headless, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_") and k not in _DROP}
    env["MPLBACKEND"] = "Agg"  # headless plots
    return {**env, **extra}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A demo lake (ingested, verified, detection run) and the home whose key signed it."""
    assert AUDITLAKE, "the auditlake console script is not installed beside this Python"
    base = tmp_path_factory.mktemp("nbdemo")
    lake, home = base / "demo-lake", base / "home"
    built = subprocess.run(
        [AUDITLAKE, "demo", "--days", "2", "--events-per-day", "60"],
        env=_clean_env(AUDITLAKE_LAKE=str(lake), AUDITLAKE_HOME=str(home)),
        cwd=base,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return lake, home


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernelspec for this very interpreter, in a temp dir (nothing global is read)."""
    spec_dir = tmp_path_factory.mktemp("kernels") / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "auditlake venv (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)


def _parameters(lake: Path, home: Path) -> str:
    return f"# Parameters injected by tests/notebooks\nLAKE = {str(lake)!r}\nHOME = {str(home)!r}\n"


_VENV_CHECK = (
    "import sys\n"
    "assert sys.prefix == {prefix!r}, (sys.prefix, sys.executable)\n"
    "assert sys.executable.startswith({prefix!r}), sys.executable\n"
)


def read_notebook(path: Path) -> Any:
    """A notebook as nbformat's node tree (nbformat has no type hints)."""
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def test_every_notebook_is_tested() -> None:
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(
    path: Path,
    demo: tuple[Path, Path],
    kernel_specs: KernelSpecManager,
    tmp_path: Path,
) -> None:
    # A private copy: notebooks append read-audit events and write files, and must not
    # depend on what another notebook did.
    lake, home = tmp_path / "demo-lake", tmp_path / "home"
    shutil.copytree(demo[0], lake)
    shutil.copytree(demo[1], home)  # copy2 keeps the key file's 0600 mode
    cwd = tmp_path / "work"
    cwd.mkdir()

    nb = read_notebook(path)
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert params[0].cell_type == "code"
    assert "LAKE" in params[0].source and "HOME" in params[0].source
    params[0].source = _parameters(lake, home)
    first = nbformat.v4.new_code_cell(_VENV_CHECK.format(prefix=sys.prefix))  # type: ignore[no-untyped-call]
    nb.cells.insert(0, first)

    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )
    before = sorted(NOTEBOOK_DIR.iterdir())
    failed = None
    try:
        # No AUDITLAKE_* in the kernel's environment: the notebook must use its parameters.
        client.execute(env=_clean_env())
    except CellExecutionError as exc:  # the cell's source and its traceback, without colours
        failed = _ANSI.sub("", str(exc))
    if failed is not None:
        pytest.fail(f"{path.name}: a cell failed\n{failed}", pytrace=False)
    assert sorted(NOTEBOOK_DIR.iterdir()) == before, "the notebook wrote into notebooks/"


def test_notebooks_are_committed_without_outputs() -> None:
    """Outputs hold one run's data (and make diffs unreadable): commit notebooks clean."""
    dirty = []
    for path in NOTEBOOKS:
        nb = read_notebook(path)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if cell.get("outputs"):
                dirty.append(f"{path.name}: cell {i} has outputs")
            if cell.get("execution_count") is not None:
                dirty.append(f"{path.name}: cell {i} has an execution count")
            if "execution" in cell.get("metadata", {}):
                dirty.append(f"{path.name}: cell {i} has execution timings in its metadata")
    assert not dirty, (
        "clear the outputs before committing (JupyterLab: Edit > Clear Outputs of All Cells, "
        "then save):\n" + "\n".join(dirty)
    )
