"""The results table: one row per event, filled a page at a time as workers deliver them.

It holds the loaded events (so the detail pane and the pivots read the row under the
cursor without another query) and the marked rows (for an evidence pack of several
events). It never loads anything itself: reaching the end of the loaded rows, by cursor
or by scrolling, posts `MoreWanted` and the app decides whether there is more.
"""

from __future__ import annotations

from typing import Final

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from tui.backend import Event
from tui.display import short_time
from tui.messages import MoreWanted

# (label, key, width) of each column.
COLUMNS: Final = (
    ("", "mark", 1),
    ("time (UTC)", "time", 19),
    ("tenant", "tenant", 10),
    ("action", "action", 18),
    ("outcome", "outcome", 7),
    ("actor", "actor_id", 30),
    ("ip", "actor_ip", 15),
    ("target", "target_id", 20),
)
MARK: Final = "●"
OUTCOME_STYLES: Final = {"failure": "bold red", "unknown": "yellow"}
# Rows from the end at which more are asked for, so the next page is there in time.
PREFETCH_ROWS: Final = 5


def row_cells(event: Event, marked: bool = False) -> list[str | Text]:
    """The table cells of one event."""
    outcome = str(event.get("outcome") or "")
    return [
        MARK if marked else "",
        short_time(event["time"]),
        str(event.get("tenant") or ""),
        str(event.get("action") or ""),
        Text(outcome, style=OUTCOME_STYLES.get(outcome, "")),
        str(event.get("actor_id") or ""),
        str(event.get("actor_ip") or ""),
        str(event.get("target_id") or ""),
    ]


class ResultsTable(DataTable[str | Text]):
    """Events of the current search, newest first."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.events: list[Event] = []
        self.marked: set[int] = set()

    def on_mount(self) -> None:
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def reset(self) -> None:
        """Forget every row (a new search)."""
        self.clear()
        self.events = []
        self.marked = set()

    def add_events(self, events: list[Event]) -> None:
        """Append a page of events."""
        self.events.extend(events)
        self.add_rows(row_cells(e) for e in events)

    def current(self) -> Event | None:
        """The event under the cursor, if any."""
        row = self.cursor_row
        if not self.events or not 0 <= row < len(self.events):
            return None
        return self.events[row]

    def toggle_mark(self) -> bool:
        """Mark or unmark the event under the cursor; returns whether it is marked now."""
        row = self.cursor_row
        if not 0 <= row < len(self.events):
            return False
        if row in self.marked:
            self.marked.discard(row)
        else:
            self.marked.add(row)
        self.update_cell_at(Coordinate(row, 0), MARK if row in self.marked else "")
        return row in self.marked

    def marked_events(self) -> list[Event]:
        """The marked events, in table order."""
        return [self.events[i] for i in sorted(self.marked)]

    def near_end(self) -> bool:
        """Whether the cursor is within a few rows of the last loaded one."""
        return bool(self.events) and self.cursor_row >= len(self.events) - PREFETCH_ROWS

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.events and new_value >= self.max_scroll_y and new_value > old_value:
            self.post_message(MoreWanted())
