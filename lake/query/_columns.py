"""The columns a listing of events shows people (the CLI's search table, the dashboard's
search page): the few that say what happened, by whom, where, to what, and which event."""

from __future__ import annotations

from typing import Final

LISTING_COLUMNS: Final = (
    "time",
    "tenant",
    "category",
    "action",
    "outcome",
    "severity",
    "actor_id",
    "actor_ip",
    "target_id",
    "event_id",
)
