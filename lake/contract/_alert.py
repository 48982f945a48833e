"""`Alert`: one detection alert, the same value from the rule engine to the sinks, the
delivery spool, the `alerts` table and the readers of it (CLI, TUI, dashboard).

Three forms, each converted here and nowhere else:

- the **row** (`from_row` / `to_row`): ALERTS_SCHEMA's columns, as the `alerts` Delta table
  stores them (`group` is canonical JSON text, or sealed text on an encrypted lake; times
  are timestamp[us, UTC]);
- the **JSON form** (`to_json` / `from_json`): what every sink sends and `alerts list
  --format json` prints: times as RFC 3339 UTC with microseconds and `Z`, `group` the
  object it encodes (`{}` when absent), `event_ids` a list;
- the value itself, a frozen dataclass with one attribute per column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from lake.contract._errors import UsageError
from lake.contract._schema import ALERTS_SCHEMA

ALERT_COLUMNS: Final[tuple[str, ...]] = tuple(ALERTS_SCHEMA.names)
_REQUIRED: Final = ("tenant", "alert_id", "rule_id", "severity", "title")


def _time(value: Any, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise UsageError(f"alert {what} must be a datetime, got {type(value).__name__}")


def _json_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    # Stored times are UTC; a naive datetime is read as UTC, as lake.query's export does.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # isoformat, not strftime: %Y does not pad years before 1000 ("1-01-01").
    return aware.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _group_text(value: Any, alert_id: str) -> str | None:
    """`group` as stored: JSON text (or sealed text) kept as is; a mapping encoded."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, Mapping):
        return orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS).decode()
    raise UsageError(f"alert {alert_id}: group must be JSON text or a mapping")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a rule's finding for one (tenant, group, dedup bucket).

    `alert_id` is derived deterministically by the engine, so reruns and overlapping runs
    produce the same alert; consumers deduplicate by it.
    """

    tenant: str
    alert_id: str
    rule_id: str
    severity: str
    title: str
    group: str | None = None  # canonical JSON text of the group keys (sealed when encrypted)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    event_count: int | None = None
    event_ids: tuple[str, ...] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        """An alert from a row with ALERTS_SCHEMA's keys (others are ignored).

        Raises:
            UsageError: a required key is missing or a value has the wrong type.
        """
        for key in _REQUIRED:
            if row.get(key) is None:
                raise UsageError(f"alert is missing {key!r}")
        alert_id = str(row["alert_id"])
        count = row.get("event_count")
        ids = row.get("event_ids")
        return cls(
            tenant=str(row["tenant"]),
            alert_id=alert_id,
            rule_id=str(row["rule_id"]),
            severity=str(row["severity"]),
            title=str(row["title"]),
            group=_group_text(row.get("group"), alert_id),
            first_seen=_time(row.get("first_seen"), "first_seen"),
            last_seen=_time(row.get("last_seen"), "last_seen"),
            event_count=None if count is None else int(count),
            event_ids=None if ids is None else tuple(str(i) for i in ids),
        )

    def to_row(self) -> dict[str, Any]:
        """The row ALERTS_SCHEMA stores, keys in its column order."""
        row = {name: getattr(self, name) for name in ALERT_COLUMNS}
        row["event_ids"] = None if self.event_ids is None else list(self.event_ids)
        return row

    def group_keys(self) -> Any:
        """The group as the object it encodes ({} when absent).

        Raises:
            UsageError: `group` is not JSON (a sealed group must be opened first).
        """
        if self.group is None:
            return {}
        try:
            return orjson.loads(self.group)
        except orjson.JSONDecodeError:
            raise UsageError(f"alert {self.alert_id}: group is not JSON") from None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (the `alerts list` keys of the contract)."""
        return {
            **self.to_row(),
            "group": self.group_keys(),
            "first_seen": _json_time(self.first_seen),
            "last_seen": _json_time(self.last_seen),
            "event_ids": list(self.event_ids or ()),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Alert:
        """An alert from its JSON form; `group` may also be stored text (sealed).

        Raises:
            UsageError: a required key is missing or a value has the wrong type.
            ValueError: a time is not RFC 3339.
        """
        times = {
            k: None if doc.get(k) is None else datetime.fromisoformat(str(doc[k]))
            for k in ("first_seen", "last_seen")
        }
        return cls.from_row({**doc, **times})
