"""The alerts view: what the detection rules raised, newest first; open one to see its
evidence events in the results, with every pivot and proof available there.

Alerts come from the lake's `alerts` table through the principal's session, so only
tenants the principal may read alerts of appear (a viewer sees none), and the read is
audited. Loading runs in a worker; `e` asks the app for an evidence pack of the alert.
"""

from __future__ import annotations

from typing import Final

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lake.api import Alert, LakeError
from tui.backend import Backend, alert_evidence
from tui.display import short_time
from tui.messages import AlertsLoaded, EvidenceWanted

ALERT_COLUMNS: Final = (
    ("severity", 8),
    ("last seen (UTC)", 19),
    ("tenant", 10),
    ("rule", 28),
    ("events", 6),
    ("title", 56),
)
SEVERITY_STYLES: Final = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def describe(alert: Alert) -> Table:
    """The highlighted alert in full: what the table cuts short."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    seen = " → ".join(short_time(t) for t in (alert.first_seen, alert.last_seen) if t)
    rows = (
        ("title", Text(alert.title, style="bold")),
        ("rule", f"{alert.rule_id} ({alert.severity}) · tenant {alert.tenant}"),
        ("seen (UTC)", f"{seen} · {alert.event_count or 0:,} evidence event(s)"),
        ("group", alert.group or ""),
        ("alert id", alert.alert_id),
    )
    for name, value in rows:
        grid.add_row(name, value)
    return grid


class AlertsScreen(Screen[Alert | None]):
    """Dismissed with the alert to open, or None to go back."""

    AUTO_FOCUS = "#alerts-table"
    BINDINGS = [  # noqa: RUF012 (Textual's class-level binding table)
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open", show=True, priority=False),
        Binding("e", "evidence", "Evidence pack"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.alerts: list[Alert] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading alerts…", id="alerts-status")
        yield DataTable[str | Text](cursor_type="row", zebra_stripes=True, id="alerts-table")
        yield Static(id="alert-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in ALERT_COLUMNS:
            table.add_column(label, key=label, width=width)
        self.load()

    @work(thread=True, exclusive=True, group="alerts")
    def load(self) -> None:
        try:
            self.post_message(AlertsLoaded(self.backend.alerts()))
        except LakeError as exc:
            self.post_message(AlertsLoaded([], error=str(exc)))

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        status = self.query_one("#alerts-status", Static)
        table = self.query_one(DataTable)
        table.clear()
        self.alerts = message.alerts
        if message.error:
            status.update(Text(f"✗ {message.error}", style="bold red"))
            self.notify(message.error, title="alerts", severity="error")
            return
        for alert in self.alerts:
            table.add_row(
                Text(alert.severity, style=SEVERITY_STYLES.get(alert.severity, "")),
                short_time(alert.last_seen) if alert.last_seen else "",
                alert.tenant,
                alert.rule_id,
                Text(f"{alert.event_count or 0:,}", justify="right"),
                alert.title,
            )
        count = f"{len(self.alerts)} alert(s)" if self.alerts else "no alerts you may read"
        status.update(f"{count} · Enter opens an alert's events · e writes its evidence pack")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        alert = self.current()
        self.query_one("#alert-detail", Static).update(describe(alert) if alert is not None else "")

    def current(self) -> Alert | None:
        row = self.query_one(DataTable).cursor_row
        return self.alerts[row] if 0 <= row < len(self.alerts) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        alert = self.current()
        if alert is not None:
            self.dismiss(alert)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.query_one("#alerts-status", Static).update("loading alerts…")
        self.load()

    def action_evidence(self) -> None:
        alert = self.current()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        note = f"alert {alert.alert_id} ({alert.rule_id}): {alert.title}"
        stem = f"evidence-alert-{alert.alert_id[:12]}"
        self.post_message(EvidenceWanted(alert_evidence(alert), stem, note))
