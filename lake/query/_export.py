"""Query results out of the lake as JSON, JSON Lines, CSV or Parquet, streamed batch by batch.

Why it exists: an audit export (a tenant's year, an incident's every event) can be far larger
than memory, and a per-row Python loop over millions of events takes minutes. Results arrive
as Arrow record batches; each batch is converted column by column (pyarrow.compute, numpy,
polars) and written to the output as soon as it arrives, so memory is bounded by one batch
and no Python runs per row on the normal path. Every format shows stored values in the one
textual form `lake.proofs` uses (UTC microsecond times with 'Z', ISO dates, lowercase hex),
and `details`, canonical JSON already, is embedded verbatim as the object it is.
`read_export` loads an export back; for the events columns the round trip is exact.

Choices for types the events table does not have (user SQL may produce any Arrow type):

- timestamps of any unit and zone → `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC; tz-naive values are
  taken as UTC; nanoseconds are floored to microseconds (the textual form has six digits).
- decimals → JSON strings ("12.30"), exact whatever the reader's float precision; CSV writes
  the same digits.
- floats: NaN and ±inf → JSON null (JSON has no such numbers); CSV keeps `nan`/`inf`/`-inf`.
- durations → integer count of the type's unit; times of day → "HH:MM:SS[.fraction]";
  month-day-nano intervals (DuckDB INTERVAL) → {"months", "days", "nanoseconds"}.
- maps → a list of {"key", "value"} objects (keys need not be strings);
  dictionaries → their values; UUIDs (arrow.uuid) → 8-4-4-4-12 text; other extension
  types → their storage.
- CSV: header row, LF line ends, RFC 4180 quoting (every string quoted, `"` doubled), a null
  is an empty unquoted field and an empty string is `""`; lists, structs and maps are cells
  holding their JSON text. A text cell that starts with `=`, `+`, `-`, `@`, a tab or a
  carriage return gets a leading `'` (OWASP's CSV-injection advice), so a spreadsheet shows
  an attacker's `=HYPERLINK(...)` as text instead of running it. Such a cell that already
  starts with quotes (`'=x`) gets one more, so `read_export` removes exactly one `'` from
  cells of the form `'…'<formula start>` and the round trip stays exact; other cells
  (`'single'`) are written as they are. Numbers are never prefixed (`-3` stays a number).
- Parquet: zstd, the result's schema as is (string/binary views become plain strings and
  binaries), at least one row group per batch.
- A `details` column is spliced verbatim only when it is text; every non-null value must look
  like one JSON object on one line (`{...}`, no newline), else UsageError: a verbatim splice of
  anything else would make the output invalid JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lake.contract import UsageError
from lake.query._export_read import read_csv, read_json, read_parquet
from lake.query._export_text import INTERVAL_TYPE, csv_batch, interval_struct, json_chunk

FORMATS: Final = ("json", "jsonl", "csv", "parquet")


# ----------------------------------------------------------------------------- writing


def write_batches(
    batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader,
    fmt: str,
    out: BinaryIO,
    *,
    schema: pa.Schema | None = None,
) -> int:
    """Write every batch to `out` in `fmt` as it arrives; returns the number of rows.

    The schema is `schema` when given (batches are cast to it), else the reader's, else the
    first batch's; every batch must have it. An empty result still makes a valid document:
    `[]`, nothing (jsonl), a header (csv, given a schema) or an empty Parquet file, which
    needs a schema: pass `schema` when `batches` is a plain iterable that may be empty.
    `out` is written to and left open. When this raises, what was written is incomplete
    (and may still parse): discard it.
    """
    _check_format(fmt)
    if schema is None and isinstance(batches, pa.RecordBatchReader):
        schema = batches.schema
    stream = _checked(batches, schema)
    if fmt == "parquet":
        return _write_parquet(stream, out, schema)
    if fmt == "csv":
        return _write_csv(stream, out, schema)
    return _write_json(stream, out, array=fmt == "json")


def _checked(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema | None
) -> Iterator[pa.RecordBatch]:
    """The batches, each of one schema (the given one, else the first batch's)."""
    for n, batch in enumerate(batches):
        if not isinstance(batch, pa.RecordBatch):
            raise UsageError(f"item {n} of the result is a {type(batch).__name__}, not a batch")
        if schema is None:
            schema = batch.schema
        elif not batch.schema.equals(schema, check_metadata=False):
            try:
                batch = batch.cast(schema)
            except (pa.ArrowException, ValueError, TypeError):
                raise UsageError(
                    f"batch {n} has columns ({_describe(batch.schema)}), "
                    f"not the result's ({_describe(schema)})"
                ) from None
        yield batch


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)


