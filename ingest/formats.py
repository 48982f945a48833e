"""Input formats: telling them apart, and tabular inputs (CSV, Parquet) as wire events.

In a tabular input a column may name a wire field dotted (`actor.id`) or by its stored flat name
(`actor_id`); `details` is then a JSON object in text form. A header that names one field
twice is refused: taking the last would let two readers of one input disagree.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from lake.contract import Issue, UsageError, ValidationError, colons_match, repeated_key

__all__ = [
    "FORMATS",
    "check_columns",
    "csv_records",
    "detect_format",
    "nest",
    "parquet_records",
    "wire_path",
]

FORMATS = ("jsonl", "json", "csv", "parquet")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(name: str, explicit: str | None, head: bytes = b"") -> str:
    """The input format: explicit, else by extension, else sniffed (stdin)."""
    if explicit:
        if explicit not in FORMATS:
            raise UsageError(f"unknown format {explicit!r}; choose one of {', '.join(FORMATS)}")
        return explicit
    if name != "-":
        suffix = Path(name).suffix.lower()
        if suffix in _EXTENSIONS:
            return _EXTENSIONS[suffix]
        raise UsageError(
            f"{name}: cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"pass --format ({', '.join(FORMATS)})"
        )
    if head.startswith(b"PAR1"):
        return "parquet"
    return "json" if head.lstrip()[:1] == b"[" else "jsonl"


# Flat column names accepted in tabular inputs → (object, field) of the wire format.
_FLAT = {
    "actor_id": ("actor", "id"),
    "actor_type": ("actor", "type"),
    "actor_ip": ("actor", "ip"),
    "user_agent": ("actor", "user_agent"),
    "actor_user_agent": ("actor", "user_agent"),
    "target_type": ("target", "type"),
    "target_id": ("target", "id"),
}
_RENAME = {"event_id": "id"}


def nest(flat: dict[str, Any], index: int, issues: list[Issue], line: int | None) -> dict[str, Any]:
    """Tabular row → wire event: nested objects from dotted or flat names, details parsed."""
    event: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None or value == "":
            continue
        key = _RENAME.get(key, key)
        if "." in key:
            obj, _, sub = key.partition(".")
            event.setdefault(obj, {})[sub] = value
        elif key in _FLAT:
            obj, sub = _FLAT[key]
            event.setdefault(obj, {})[sub] = value
        elif key == "details" and isinstance(value, str):
            try:
                event["details"] = details = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                issues.append(Issue(index, "details", f"is not valid JSON ({exc})", line=line))
            else:
                text = value.encode()
                if not colons_match(text, details) and (found := repeated_key(text)):
                    field, message = found
                    issues.append(Issue(index, f"details.{field}", message, line=line))
        elif isinstance(value, datetime):
            if value.tzinfo is None:
                issues.append(Issue(index, key, "timestamp has no time zone", line=line))
            else:
                event[key] = value.isoformat()
        else:
            event[key] = value
    return event


def wire_path(column: str) -> tuple[str, ...]:
    """The wire field a tabular column fills: ("tenant",), ("actor", "id"), ..."""
    key = _RENAME.get(column, column)
    if "." in key:
        obj, _, sub = key.partition(".")
        return (obj, sub)
    return _FLAT.get(key, (key,))


def check_columns(names: list[str], line: int | None) -> None:
    """Refuse a header that names one field twice (`actor_id` beside `actor.id`, `tenant`
    twice, `actor` beside `actor.id`): taking the last would silently drop a value."""
    owner: dict[tuple[str, ...], str] = {}
    issues: list[Issue] = []
    for name in names:
        path = wire_path(name)
        clash = next(
            (
                other
                for seen, other in owner.items()
                if seen == path or seen == path[:1] or path == seen[:1]
            ),
            None,
        )
        if clash is not None:
            what = "repeats column" if clash == name else "names the same field as column"
            field = ".".join(path if len(path) <= len(wire_path(clash)) else wire_path(clash))
            issues.append(
                Issue(0, name, f"column {name!r} {what} {clash!r} ({field}); keep one", line=line)
            )
        else:
            owner[path] = name
    if issues:
        raise ValidationError(issues)


def csv_records(raw: bytes) -> tuple[list[Any], list[int], list[Issue]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # utf-8-sig counts positions after a stripped BOM; count them in the raw bytes.
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw[:start].count(b"\n") + 1
        raise ValidationError(
            [Issue(max(line - 2, 0), "(event)", f"not valid UTF-8 at byte {start}", line=line)]
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records: list[Any] = []
    lines: list[int] = []
    issues: list[Issue] = []
    try:
        check_columns(list(reader.fieldnames or ()), 1)
        for row in reader:
            line = reader.line_num
            if None in row:
                issues.append(
                    Issue(len(records), "(event)", "more cells than header columns", line=line)
                )
                row.pop(None)
            records.append(nest(dict(row), len(records), issues, line))
            lines.append(line)
    except csv.Error as exc:
        raise ValidationError(
            [Issue(len(records), "(event)", f"malformed CSV ({exc})", line=reader.line_num)]
        ) from None
    return records, lines, issues


def parquet_records(raw: bytes, label: str) -> tuple[list[Any], list[Issue]]:
    try:
        # ParquetFile, not read_table: the dataset reader refuses a repeated column name
        # with an unreadable message; `check_columns` names it.
        table = pq.ParquetFile(pa.BufferReader(raw)).read()
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{label}: not a readable Parquet file ({exc})") from None
    for i, col in enumerate(table.schema):
        # Nanosecond columns (pandas' default) must hold whole microseconds: `time` is
        # stored in microseconds and nothing may be silently truncated.
        if pa.types.is_timestamp(col.type) and col.type.unit == "ns":
            try:
                us = table.column(i).cast(pa.timestamp("us", col.type.tz))
            except pa.ArrowInvalid:
                raise UsageError(
                    f"{label}: column {col.name!r} has sub-microsecond timestamps, "
                    "which would be lost; write microseconds"
                ) from None
            table = table.set_column(i, col.name, us)
            col = table.schema.field(i)
        # Instants are read in UTC: a zone only labels them, and a local time past year
        # 9999 (+14:00 on the last UTC second) is no Python datetime though the instant is.
        if pa.types.is_timestamp(col.type) and col.type.tz not in (None, "UTC"):
            table = table.set_column(
                i, col.name, table.column(i).cast(pa.timestamp(col.type.unit, "UTC"))
            )
    check_columns(table.schema.names, None)
    issues: list[Issue] = []
    try:
        rows = table.to_pylist()
    except (OverflowError, ValueError) as exc:  # an instant outside years 1-9999 in UTC
        raise UsageError(
            f"{label}: a timestamp column holds a time outside years 1-9999 ({exc})"
        ) from None
    records = [nest(row, i, issues, None) for i, row in enumerate(rows)]
    return records, issues
