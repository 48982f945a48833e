"""The export form of Arrow columns: values made plain (UTC text, hex, plain types), rows as
JSON, cells for CSV; every conversion is vectorised per column (the rules are in `_export`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import UsageError
from lake.spec import utc_text

DETAILS: Final = "details"
UTC_US: Final = pa.timestamp("us", tz="UTC")
INTERVAL_DTYPE: Final = np.dtype([("months", "=i4"), ("days", "=i4"), ("nanoseconds", "=i8")])
INTERVAL_TYPE: Final = pa.struct(
    [("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())]
)
_UUID_GROUPS: Final = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
# Byte value → its two hex digits, as one uint16 (so a lookup writes both at once).
_HEX_PAIRS: Final = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint16)

# Type families, each named once; a check is "is `t` in any of these families".
_TEXT: Final = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
_NUMBER: Final = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
_BINARY: Final = (
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_fixed_size_binary,
    pa.types.is_binary_view,
)
_LIST: Final = (
    pa.types.is_list,
    pa.types.is_large_list,
    pa.types.is_fixed_size_list,
    pa.types.is_list_view,
    pa.types.is_large_list_view,
)

_TEMPORAL_OR_DECIMAL: Final = (
    pa.types.is_timestamp,
    pa.types.is_date,
    pa.types.is_time,
    pa.types.is_decimal,
)
_SCALAR_TEXT: Final = (*_TEXT, *_TEMPORAL_OR_DECIMAL, *_BINARY)  # scalars an export writes as text
_CSV_CELL: Final = (*_NUMBER, *_TEXT[:2], pa.types.is_date32, pa.types.is_decimal)


def type_in(t: pa.DataType, families: Iterable[Callable[[pa.DataType], bool]]) -> bool:
    """True when one of `families`' checks holds for `t`."""
    return any(check(t) for check in families)


def is_binary(t: pa.DataType) -> bool:
    return type_in(t, _BINARY)


def is_any_list(t: pa.DataType) -> bool:
    return type_in(t, _LIST)


def is_native_json(t: pa.DataType) -> bool:
    """Types JSON holds as themselves (numbers, booleans, null)."""
    return type_in(t, (*_NUMBER, pa.types.is_null))


def is_scalar_text(t: pa.DataType) -> bool:
    """Scalar types an export writes as text (and reads back from text)."""
    return type_in(t, _SCALAR_TEXT)


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
    if is_binary(t):
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
        return interval_struct(arr)
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


def _utc_text(arr: pa.Array) -> pa.Array:
    """Timestamps as UTC microsecond text with 'Z' (`lake.proofs.format_time`), vectorised.

    Arrow's cast of a zone-less timestamp to text is fast ("2026-11-28 03:47:37.123456");
    `pc.strftime` and the cast of a zoned one look the zone up per value, 10x slower.
    """
    unit = arr.type.unit
    utc = arr.cast(pa.timestamp(unit, tz="UTC"))  # zone change only; naive values read as UTC
    if unit == "ns":
        utc = pc.floor_temporal(utc, unit="microsecond")
    wall = utc.cast(UTC_US).cast(pa.timestamp("us"))  # the same instants, as UTC wall time
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


def interval_struct(arr: pa.Array) -> pa.Array:
    """Month-day-nano intervals as {months, days, nanoseconds} structs."""
    n = len(arr)
    if n == 0:
        return pa.array([], INTERVAL_TYPE)
    parts = np.frombuffer(arr.buffers()[1], dtype=INTERVAL_DTYPE)[arr.offset : arr.offset + n]
    return pa.StructArray.from_arrays(
        [pa.array(parts[name]) for name in INTERVAL_DTYPE.names or ()],
        fields=list(INTERVAL_TYPE),
        mask=_null_mask(arr),
    )


# ------------------------------------------------------------------------------ JSON


@dataclass(frozen=True)
class _Rows:
    """A batch's columns in export form, which of them are verbatim `details` texts, the
    number of rows, and the bytes written before and after each row's object."""

    names: list[str]
    columns: list[pa.Array]
    details: list[bool]
    n: int
    before: bytes
    after: bytes


def json_chunk(batch: pa.RecordBatch, before: bytes, after: bytes) -> Any:
    """The rows of a batch as JSON objects, each as `before` + object + `after`, as one buffer."""
    names: list[str] = batch.schema.names
    columns = [_plain(c, csv=False) for c in batch.columns]
    details = [is_details(n, c.type) for n, c in zip(names, columns, strict=True)]
    rows = _Rows(names, columns, details, batch.num_rows, before, after)
    if all(_polars_ok(c.type) for c in columns):
        return _json_chunk_polars(rows)
    # Fallback: a type polars cannot encode (a union, an odd interval) is somewhere in this
    # batch; each value goes through orjson instead. Correct, slower, and rare.
    return _json_chunk_rows(rows)


def is_details(name: str, t: pa.DataType) -> bool:
    return name == DETAILS and type_in(t, _TEXT)


def _polars_ok(t: pa.DataType) -> bool:
    """True when polars imports this (plain) type and encodes it as the JSON we want."""
    if type_in(t, (*_NUMBER, *_TEXT, pa.types.is_null, pa.types.is_date32)):
        return not pa.types.is_float16(t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _polars_ok(t.value_type)
    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(_polars_ok(f.type) for f in t)
    return False


def _json_chunk_polars(rows: _Rows) -> Any:
    names, columns, details, n = rows.names, rows.columns, rows.details, rows.n
    before, after = rows.before, rows.after
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


def _json_chunk_rows(rows: _Rows) -> bytes:
    names, columns, details, n = rows.names, rows.columns, rows.details, rows.n
    before, after = rows.before, rows.after
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
    lines = (
        before + b"{" + b",".join(key + texts[r] for key, texts in members) + b"}" + after
        for r in range(n)
    )
    return b"".join(lines)


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
        return utc_text(aware)
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
    else:  # a type polars cannot encode (see json_chunk): orjson per value
        texts = pa.array([_dumps(v).decode() for v in arr.to_pylist()], pa.large_string())
    texts = texts.cast(pa.large_string())
    if arr.null_count:
        texts = pc.if_else(pc.is_valid(arr), texts, pa.scalar(None, pa.large_string()))
    return texts


# ------------------------------------------------------------------------------- CSV


def csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
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


def undefuse(texts: pa.Array) -> pa.Array:
    """The inverse of `_defuse`: one `'` removed from each cell it prefixed."""
    quoted = pc.match_substring_regex(texts, _DEFUSED)
    if not pc.any(quoted).as_py():
        return texts
    return pc.if_else(quoted, pc.utf8_slice_codeunits(texts, 1), texts)


def _csv_ok(t: pa.DataType) -> bool:
    return type_in(t, _CSV_CELL)
