"""An export read back: text, JSON and Parquet columns turned into the schema's types again."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO, Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lake.contract import UsageError
from lake.query._export_text import (
    INTERVAL_DTYPE,
    UTC_US,
    is_any_list,
    is_binary,
    is_details,
    is_native_json,
    is_scalar_text,
    undefuse,
)


def read_parquet(source: str | os.PathLike[str] | BinaryIO, schema: pa.Schema) -> pa.Table:
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
    """{months, days, nanoseconds} structs (as `interval_struct` makes them) as intervals again."""
    packed = np.zeros(len(parts), dtype=INTERVAL_DTYPE)
    for name in INTERVAL_DTYPE.names or ():
        packed[name] = parts.field(name).fill_null(0).to_numpy()
    validity = pc.is_valid(parts).buffers()[1] if parts.null_count else None
    return pa.Array.from_buffers(
        pa.month_day_nano_interval(),
        len(parts),
        [validity, pa.py_buffer(packed.tobytes())],
        null_count=parts.null_count,
    )


def read_csv(data: bytes, schema: pa.Schema) -> pa.Table:
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
    columns = [_from_text(undefuse(table.column(f.name).combine_chunks()), f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def read_json(data: bytes, schema: pa.Schema, *, array: bool) -> pa.Table:
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
        if is_details(f.name, f.type):
            values = [v if v is None or isinstance(v, str) else _canonical(v) for v in values]
        columns.append(_from_json(values, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _from_json(values: list[Any], t: pa.DataType) -> pa.Array:
    """A column of parsed JSON values as type `t`."""
    if isinstance(t, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(t, _from_json(values, t.storage_type))
    if is_scalar_text(t):  # written as text: convert with the CSV path's vectorised casts
        return _from_text(pa.array(values, pa.string()), t)
    if is_native_json(t):
        return pa.array(values, t)
    return pa.array([_from_py(v, t) for v in values], t)


def _from_text(text: pa.Array, t: pa.DataType) -> pa.Array:
    """A string column (CSV cells, or JSON strings) as type `t`."""
    if isinstance(t, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(t, _from_text(text, t.storage_type))
    if pa.types.is_dictionary(t):
        return _from_text(text, t.value_type).dictionary_encode().cast(t)
    if pa.types.is_timestamp(t):
        utc = text.cast(UTC_US)  # Arrow's ISO 8601 parser; the 'Z' makes it UTC
        return utc.cast(pa.timestamp(t.unit, tz=t.tz)) if t.tz else utc.cast(t)
    if pa.types.is_date(t):
        return text.cast(pa.date32()).cast(t)
    if pa.types.is_time(t):
        # A time of day is the time of 1970-01-01 (UTC): Arrow parses that to nanoseconds.
        stamp = pc.binary_join_element_wise("1970-01-01T", text, "Z", "")
        nanos = stamp.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        return nanos.cast(pa.time64("ns")).cast(t)
    if is_binary(t):
        cells = text.to_pylist()  # a UUID's dashes go, like the spaces fromhex skips
        return pa.array(
            [None if v is None else bytes.fromhex(v.replace("-", "")) for v in cells], t
        )
    if pa.types.is_duration(t):
        return text.cast(pa.int64()).cast(t)
    if pa.types.is_null(t):
        return pa.nulls(len(text))
    if is_scalar_text(t) or is_native_json(t):
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


_KINDS: Final[tuple[tuple[str, Callable[[pa.DataType], bool]], ...]] = (
    ("timestamp", pa.types.is_timestamp),
    ("date", pa.types.is_date),
    ("time", pa.types.is_time),
    ("binary", is_binary),
    ("decimal", pa.types.is_decimal),
    ("interval", lambda t: t == pa.month_day_nano_interval()),
    ("map", pa.types.is_map),
    ("struct", pa.types.is_struct),
    ("dictionary", pa.types.is_dictionary),
    ("list", is_any_list),
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
