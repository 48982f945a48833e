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
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lake.contract import UsageError

FORMATS: Final = ("json", "jsonl", "csv", "parquet")

DETAILS: Final = "details"
_UTC_US: Final = pa.timestamp("us", tz="UTC")
_INTERVAL_DTYPE: Final = np.dtype([("months", "=i4"), ("days", "=i4"), ("nanoseconds", "=i8")])
_INTERVAL_TYPE: Final = pa.struct(
    [("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())]
)
_UUID_GROUPS: Final = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
# Byte value → its two hex digits, as one uint16 (so a lookup writes both at once).
_HEX_PAIRS: Final = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint16)


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
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
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
        chunk = _json_chunk(batch, b",\n" if array else b"", b"" if array else b"\n")
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
            converted = _csv_batch(batch)
            if writer is None:
                writer = pcsv.CSVWriter(out, converted.schema, write_options=options)
            writer.write_batch(converted)
            rows += batch.num_rows
        if writer is None and schema is not None:
            empty = _csv_batch(pa.RecordBatch.from_pylist([], schema=schema))
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
        pa.month_day_nano_interval(): _INTERVAL_TYPE,
    }
    return pa.schema(
        [f.with_type(plain.get(f.type, f.type)) for f in schema], metadata=schema.metadata
    )


def _parquet_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(t == pa.month_day_nano_interval() for t in batch.schema.types):
        return batch
    columns = [_interval(c) if c.type == pa.month_day_nano_interval() else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# ----------------------------------------------------------------- columns made textual


def _plain(arr: pa.Array, *, csv: bool) -> pa.Array:
    """`arr` with every value in its export form, recursively; `arr` itself when unchanged.

    Timestamps become the UTC 'Z' text, binaries lowercase hex, and the types that neither
    polars' JSON encoder nor Arrow's CSV writer take become types they do (module docstring).
    """
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return _uuid_text(_hex(arr.storage))
        return _plain(arr.storage, csv=csv)
    if pa.types.is_dictionary(t):
        return _plain(arr.dictionary_decode(), csv=csv)
    if pa.types.is_run_end_encoded(t):
        return _plain(pc.run_end_decode(arr), csv=csv)
    if pa.types.is_timestamp(t):
        return _utc_text(arr)
    if pa.types.is_date64(t):
        return arr.cast(pa.date32())
    if _is_binary(t):
        return _hex(arr)
    if pa.types.is_decimal(t):
        return arr if csv else arr.cast(pa.string())
    if pa.types.is_time(t):
        return arr.cast(pa.string())
    if pa.types.is_duration(t):
        return arr.cast(pa.int64())
    if pa.types.is_float16(t):
        return arr.cast(pa.float32())
    if t == pa.month_day_nano_interval():
        return _interval(arr)
    if csv and pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_list_view(t) or pa.types.is_fixed_size_list(t):
        return _plain(arr.cast(pa.list_(t.value_field)), csv=csv)
    if pa.types.is_large_list_view(t):
        return _plain(arr.cast(pa.large_list(t.value_field)), csv=csv)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        return _plain_list(arr, csv=csv)
    if pa.types.is_struct(t):
        fields = arr.flatten()  # children of the (possibly sliced) array, with its offset
        new = [_plain(f, csv=csv) for f in fields]
        if all(a is b for a, b in zip(new, fields, strict=True)):
            return arr
        return pa.StructArray.from_arrays(
            new,
            fields=[t.field(i).with_type(a.type) for i, a in enumerate(new)],
            mask=_null_mask(arr),
        )
    return arr


def _plain_list(arr: pa.Array, *, csv: bool) -> pa.Array:
    """A list (or map, as a list of key/value structs) with its items made plain."""
    offsets = arr.offsets  # of the (possibly sliced) array, without validity
    start = offsets[0].as_py() if len(offsets) else 0
    values = arr.values.slice(start, (offsets[-1].as_py() - start) if len(offsets) else 0)
    new = _plain(values, csv=csv)
    if new is values and not pa.types.is_map(arr.type):
        return arr
    cls = pa.LargeListArray if pa.types.is_large_list(arr.type) else pa.ListArray
    rebased = pc.subtract(offsets, pa.scalar(start, offsets.type))
    return cls.from_arrays(rebased, new, mask=_null_mask(arr))


def _null_mask(arr: pa.Array) -> pa.Array | None:
    return pc.is_null(arr) if arr.null_count else None


def _is_binary(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _utc_text(arr: pa.Array) -> pa.Array:
    """Timestamps as UTC microsecond text with 'Z' (`lake.proofs.format_time`), vectorised.

    Arrow's cast of a zone-less timestamp to text is fast ("2026-11-28 03:47:37.123456");
    `pc.strftime` and the cast of a zoned one look the zone up per value, 10x slower.
    """
    unit = arr.type.unit
    utc = arr.cast(pa.timestamp(unit, tz="UTC"))  # zone change only; naive values read as UTC
    if unit == "ns":
        utc = pc.floor_temporal(utc, unit="microsecond")
    wall = utc.cast(_UTC_US).cast(pa.timestamp("us"))  # the same instants, as UTC wall time
    text = pc.replace_substring(wall.cast(pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "")


def _hex(arr: pa.Array) -> pa.Array:
    """Binary values as lowercase hex (large_string), by a numpy table lookup."""
    if pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.binary())
    n = len(arr)
    bufs = arr.buffers()
    if pa.types.is_fixed_size_binary(arr.type):
        width = arr.type.byte_width
        data = _bytes_of(bufs[1])[arr.offset * width : (arr.offset + n) * width]
        offsets = np.arange(n + 1, dtype=np.int64) * (2 * width)
    else:
        kind = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
        raw = np.frombuffer(bufs[1], dtype=kind)[arr.offset : arr.offset + n + 1] if n else None
        if raw is None:
            return pa.array([], pa.large_string())
        data = _bytes_of(bufs[2])[raw[0] : raw[-1]]
        offsets = (raw.astype(np.int64) - raw[0]) * 2
    text = _HEX_PAIRS[data].tobytes()
    validity = pc.is_valid(arr).buffers()[1] if arr.null_count else None
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text)],
        null_count=arr.null_count,
    )


