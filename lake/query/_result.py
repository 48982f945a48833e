"""What a search or SQL query returns: Arrow batches streamed in one schema, and the cursor
that pins a page to its snapshot and sort key."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa

from lake.contract import UsageError
from lake.query._querystring import SearchFilter

__all__ = [
    "BATCH_ROWS",
    "Cursor",
    "SearchResult",
    "cast_batches",
    "fingerprint",
    "first_line",
    "utc_schema",
]

BATCH_ROWS: Final = 8192


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the snapshot it read and the last row's sort key."""

    version: int
    time_us: int
    tenant: str
    seq: int
    fingerprint: str

    def encode(self) -> str:
        raw = orjson.dumps(
            {
                "v": self.version,
                "t": self.time_us,
                "n": self.tenant,
                "s": self.seq,
                "f": self.fingerprint,
            }
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            doc = orjson.loads(raw)
            return cls(int(doc["v"]), int(doc["t"]), str(doc["n"]), int(doc["s"]), str(doc["f"]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise UsageError(
                f"invalid cursor {text[:40]!r}: pass a cursor printed by search"
            ) from None


def fingerprint(filt: SearchFilter, tenants: Sequence[str]) -> str:
    text = filt.to_query_string() + "\x00" + ",".join(tenants)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class SearchResult:
    """A page of search results, streamed as Arrow record batches.

    `next_cursor` is known once the batches have been consumed: it is set when the page
    was full (there may be more), else None.
    """

    schema: pa.Schema
    _batches: Iterator[pa.RecordBatch]
    _limit: int | None
    _version: int
    fingerprint: str
    rows: int = 0
    next_cursor: str | None = None
    _last: tuple[int, str, int] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            if batch.num_rows == 0:
                continue
            self.rows += batch.num_rows
            if self.fingerprint:  # a search page: remember its last sort key
                end = batch.num_rows - 1
                self._last = (
                    int(batch.column("time")[end].value),
                    str(batch.column("tenant")[end].as_py()),
                    int(batch.column("seq")[end].as_py()),
                )
            yield batch
        if self._limit is not None and self.rows >= self._limit and self._last is not None:
            t, n, s = self._last
            self.next_cursor = Cursor(self._version, t, n, s, self.fingerprint).encode()

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, iter(self))

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_batches(list(self), schema=self.schema)

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow())


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _guard(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except (duckdb.Error, pa.ArrowInvalid) as exc:
        raise UsageError(f"SQL error: {first_line(exc)}") from None


def utc_schema(schema: pa.Schema) -> pa.Schema:
    """DuckDB labels UTC times 'Etc/UTC'; search says 'UTC'. One label, so Polars and Arrow
    users can compare and join the results of search, SQL and events() (same instants)."""
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type) and f.type.tz not in (None, "UTC"):
            f = f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def cast_batches(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in _guard(reader):
        if batch.schema != schema:
            batch = pa.RecordBatch.from_arrays(
                [batch.column(i).cast(schema.field(i).type) for i in range(batch.num_columns)],
                schema=schema,
            )
        yield batch
