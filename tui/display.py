"""How event values look in the TUI, in one place so the table, the detail pane, the
timeline and the tests agree (and no wall-clock or local time zone leaks onto the screen).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

import orjson

from lake.api import EVENTS_SCHEMA, utc_text

# Order of the detail pane: the stored columns, most telling first, bookkeeping last
# (`details` has a pane of its own).
_FIRST: Final = ("time", "tenant", "event_id")
_BOOKKEEPING: Final = ("received_at", "event_date", "seq", "batch_id", "leaf_hash")
DETAIL_FIELDS: Final = (
    *_FIRST,
    *(n for n in EVENTS_SCHEMA.names if n not in {*_FIRST, *_BOOKKEEPING, "details"}),
    *_BOOKKEEPING,
)


def utc(value: datetime) -> datetime:
    """The moment in UTC (stored times are UTC; naive ones are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def full_time(value: datetime) -> str:
    """The stored form of a time: UTC, microseconds, 'Z' (as `lake.proofs` writes it)."""
    return utc_text(utc(value))


def short_time(value: datetime) -> str:
    """A time for a table cell: to the second, UTC."""
    return utc(value).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    """Any stored value as one line of text ('' for null)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return full_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def pretty_details(text: str | None) -> str | None:
    """The `details` JSON indented for reading, or None when there are none.

    Stored details are canonical JSON (sorted keys); text that does not parse is shown
    as it is rather than hidden.
    """
    if text is None or text in ("", "{}"):
        return None
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text