def _uuid_text(hexes: pa.Array) -> pa.Array:
    """32 hex digits as the 8-4-4-4-12 form of a UUID."""
    parts = [pc.utf8_slice_codeunits(hexes, a, b) for a, b in _UUID_GROUPS]
    return pc.binary_join_element_wise(*parts, pa.scalar("-", pa.large_string()))


def _bytes_of(buf: pa.Buffer | None) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)


def _interval(arr: pa.Array) -> pa.Array:
    """Month-day-nano intervals as {months, days, nanoseconds} structs."""
    n = len(arr)
    if n == 0:
        return pa.array([], _INTERVAL_TYPE)
    parts = np.frombuffer(arr.buffers()[1], dtype=_INTERVAL_DTYPE)[arr.offset : arr.offset + n]
    return pa.StructArray.from_arrays(
        [pa.array(parts[name]) for name in _INTERVAL_DTYPE.names or ()],
        fields=list(_INTERVAL_TYPE),
        mask=_null_mask(arr),
    )


# ------------------------------------------------------------------------------ JSON


def _json_chunk(batch: pa.RecordBatch, before: bytes, after: bytes) -> Any:
    """The rows of a batch as JSON objects, each as `before` + object + `after`, as one buffer."""
    names: list[str] = batch.schema.names
    columns = [_plain(c, csv=False) for c in batch.columns]
    details = [_is_details(n, c.type) for n, c in zip(names, columns, strict=True)]
    if all(_polars_ok(c.type) for c in columns):
        return _json_chunk_polars(names, columns, details, batch.num_rows, before, after)
    # Fallback: a type polars cannot encode (a union, an odd interval) is somewhere in this
    # batch; each value goes through orjson instead. Correct, slower, and rare.
    return _json_chunk_rows(names, columns, details, batch.num_rows, before, after)


def _is_details(name: str, t: pa.DataType) -> bool:
    return name == DETAILS and bool(
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    )


