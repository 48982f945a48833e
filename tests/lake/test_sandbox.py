"""The locked DuckDB connection every reader gets (lake.query.locked_connection)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from lake.query import locked_connection, release


def test_a_fresh_locked_connection_can_register_an_arrow_table() -> None:
    # The lock's own check once left a half-read result open: the first `register` after
    # it failed with "ResourceInUse" until something completed the pending query.
    con = locked_connection([])
    try:
        con.register("t", pa.table({"n": [1, 2, 3]}))
        assert con.sql("SELECT sum(n) FROM t").fetchall() == [(6,)]
    finally:
        release(con)


def test_a_locked_connection_reads_no_file_it_was_not_given(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a\n1\n")
    con = locked_connection([])
    try:
        with pytest.raises(duckdb.Error, match=r"(?i)permission"):
            con.sql(f"SELECT * FROM read_csv('{other}')").fetchall()
    finally:
        release(con)
