"""The results table: one row per event, filled a page at a time as workers deliver them.

It holds the loaded events (so the detail pane and the pivots read the row under the
cursor without another query) and the marked events (for an evidence pack of several).
It never loads anything itself: reaching the end of the loaded rows, by cursor or by
scrolling, posts `MoreWanted` and the app decides whether there is more.

What is shown is a view of the loaded events: narrowed by a filter typed in the TUI (`f`),
and ordered by a column (`s`, or a click on its header) or in the search's order (newest
first). Marks and the cursor follow events, not row numbers, through every change of
view. Column widths follow the terminal's width (the flexible columns share what the
fixed ones leave); a value cut short in its cell is whole in the detail pane below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from rich.text import Text
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.widgets import DataTable

from tui.backend import Event
from tui.display import short_time
from tui.messages import MoreWanted, ViewChanged


@dataclass(frozen=True)
class ColumnSpec:
    """A results column: its label, the stored field, its narrowest width, and its share
    of the width left over (0: fixed at `width`)."""

    label: str
    key: str
    width: int
    share: int = 0


COLUMNS: Final = (
    ColumnSpec("", "mark", 1),
    ColumnSpec("time (UTC)", "time", 19),
    ColumnSpec("tenant", "tenant", 10, 1),
    ColumnSpec("action", "action", 12, 1),
    ColumnSpec("outcome", "outcome", 7),
    ColumnSpec("actor", "actor_id", 14, 5),
    ColumnSpec("ip", "actor_ip", 15, 1),
    ColumnSpec("target", "target_id", 10, 2),
)
SORTABLE: Final = tuple(c.key for c in COLUMNS if c.key != "mark")
MARK: Final = "●"
OUTCOME_STYLES: Final = {"failure": "bold red", "unknown": "yellow"}
# Rows from the end at which more are asked for, so the next page is there in time.
PREFETCH_ROWS: Final = 5
SCROLLBAR: Final = 2  # cells kept for the vertical scrollbar


def event_key(event: Event) -> tuple[str, str]:
    """What identifies an event across views: its tenant and id."""
    return str(event.get("tenant")), str(event.get("event_id"))


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


def fit_widths(total: int, padding: int = 1) -> dict[str, int]:
    """Column widths for a table `total` cells wide: every column at least its narrowest
    width, and the flexible ones sharing the rest by their shares."""
    spare = total - SCROLLBAR - sum(c.width + 2 * padding for c in COLUMNS)
    shares = sum(c.share for c in COLUMNS)
    widths = {c.key: c.width for c in COLUMNS}
    if spare <= 0 or shares == 0:
        return widths
    given = 0
    flexible = [c for c in COLUMNS if c.share]
    for c in flexible:
        extra = spare * c.share // shares
        widths[c.key] += extra
        given += extra
    widths["actor_id"] += spare - given  # rounding leftovers: the longest values
    return widths


def matches(event: Event, needle: str) -> bool:
    """Whether any shown value of the event contains `needle` (lower-cased already)."""
    return any(needle in str(event.get(c.key) or "").lower() for c in COLUMNS[1:])


def _sort_value(key: str) -> Callable[[Event], Any]:
    if key == "time":
        return lambda e: (e.get("time") is None, e.get("time"))
    return lambda e: str(e.get(key) or "").lower()


class ResultsTable(DataTable[str | Text]):
    """Events of the current search: newest first, or as sorted and filtered in the TUI."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.loaded: list[Event] = []  # every loaded event, in the search's order
        self.events: list[Event] = []  # the rows on screen, top to bottom
        self.marked: set[tuple[str, str]] = set()
        self.filter_text = ""
        self.sort_key: str | None = None
        self.sort_descending = False
        self.widths = fit_widths(0)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for c in COLUMNS:
            self.add_column(c.label, key=c.key, width=self.widths[c.key])

    def on_resize(self, event: Resize) -> None:
        widths = fit_widths(event.size.width, self.cell_padding)
        if widths != self.widths:
            self.widths = widths
            self._show(keep=self.current())

    def reset(self) -> None:
        """Forget every row (a new search); the filter and the sort stay."""
        self.clear()
        self.loaded = []
        self.events = []
        self.marked = set()

    def add_events(self, events: list[Event]) -> None:
        """Append a page of events."""
        self.loaded.extend(events)
        if self.sort_key is None:  # rows only go below: add them, the cursor stays put
            shown = [e for e in events if self._visible(e)]
            self.events.extend(shown)
            self.add_rows(row_cells(e, event_key(e) in self.marked) for e in shown)
        else:
            self._show(keep=self.current())

    # -- the view ---------------------------------------------------------------------------

    def _visible(self, event: Event) -> bool:
        return not self.filter_text or matches(event, self.filter_text.lower())

    def _show(self, keep: Event | None) -> None:
        """Lay out the rows again (filter, sort, widths), the cursor on `keep` if shown."""
        rows = [e for e in self.loaded if self._visible(e)]
        if self.sort_key is not None:
            rows.sort(key=_sort_value(self.sort_key), reverse=self.sort_descending)
        self.clear(columns=True)
        self._add_columns()
        self.events = rows
        self.add_rows(row_cells(e, event_key(e) in self.marked) for e in rows)
        if keep is not None:
            self.select(event_key(keep))

    def select(self, key: tuple[str, str]) -> bool:
        """Put the cursor on the event with this key, if it is shown."""
        for row, event in enumerate(self.events):
            if event_key(event) == key:
                self.move_cursor(row=row, animate=False, scroll=True)
                return True
        return False

    def set_filter(self, text: str) -> None:
        """Show only loaded events with `text` in a shown column (case-insensitive)."""
        if text.strip() != self.filter_text:
            self.filter_text = text.strip()
            self._show(keep=self.current())

    def sort_by(self, key: str | None, descending: bool | None = None) -> None:
        """Order the rows by a column (None: the search's order, newest first); the same
        column again turns the order round."""
        if key is not None and key not in SORTABLE:
            raise ValueError(f"no column {key!r} to sort by")
        if descending is None:
            descending = key == self.sort_key and not self.sort_descending
        self.sort_key, self.sort_descending = key, descending
        self._show(keep=self.current())

    def next_sort(self) -> None:
        """Sort by the next column (after the last: the search's order again)."""
        order: list[str | None] = [None, *SORTABLE]
        self.sort_by(order[(order.index(self.sort_key) + 1) % len(order)], False)

    def describe_view(self) -> str:
        """The view in words for the status line ('' for all rows in the search's order)."""
        parts = []
        if self.filter_text:
            parts.append(f"filter {self.filter_text!r}: {len(self.events):,} shown")
        if self.sort_key is not None:
            label = next(c.label for c in COLUMNS if c.key == self.sort_key)
            parts.append(f"sorted by {label} {'↓' if self.sort_descending else '↑'}")
        return " · ".join(parts)

    def on_data_table_header_selected(self, message: DataTable.HeaderSelected) -> None:
        message.stop()
        key = message.column_key.value
        if key in SORTABLE:
            self.sort_by(key)
            self.post_message(ViewChanged())

    # -- rows -------------------------------------------------------------------------------

    def current(self) -> Event | None:
        """The event under the cursor, if any."""
        row = self.cursor_row
        if not self.events or not 0 <= row < len(self.events):
            return None
        return self.events[row]

    def toggle_mark(self) -> bool:
        """Mark or unmark the event under the cursor; returns whether it is marked now."""
        event = self.current()
        if event is None:
            return False
        key = event_key(event)
        if key in self.marked:
            self.marked.discard(key)
        else:
            self.marked.add(key)
        self.update_cell_at(Coordinate(self.cursor_row, 0), MARK if key in self.marked else "")
        return key in self.marked

    def marked_events(self) -> list[Event]:
        """The marked events, in the search's order (hidden by a filter or not)."""
        return [e for e in self.loaded if event_key(e) in self.marked]

    def near_end(self) -> bool:
        """Whether the cursor is within a few rows of the last loaded one."""
        return bool(self.events) and self.cursor_row >= len(self.events) - PREFETCH_ROWS

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.events and new_value >= self.max_scroll_y and new_value > old_value:
            self.post_message(MoreWanted())