def _polars_ok(t: pa.DataType) -> bool:
    """True when polars imports this (plain) type and encodes it as the JSON we want."""
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
        or pa.types.is_date32(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
    ):
        return not pa.types.is_float16(t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _polars_ok(t.value_type)
    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(_polars_ok(f.type) for f in t)
    return False


def _json_chunk_polars(
    names: list[str],
    columns: list[pa.Array],
    details: list[bool],
    n: int,
    before: bytes,
    after: bytes,
) -> Any:
    # Columns get positional names so that duplicate or odd names cannot clash; each JSON
    # key comes back through the struct field's alias, escaped by polars.
    frame = pl.from_arrow(pa.record_batch(columns, names=[f"c{i}" for i in range(len(names))]))
    assert isinstance(frame, pl.DataFrame)
    for i, is_details in enumerate(details):
        if is_details:
            _check_details(frame, f"c{i}")
    # Object members are runs of ordinary columns (one polars struct, JSON-encoded, per run,
    # with the braces it cannot share cut off) and verbatim `details` texts between them.
    # A run also breaks at a repeated name, which one struct cannot hold.
    pieces: list[pl.Expr | str] = []
    run: list[int] = []

    def close_run(last: bool) -> None:
        if not run:
            return
        text = pl.struct([pl.col(f"c{i}").alias(names[i]) for i in run]).struct.json_encode()
        if pieces:
            text = text.str.strip_prefix("{")
            pieces.append(",")
        if not last:
            text = text.str.strip_suffix("}")
        pieces.append(text)
        run.clear()

    for i, name in enumerate(names):
        if details[i]:
            close_run(last=False)
            pieces.append("," if pieces else "{")
            pieces.append(orjson.dumps(name).decode() + ":")
            pieces.append(pl.col(f"c{i}").fill_null(pl.lit("null")))
        else:
            if any(names[j] == name for j in run):
                close_run(last=False)
            run.append(i)
    if run:
        close_run(last=True)
    else:
        pieces.append("}" if pieces else "{}")
    if before:
        pieces.insert(0, before.decode())
    if after:
        pieces.append(after.decode())
    if frame.width == 0:  # no columns: literals alone would make one row, not n
        return (before + b"{}" + after) * n
    exprs = [p if isinstance(p, pl.Expr) else pl.lit(p) for p in pieces]
    lines = frame.select(pl.concat_str(exprs).alias("line")).to_series().to_arrow()
    return _contiguous(lines)


def _contiguous(lines: pa.Array) -> Any:
    """The UTF-8 bytes of all strings of a (large_)string array back to back: one buffer."""
    if not (pa.types.is_large_string(lines.type) or pa.types.is_string(lines.type)):
        lines = lines.cast(pa.large_string())
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    kind = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(lines.buffers()[1], dtype=kind)
    first, last = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return lines.buffers()[2].slice(first, last - first)


def _check_details(frame: pl.DataFrame, column: str) -> None:
    c = pl.col(column)
    one_object = c.str.starts_with("{") & c.str.ends_with("}") & ~c.str.contains("\n", literal=True)
    if not frame.select((c.is_null() | one_object).all()).item():
        raise UsageError(
            "column 'details' holds text that is not one JSON object per value; "
            "rename it in the query (AS ...) to export it as a string"
        )


def _json_chunk_rows(
    names: list[str],
    columns: list[pa.Array],
    details: list[bool],
    n: int,
    before: bytes,
    after: bytes,
) -> bytes:
    members: list[tuple[bytes, list[bytes]]] = []
    for name, column, is_details in zip(names, columns, details, strict=True):
        values = column.to_pylist()
        if is_details:
            if any(v is not None and not _looks_like_object(v) for v in values):
                raise UsageError("column 'details' holds text that is not one JSON object")
            texts = [b"null" if v is None else v.encode() for v in values]
        else:
            texts = [_dumps(v) for v in values]
        members.append((orjson.dumps(name) + b":", texts))
    rows = (
        before + b"{" + b",".join(key + texts[r] for key, texts in members) + b"}" + after
        for r in range(n)
    )
    return b"".join(rows)


def _looks_like_object(text: str) -> bool:
    return text.startswith("{") and text.endswith("}") and "\n" not in text


def _dumps(value: Any) -> bytes:
    return orjson.dumps(
        value,
        default=_json_default,
        option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS,
    )


def _json_default(value: Any) -> Any:
    """The export form of Python values that orjson leaves to us (fallback path only)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return list(value)
    return str(value)  # Decimal, timedelta, and whatever else: its text


def _value_json(arr: pa.Array) -> pa.Array:
    """Each (plain) value's JSON text, null where the value is null: a CSV cell."""
    if _polars_ok(arr.type):
        frame = pl.from_arrow(pa.record_batch([arr], names=["v"]))
        assert isinstance(frame, pl.DataFrame)
        encoded = pl.struct(pl.col("v")).struct.json_encode()
        text = encoded.str.strip_prefix('{"v":').str.strip_suffix("}")
        texts = frame.select(text).to_series().to_arrow()
    else:  # a type polars cannot encode (see _json_chunk): orjson per value
        texts = pa.array([_dumps(v).decode() for v in arr.to_pylist()], pa.large_string())
    texts = texts.cast(pa.large_string())
    if arr.null_count:
        texts = pc.if_else(pc.is_valid(arr), texts, pa.scalar(None, pa.large_string()))
    return texts


# ------------------------------------------------------------------------------- CSV


def _csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = []
    for column in batch.columns:
        plain = _plain(column, csv=True)
        t = plain.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t):
            plain = _value_json(plain)
        elif pa.types.is_null(t):
            plain = plain.cast(pa.string())
        elif not _csv_ok(t):  # a union or odd interval: its JSON text, like nested values
            plain = _value_json(plain)
        if pa.types.is_string(plain.type) or pa.types.is_large_string(plain.type):
            plain = _defuse(plain)
        columns.append(plain)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# What a spreadsheet reads as the start of a formula, after any quotes already there.
