"""Every custom message of the TUI, as dataclasses (the toolong habit).

Workers run in threads and never touch widgets: they post one of these, and the handler
on the UI thread updates the screen. Search results carry the `generation` of the search
that asked for them, so a page that arrives after the user moved on is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from lake.api import Alert
from tui.backend import Event
from tui.timeline import Timeline


@dataclass
class PageLoaded(Message):
    """A page of results of search `generation`; `first` when it starts a new search."""

    generation: int
    events: list[Event]
    next_cursor: str | None
    first: bool


@dataclass
class SearchFailed(Message):
    """Search `generation` was refused or failed (bad filter, no access, unreadable)."""

    generation: int
    error: str


@dataclass
class TimelineLoaded(Message):
    """The timeline of search `generation` (None with the error when it failed)."""

    generation: int
    timeline: Timeline | None
    error: str | None = None


@dataclass
class ProofChecked(Message):
    """The integrity check of one event finished: `ok` with the checker's message, or the
    finding; `checked` is False when no check could be made (e.g. no permission)."""

    tenant: str
    event_id: str
    ok: bool
    message: str
    checked: bool = True


@dataclass
class MoreWanted(Message):
    """The results table was scrolled to its end: load the next page if there is one."""


@dataclass
class ViewChanged(Message):
    """The results table was sorted or filtered by the user: the status line says how."""


@dataclass
class TimelineResized(Message):
    """The timeline strip is now `width` cells wide: its buckets want recounting."""

    width: int


@dataclass
class AlertsLoaded(Message):
    """The alerts the principal may read, newest first (or the error that stopped it)."""

    alerts: list[Alert]
    error: str | None = None


@dataclass
class EvidenceWanted(Message):
    """Write an evidence pack of these (tenant, event_id) pairs; `stem` names the default
    file, `note` goes into its manifest."""

    events: list[tuple[str, str]]
    stem: str
    note: str = ""
