"""Events as Arrow IPC streams: the WAL's records, the quarantine's files, forwarded messages."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["from_ipc", "to_ipc"]


def to_ipc(table: pa.Table) -> bytes:
    """`table` as one Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(payload: bytes) -> pa.Table:
    """The table of one Arrow IPC stream (raises `pa.ArrowException` when it is not one)."""
    return pa.ipc.open_stream(pa.BufferReader(payload)).read_all()