_FORMULA_START: Final = "^'*[=+\\-@\t\r]"
_DEFUSED: Final = "^'+[=+\\-@\t\r]"


def _defuse(texts: pa.Array) -> pa.Array:
    """Prefix `'` to the cells a spreadsheet would run as a formula (module docstring);
    one vectorised pass over the column, nulls stay null."""
    risky = pc.match_substring_regex(texts, _FORMULA_START)
    if not pc.any(risky).as_py():
        return texts
    quoted = pc.binary_join_element_wise(
        pa.scalar("'", texts.type), texts, pa.scalar("", texts.type)
    )
    return pc.if_else(risky, quoted, texts)


def _undefuse(texts: pa.Array) -> pa.Array:
    """The inverse of `_defuse`: one `'` removed from each cell it prefixed."""
    quoted = pc.match_substring_regex(texts, _DEFUSED)
    if not pc.any(quoted).as_py():
        return texts
    return pc.if_else(quoted, pc.utf8_slice_codeunits(texts, 1), texts)


def _csv_ok(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_date32(t)
        or pa.types.is_decimal(t)
    )


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
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        if fmt == "parquet":
            return _read_parquet(path_or_file, schema)
        data = (
            Path(path_or_file).read_bytes()
            if isinstance(path_or_file, str | os.PathLike)
            else path_or_file.read()
        )
        if fmt == "csv":
            return _read_csv(data, schema)
        return _read_json(data, schema, array=fmt == "json")
    except (pa.ArrowException, ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"cannot read this {fmt} export as the given schema: {exc}") from None


