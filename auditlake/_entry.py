"""The `auditlake` console script: the CLI, or one line naming the extra it is missing.

`pip install auditlake` alone is the SDK (it sends events, nothing else); the commands
need the lake's packages, and some commands more. When one of them is not installed, the
command says which extra brings it and exits 2, instead of a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["EXTRA_OF", "main"]

# Top-level module -> the extra of pyproject.toml that installs it.
EXTRA_OF = {
    "pyarrow": "lake",
    "deltalake": "lake",
    "cryptography": "lake",
    "numpy": "lake",
    "click": "lake",
    "rich": "lake",
    "platformdirs": "lake",
    "dateutil": "lake",
    "duckdb": "lake",
    "yaml": "lake",
    "polars": "lake",
    "tenacity": "lake",
    "starlette": "collector",
    "uvicorn": "collector",
    "anyio": "collector",
    "prometheus_client": "collector",
    "textual": "tui",
    "streamlit": "dashboard",
    "nats": "scale",
    "ray": "scale",
}

EXIT_USAGE = 2


def main() -> None:
    """Run the CLI (imported only now, so that a missing package is caught here)."""
    try:
        from auditlake.cli import main as cli_main

        cli_main()
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"auditlake: {exc.name} is not installed; this needs the '{extra}' extra:"
            f" pip install 'auditlake[{extra}]'",
            file=sys.stderr,
        )
        sys.exit(EXIT_USAGE)
