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

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from lake.contract import StorageError

TEMP_PREFIX: Final = "auditlake-duckdb-"
_CLEANUP: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, weakref.finalize[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def sql_literal(text: str) -> str:
    """A SQL string literal (for file paths in view definitions; values use parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _private_temp_dir() -> str:
    """A fresh directory (`mkdtemp` makes it 0700), outside the working directory when the
    machine has such a place (a working directory of / or /tmp leaves none; the directory
    is still fresh and private, which is what keeps links out of it)."""
    cwd = Path.cwd().resolve()
    candidates = [tempfile.gettempdir(), "/var/tmp", os.environ.get("XDG_RUNTIME_DIR")]
    usable = [Path(c).resolve() for c in candidates if c and Path(c).is_dir()]
    outside = [p for p in usable if p != cwd and cwd not in p.parents and os.access(p, os.W_OK)]
    base = outside[0] if outside else Path(tempfile.gettempdir())
    return tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=base)


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
        _check_directories(con, temp)
    except BaseException:
        release(con)
        raise
    return con


def _check_directories(con: duckdb.DuckDBPyConnection, temp: str) -> None:
    """Refuse a connection that may read any directory but its own temp directory."""
    # fetchall, not fetchone: a half-read result stays open and blocks `register` after.
    rows = con.execute("SELECT current_setting('allowed_directories')").fetchall()
    mine = Path(temp).resolve()
    for entry in (rows[0][0] if rows else None) or []:
        if Path(str(entry)).resolve() != mine:
            raise StorageError(f"a locked connection may read the directory {entry}")


def release(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection from `locked_connection` and remove its temp directory."""
    con.close()
    done = _CLEANUP.pop(con, None)
    if done is not None:
        done()
