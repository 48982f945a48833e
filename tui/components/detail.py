"""The event detail pane: every stored field, the details JSON indented, and whether the
event is intact.

Integrity is the point of the lake, so it heads the pane: ✓ when the event's inclusion
proof checks against the tenant's latest checkpoint signed by a trusted key, ✗ with the
finding when it does not. The check runs in a worker when an event is opened (Enter or
a click); moving the cursor only previews fields, so scrolling through a page does not
prove, and audit, every row it passes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

from rich.console import Console, Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.backend import Event
from tui.display import DETAIL_FIELDS, cell, pretty_details


class Check(StrEnum):
    """Where the integrity check of the shown event stands."""

    NOT_RUN = "not_run"
    RUNNING = "running"
    VERIFIED = "verified"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Integrity:
    """The integrity status line of the pane."""

    check: Check
    message: str = ""

    def line(self) -> Text:
        if self.check is Check.VERIFIED:
            return Text.assemble(("✓ verified", "bold green"), f": {self.message}")
        if self.check is Check.FAILED:
            return Text.assemble(("✗ integrity check failed", "bold red"), f": {self.message}")
        if self.check is Check.RUNNING:
            return Text(
                "… checking the inclusion proof against the latest signed checkpoint",
                style="yellow",
            )
        if self.check is Check.UNAVAILABLE:
            return Text.assemble(("– not checked", "yellow"), f": {self.message}")
        return Text("○ not checked yet: Enter checks its inclusion proof", style="dim")


NOT_RUN = Integrity(Check.NOT_RUN)


def _fields(event: Event, names: tuple[str, ...]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for name in names:
        value = cell(event.get(name))
        style = "bold red" if name == "outcome" and value == "failure" else ""
        grid.add_row(name, Text(value, style=style))
    return grid


def render_event(event: Event | None, integrity: Integrity) -> RenderableType:
    """The pane's content for one event (or a hint when there is none): the integrity
    line, then the fields in two columns and the details JSON in a third."""
    if event is None:
        return Text("No event selected. Search with /, move with ↑↓, open with Enter.", style="dim")
    half = (len(DETAIL_FIELDS) + 1) // 2
    details = pretty_details(event.get("details"))
    body = Table.grid(expand=True, padding=(0, 2))
    body.add_column(ratio=5)
    body.add_column(ratio=6)
    body.add_column(ratio=3)
    body.add_row(
        _fields(event, DETAIL_FIELDS[:half]),
        _fields(event, DETAIL_FIELDS[half:]),
        Text("details: none", style="dim")
        if details is None
        else Group(Text("details", style="dim"), JSONHighlighter()(Text(details))),
    )
    return Group(integrity.line(), body)


class EventDetail(VerticalScroll):
    """The pane; `show` replaces what it shows."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event: Event | None = None
        self.integrity: Integrity = NOT_RUN

    def compose(self) -> ComposeResult:
        yield Static(render_event(None, NOT_RUN), id="detail-body")

    def show(self, event: Event | None, integrity: Integrity = NOT_RUN) -> None:
        """Show `event` with this integrity status."""
        if event is not self.event:
            self.scroll_home(animate=False)
        self.event = event
        self.integrity = integrity
        self.query_one("#detail-body", Static).update(render_event(event, integrity))

    def shows(self, tenant: str, event_id: str) -> bool:
        """Whether the pane shows this event (a late check result may be for another)."""
        return (
            self.event is not None
            and self.event.get("tenant") == tenant
            and self.event.get("event_id") == event_id
        )

    def text(self, width: int = 140) -> str:
        """The pane's content as plain text (what a reader sees, without colour)."""
        console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
        console.print(render_event(self.event, self.integrity))
        return console.export_text()
