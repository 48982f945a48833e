"""The help screen (`?`): every key, and the query syntax, on one page.

Written out rather than generated from the bindings so it can say what each key means for
an investigation (what a pivot keeps, what an export contains), not just its name.
"""

from __future__ import annotations

from typing import Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: Final = (
    ("Search", ""),
    ("/", "focus the search box; Enter applies the query, Escape leaves the box"),
    ("b", "back to the previous search"),
    ("n", "load the next page (scrolling to the end does too)"),
    ("Events", ""),
    ("↑ ↓ PgUp PgDn", "move through the results; the detail pane follows"),
    ("ctrl+Home/End", "first / last loaded result (the last asks for the next page)"),
    ("Enter / click", "open the event: check its inclusion proof (✓ or the finding)"),
    ("space", "mark or unmark the event (for an evidence pack of several)"),
    ("f", "filter the loaded results by text in any column; Escape shows them all again"),
    ("s / click a header", "sort the loaded results by a column; again: the other way round"),
    ("(detail pane)", "every field of the event under the cursor, in full"),
    ("Pivots", ""),
    ("a", "same actor (in the event's tenant)"),
    ("i", "same IP address (across all your tenants)"),
    ("t", "same target (in the event's tenant)"),
    ("w", "±N minutes around the event (in its tenant; --window sets N)"),
    ("Views and files", ""),
    ("A", "alerts; Enter opens an alert's events, e writes its evidence pack"),
    ("l", "show or hide the timeline of the current search"),
    ("e", "export every result of the search (.csv .json .jsonl .parquet)"),
    (
        "E",
        "evidence pack (events, proofs, checkpoints, keys) of the marked events,"
        " else of the one under the cursor",
    ),
    ("App", ""),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help; Escape closes it"),
    ("q", "quit (the read audit is flushed first)"),
)
SYNTAX: Final = (
    "actor:alice action:login outcome:failure ip:203.0.113.7 category:key_change\n"
    "created:>=2026-11-01  created:>=7d  created:2026-11-01..2026-11-03  tenant:acme\n"
    '-actor:deploy-bot (exclude)   key.* (prefix)   a,b (either)   "free text"\n'
    "Free text matches actor, target, address, user agent, source and details."
)


def help_text() -> RenderableType:
    """The help page."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        if not what:
            table.add_row(Text(key, style="bold underline"), "")
        else:
            table.add_row(key, what)
    return Group(
        Text("auditlake tui: keys", style="bold"),
        Text(),
        table,
        Text(),
        Text("Query syntax (the same as `auditlake search`)", style="bold underline"),
        Text(SYNTAX),
        Text(),
        Text("Every search, proof and export is recorded in the read audit as you.", style="dim"),
    )


class HelpScreen(ModalScreen[None]):
    """A modal page of keys; any of escape, ? or q closes it."""

    AUTO_FOCUS = "#help-box"
    BINDINGS = [  # noqa: RUF012 (Textual's class-level binding table)
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text(), id="help-body")

    def action_close(self) -> None:
        self.dismiss(None)
