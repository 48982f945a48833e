"""Locked DuckDB connections: one factory for every connection a principal's SQL reaches.

Why a factory of its own: locking a connection is a sequence whose order matters (views
bound while files are still reachable, then the allowed files listed, then external
access off and the configuration locked), and a step forgotten in one copy of it is a
hole. Two copies existed (the principal's connection and the one a search on an older
snapshot gets); both now come from here.

Why a private temp directory: DuckDB adds its temp directory to the directories a locked
connection may read, and the default is `.tmp` under the working directory. A `.tmp`
symlink in the directory a viewer runs from (pointing at the lake, another tenant's
partition or the read audit) therefore opened every file behind it to `read_parquet`.
Each connection gets a directory of its own, made fresh by `mkdtemp` (mode 0700, so
nobody else can place a link in it), outside the working directory, and removed when the
connection is released or collected.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from lake.errors import StorageError

TEMP_PREFIX: Final = "auditlake-duckdb-"
_CLEANUP: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, weakref.finalize[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def sql_literal(text: str) -> str:
    """A SQL string literal (for file paths in view definitions; values use parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _private_temp_dir() -> str:
    """A fresh directory outside the working directory (`mkdtemp` makes it 0700)."""
    cwd = Path.cwd().resolve()
    base = Path(tempfile.gettempdir()).resolve()
    if base == cwd or cwd in base.parents:
        base = Path("/tmp") if Path("/tmp").is_dir() else Path.home()  # TMPDIR=. would allow cwd
    path = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=base)
    return path


def locked_connection(
    allowed: Sequence[str],
    setup: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that can read exactly `allowed` (and its own empty temp dir).

    `setup` runs first, with file access still open: it creates the views (which DuckDB
    binds by reading the files' schemas) and registers functions. Then the configuration
    is locked: `read_parquet` of any other path, `COPY … TO`, `ATTACH`, `INSTALL`/`LOAD`
    and every `SET` fail inside DuckDB.
    """
    temp = _private_temp_dir()
    try:
        con = duckdb.connect(":memory:", config={"temp_directory": temp})
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _CLEANUP[con] = weakref.finalize(con, shutil.rmtree, temp, True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if setup is not None:
            setup(con)
        if allowed:
            con.execute(f"SET allowed_paths = [{', '.join(map(sql_literal, allowed))}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
        _check_directories(con)
    except BaseException:
        release(con)
        raise
    return con


def _check_directories(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a connection whose readable directories include the working directory's."""
    row = con.execute("SELECT current_setting('allowed_directories')").fetchone()
    cwd = Path.cwd().resolve()
    for entry in (row[0] if row else None) or []:
        path = Path(str(entry)).resolve()
        if path == cwd or cwd in path.parents:
            raise StorageError(f"a locked connection may read {entry}, under the working directory")


def release(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection from `locked_connection` and remove its temp directory."""
    con.close()
    done = _CLEANUP.pop(con, None)
    if done is not None:
        done()