def _read_parquet(source: str | os.PathLike[str] | BinaryIO, schema: pa.Schema) -> pa.Table:
    if not isinstance(source, str | os.PathLike):
        # Arrow reading a Python file object on its I/O threads can leave them calling into
        # the interpreter at shutdown, which aborts the process; read its bytes once instead.
        source = pa.BufferReader(source.read())
    table = pq.read_table(source, columns=schema.names)
    columns = []
    for f in schema:
        column = table.column(f.name).combine_chunks()
        if f.type == pa.month_day_nano_interval() and pa.types.is_struct(column.type):
            column = _interval_back(column)
        columns.append(column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _interval_back(parts: pa.Array) -> pa.Array:
    """{months, days, nanoseconds} structs (as `_interval` makes them) as intervals again."""
    packed = np.zeros(len(parts), dtype=_INTERVAL_DTYPE)
    for name in _INTERVAL_DTYPE.names or ():
        packed[name] = parts.field(name).fill_null(0).to_numpy()
    validity = pc.is_valid(parts).buffers()[1] if parts.null_count else None
    return pa.Array.from_buffers(
        pa.month_day_nano_interval(),
        len(parts),
        [validity, pa.py_buffer(packed.tobytes())],
        null_count=parts.null_count,
    )


def _read_csv(data: bytes, schema: pa.Schema) -> pa.Table:
    if not data.strip():
        return schema.empty_table()
    options = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in schema.names},
        include_columns=schema.names,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,  # "" is an empty string, an empty field a null
    )
    table = pcsv.read_csv(pa.py_buffer(data), convert_options=options)
    columns = [_from_text(_undefuse(table.column(f.name).combine_chunks()), f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _read_json(data: bytes, schema: pa.Schema, *, array: bool) -> pa.Table:
    if array:
        rows = orjson.loads(data)
        if not isinstance(rows, list):
            raise UsageError("a json export is one array of objects")
    else:
        rows = [orjson.loads(line) for line in data.splitlines() if line.strip()]
    if not all(isinstance(row, dict) for row in rows):
        raise UsageError("every row of a json export is an object")
    columns = []
    for f in schema:
        values = [row.get(f.name) for row in rows]
        if _is_details(f.name, f.type):
            values = [v if v is None or isinstance(v, str) else _canonical(v) for v in values]
        columns.append(_from_json(values, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _from_json(values: list[Any], t: pa.DataType) -> pa.Array:
    """A column of parsed JSON values as type `t`."""
    if isinstance(t, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(t, _from_json(values, t.storage_type))
    if _scalar_text(t):  # written as text: convert with the CSV path's vectorised casts
        return _from_text(pa.array(values, pa.string()), t)
    if _native_json(t):
        return pa.array(values, t)
    return pa.array([_from_py(v, t) for v in values], t)


def _native_json(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
    )


def _scalar_text(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_decimal(t)
        or _is_binary(t)
    )


def _from_text(text: pa.Array, t: pa.DataType) -> pa.Array:
    """A string column (CSV cells, or JSON strings) as type `t`."""
    if isinstance(t, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(t, _from_text(text, t.storage_type))
    if pa.types.is_dictionary(t):
        return _from_text(text, t.value_type).dictionary_encode().cast(t)
    if pa.types.is_timestamp(t):
        utc = text.cast(_UTC_US)  # Arrow's ISO 8601 parser; the 'Z' makes it UTC
        return utc.cast(pa.timestamp(t.unit, tz=t.tz)) if t.tz else utc.cast(t)
    if pa.types.is_date(t):
        return text.cast(pa.date32()).cast(t)
    if pa.types.is_time(t):
        # A time of day is the time of 1970-01-01 (UTC): Arrow parses that to nanoseconds.
        stamp = pc.binary_join_element_wise("1970-01-01T", text, "Z", "")
        nanos = stamp.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        return nanos.cast(pa.time64("ns")).cast(t)
    if _is_binary(t):
        cells = text.to_pylist()  # a UUID's dashes go, like the spaces fromhex skips
        return pa.array(
            [None if v is None else bytes.fromhex(v.replace("-", "")) for v in cells], t
        )
    if pa.types.is_duration(t):
        return text.cast(pa.int64()).cast(t)
    if pa.types.is_null(t):
        return pa.nulls(len(text))
    if _scalar_text(t) or _native_json(t):
        return text.cast(t)
    # Nested values, intervals, and whatever else: the cell holds the value's JSON text.
    cells = text.to_pylist()
    return pa.array([None if v is None else _from_py(orjson.loads(v), t) for v in cells], t)


def _from_py(value: Any, t: pa.DataType) -> Any:
    """One parsed JSON value as the Python value pyarrow builds type `t` from."""
    if value is None:
        return None
    convert = _PY_CONVERTERS.get(_kind(t))
    if convert is not None:
        return convert(value, t)
    return value


def _is_any_list(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    )


_KINDS: Final[tuple[tuple[str, Callable[[pa.DataType], bool]], ...]] = (
    ("timestamp", pa.types.is_timestamp),
    ("date", pa.types.is_date),
    ("time", pa.types.is_time),
    ("binary", _is_binary),
    ("decimal", pa.types.is_decimal),
    ("interval", lambda t: t == pa.month_day_nano_interval()),
    ("map", pa.types.is_map),
    ("struct", pa.types.is_struct),
    ("dictionary", pa.types.is_dictionary),
    ("list", _is_any_list),
)


def _kind(t: pa.DataType) -> str:
    return next((name for name, check in _KINDS if check(t)), "other")


def _py_timestamp(value: Any, t: pa.DataType) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=None) if t.tz is None else parsed


_PY_CONVERTERS: Final[dict[str, Callable[[Any, pa.DataType], Any]]] = {
    "timestamp": _py_timestamp,
    "date": lambda v, t: date.fromisoformat(v),
    "time": lambda v, t: time.fromisoformat(v),
    "binary": lambda v, t: bytes.fromhex(v),
    "decimal": lambda v, t: Decimal(v),
    "interval": lambda v, t: (v["months"], v["days"], v["nanoseconds"]),
    "map": lambda v, t: [
        (_from_py(e["key"], t.key_type), _from_py(e["value"], t.item_type)) for e in v
    ],
    "struct": lambda v, t: {f.name: _from_py(v.get(f.name), f.type) for f in t},
    "dictionary": lambda v, t: _from_py(v, t.value_type),
    "list": lambda v, t: [_from_py(x, t.value_type) for x in v],
}