def _write_json(batches: Iterator[pa.RecordBatch], out: BinaryIO, *, array: bool) -> int:
    rows = 0
    if array:
        out.write(b"[")
    for batch in batches:
        if batch.num_rows == 0:
            continue
        # JSON: every row is ",\n{...}" and the document's first comma is skipped, so the
        # chunk of a batch is one contiguous buffer, written without copying it again.
        chunk = json_chunk(batch, b",\n" if array else b"", b"" if array else b"\n")
        out.write(chunk[1:] if array and rows == 0 else chunk)
        rows += batch.num_rows
    if array:
        out.write(b"\n]\n" if rows else b"]\n")
    return rows


def _write_csv(batches: Iterator[pa.RecordBatch], out: BinaryIO, schema: pa.Schema | None) -> int:
    options = pcsv.WriteOptions(include_header=True, quoting_style="needed")
    writer: Any = None
    rows = 0
    try:
        for batch in batches:
            converted = csv_batch(batch)
            if writer is None:
                writer = pcsv.CSVWriter(out, converted.schema, write_options=options)
            writer.write_batch(converted)
            rows += batch.num_rows
        if writer is None and schema is not None:
            empty = csv_batch(pa.RecordBatch.from_pylist([], schema=schema))
            writer = pcsv.CSVWriter(out, empty.schema, write_options=options)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_parquet(
    batches: Iterator[pa.RecordBatch], out: BinaryIO, schema: pa.Schema | None
) -> int:
    writer: Any = None
    target: pa.Schema | None = None
    rows = 0

    def open_writer(of: pa.Schema) -> Any:
        try:
            return pq.ParquetWriter(out, of, compression="zstd")
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UsageError(f"this result cannot be written as Parquet: {exc}") from None

    try:
        for batch in batches:
            if target is None:
                target = _parquet_schema(batch.schema)
                writer = open_writer(target)
            if batch.num_rows:
                writer.write_batch(_parquet_batch(batch).cast(target))
                rows += batch.num_rows
        if writer is None:
            if schema is None:
                raise UsageError("an empty result needs a schema to be written as Parquet")
            writer = open_writer(_parquet_schema(schema))
    finally:
        if writer is not None:
            writer.close()  # writes the footer; `out` itself stays open
    return rows


def _parquet_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with view types (which Parquet readers may lack) as plain ones, and
    month-day-nano intervals (which Parquet cannot hold) as {months, days, nanoseconds}."""
    plain = {
        pa.string_view(): pa.string(),
        pa.binary_view(): pa.binary(),
        pa.month_day_nano_interval(): INTERVAL_TYPE,
    }
    return pa.schema(
        [f.with_type(plain.get(f.type, f.type)) for f in schema], metadata=schema.metadata
    )


def _parquet_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(t == pa.month_day_nano_interval() for t in batch.schema.types):
        return batch
    columns = [
        interval_struct(c) if c.type == pa.month_day_nano_interval() else c for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- reading


def read_export(
    path_or_file: str | os.PathLike[str] | BinaryIO, fmt: str, schema: pa.Schema
) -> pa.Table:
    """An export (of `write_batches`) loaded back as a table of `schema`.

    Text turns back into the schema's types: times, dates, hex binaries, decimals; a
    `details` object becomes canonical JSON text (sorted keys, compact, UTF-8). For the
    events columns the round trip is exact. JSON cannot tell NaN from null; both come back
    null. Holds the whole table in memory, as any Table does; not a hot path, so hex and
    nested values are converted value by value.
    """
    _check_format(fmt)
    try:
        if fmt == "parquet":
            return read_parquet(path_or_file, schema)
        data = (
            Path(path_or_file).read_bytes()
            if isinstance(path_or_file, str | os.PathLike)
            else path_or_file.read()
        )
        if fmt == "csv":
            return read_csv(data, schema)
        return read_json(data, schema, array=fmt == "json")
    except (pa.ArrowException, ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"cannot read this {fmt} export as the given schema: {exc}") from None
