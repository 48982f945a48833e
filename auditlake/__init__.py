"""auditlake: tamper-evident, multi-tenant audit trails. The `auditlake` command lives in
`auditlake.cli`; this module is the Python API, for notebooks and scripts:

    import auditlake
    s = auditlake.open("demo-lake", as_="alice")      # or $AUDITLAKE_PRINCIPAL, default admin
    s.search("actor:bob outcome:failure created:>=7d").to_polars()
    s.events(tenant="acme").collect()                 # a Polars LazyFrame
    s.verify(); s.prove(event_id, tenant="acme"); s.alerts()

Every read is scoped to the principal's tenants and recorded in the lake's read audit (see
`lake.api`, which this re-exports).

Two things happen here on purpose:

- The names are loaded lazily (PEP 562): `import auditlake` reads no lake code and pulls in
  no DuckDB or Arrow, so `import auditlake.cli` (the console script) costs what it did.
- Our own top-level packages win over a folder of the same name in the working directory.
  Python puts the working directory first on `sys.path`, so a notebook beside a folder
  called `lake/` or `detect/` would import that folder (an empty folder becomes a
  namespace package) and fail with `cannot import name ...`. `_claim_packages` loads ours
  from beside this package before anything imports them, and replaces a foreign one that
  was imported already.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from auditlake._entry import EXTRA_OF

if TYPE_CHECKING:  # the real types for mypy and editors; at run time __getattr__ loads them
    from lake.api import (
        AccessDenied,
        Alert,
        Finding,
        FindingKind,
        LakeError,
        LakeSession,
        ProofError,
        ReadRecord,
        Report,
        SearchFilter,
        SearchResult,
        UsageError,
        events,
        open,
        prove,
        search,
        verify,
    )

# The public names, all from `lake.api` (the facade the TUI and dashboard use too).
__all__ = [
    "AccessDenied",
    "Alert",
    "Finding",
    "FindingKind",
    "LakeError",
    "LakeSession",
    "ProofError",
    "ReadRecord",
    "Report",
    "SearchFilter",
    "SearchResult",
    "UsageError",
    "events",
    "open",
    "prove",
    "search",
    "verify",
]
_SOURCE: Final = "lake.api"

# The top-level packages of this distribution that the API (and the CLI) import.
OWN_PACKAGES: Final = ("lake", "detect", "ingest", "tui", "dashboards")
_ROOT: Final = Path(__file__).resolve().parent.parent


def _is_ours(module: ModuleType, init: Path) -> bool:
    where = getattr(module, "__file__", None)  # None: a namespace package (a bare folder)
    return where is not None and Path(where).resolve() == init


def _claim(name: str) -> None:
    """Make `sys.modules[name]` our package `name` (the folder beside auditlake/)."""
    init = _ROOT / name / "__init__.py"
    if not init.is_file():
        return  # not shipped in this installation
    present = sys.modules.get(name)
    if present is not None and _is_ours(present, init):
        return
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]  # the foreign package and its submodules
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _claim_packages() -> None:
    for name in OWN_PACKAGES:
        _claim(name)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'auditlake' has no attribute {name!r}")
    _claim_packages()  # again: something may have imported a shadowing folder since
    try:
        value = getattr(importlib.import_module(_SOURCE), name)
    except ModuleNotFoundError as exc:  # an SDK-only install: say which extra brings it
        extra = EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        raise ModuleNotFoundError(
            f"auditlake.{name} needs {exc.name}, which is not installed:"
            f" pip install 'auditlake[{extra}]'",
            name=exc.name,
        ) from exc
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_claim_packages()
