"""Helpers shared by the ingest tests (imported by name: tests/ingest is on sys.path)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from testkit import minimal_event

from ingest.files import Input


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    """Poll until `predicate()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# -- events and inputs for the file-ingest tests ----------------------------------------


ev = minimal_event  # the short name the file-ingest tests use


def rows(inp: Input) -> list[dict[str, Any]]:
    return list(inp.validated.table.to_pylist())


def ids(inp: Input) -> list[str]:
    return list(inp.validated.table.column("event_id").to_pylist())


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def ndjson(events: Iterable[Any]) -> bytes:
    """Events as newline-delimited JSON: one line each, each ended by a newline."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def jsonl_bytes(*events: Any) -> bytes:
    return ndjson(events)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


CSV_NESTED_HEADER = b"tenant,time,category,action,outcome,actor.id,actor.type,target.id,details\n"


def base_columns(n: int) -> dict[str, Any]:
    """The columns every tabular test input shares, for `n` rows."""
    return {
        "tenant": ["acme"] * n,
        "category": ["authentication"] * n,
        "action": ["login"] * n,
        "outcome": ["success"] * n,
    }
