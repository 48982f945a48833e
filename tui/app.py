"""The investigator app: search → results → detail and proof → pivot, in one screen.

Why it is built this way: investigators work over SSH on lakes of millions of events and
follow one lead into the next, so nothing may freeze the screen. Every read runs in a
thread worker (`tui.backend` is the only code that touches the lake) and reports back with
a message from `tui.messages`; results load a page at a time on the snapshot of the first
page; each new search bumps a generation number so late answers of an abandoned search are
dropped; errors (a bad query, no access, a failed proof) are shown on screen, never raised.

The app does not open or close the lake: it is given the principal's `LakeSession`, and
whoever opened it closes it after `run()` returns, which flushes the buffered read audit
(the app also flushes it every few seconds while it runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Final

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from lake.api import AccessDenied, Alert, LakeError, LakeSession, SearchFilter, parse_query
from tui import pivots
from tui.backend import PAGE_ROWS, Backend, Event, alert_filter, free_path
from tui.components.alerts import AlertsScreen
from tui.components.detail import NOT_RUN, Check, EventDetail, Integrity
from tui.components.help import HelpScreen
from tui.components.prompt import PathPrompt
from tui.components.results import ResultsTable, event_key
from tui.components.timeline import TimelineStrip
from tui.messages import (
    EvidenceWanted,
    MoreWanted,
    PageLoaded,
    ProofChecked,
    SearchFailed,
    TimelineLoaded,
    TimelineResized,
    ViewChanged,
)

AUDIT_FLUSH_SECONDS: Final = 5.0
HISTORY: Final = 100  # searches `back` can return to
MAX_SEEK_PAGES: Final = 50  # pages loaded at most to find the event a `w` pivot centres on
SEARCH_PLACEHOLDER: Final = (
    "/ to search: actor:alice action:login outcome:failure ip:203.0.113.7 created:>=7d"
)
FILTER_PLACEHOLDER: Final = (
    "filter the loaded results: any shown column containing this text (Escape clears)"
)
# Actions that act on the results screen: off (and out of the footer) on other screens.
MAIN_ACTIONS: Final = frozenset(
    {
        "focus_search",
        "leave_search",
        "load_more",
        "pivot",
        "previous_search",
        "alerts",
        "export",
        "evidence",
        "mark",
        "toggle_timeline",
        "filter",
        "sort",
    }
)


@dataclass(frozen=True)
class View:
    """One search of the session: the filter, the text of the search box, a status label."""

    filt: SearchFilter
    text: str
    label: str
    focus: tuple[str, str] | None = None  # (tenant, event_id) to put the cursor on


def initial_view(tenants: Sequence[str]) -> View:
    """The opening search: the newest events of the given tenants (default: all yours)."""
    filt = SearchFilter(tenants=tuple(tenants))
    label = f"newest events of {', '.join(tenants)}" if tenants else "newest events"
    return View(filt, filt.to_query_string(), label)


class AuditlakeApp(App[None]):
    """`auditlake tui`.

    Args:
        session: the principal's open session (the caller closes it after `run()`).
        tenants: start with `tenant:` these (default: every tenant the principal may read).
        window: the half-width of the time-window pivot.
        workdir: where exports and evidence packs go by default (default: the cwd).
        page_rows: events per page of results.
    """

    CSS_PATH = "app.tcss"
    TITLE = "auditlake"
    AUTO_FOCUS = "#results"
    BINDINGS = [  # noqa: RUF012 (Textual's class-level binding table)
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("escape", "leave_search", "Leave search", show=False),
        Binding("n", "load_more", "More"),
        Binding("a", "pivot('actor')", "Actor"),
        Binding("i", "pivot('ip')", "IP"),
        Binding("t", "pivot('target')", "Target"),
        Binding("w", "pivot('window')", "±Time"),
        Binding("b", "previous_search", "Back"),
        Binding("A", "alerts", "Alerts", key_display="A"),
        Binding("e", "export", "Export"),
        Binding("E", "evidence", "Evidence", key_display="E"),
        Binding("space", "mark", "Mark", show=False),
        Binding("f", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("l", "toggle_timeline", "Timeline", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        session: LakeSession,
        *,
        tenants: Sequence[str] = (),
        window: timedelta = pivots.DEFAULT_WINDOW,
        workdir: Path | None = None,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        super().__init__()
        self.backend = Backend(session, page_rows=page_rows)
        self.window = window
        self.workdir = workdir or Path.cwd()
        self.view = initial_view(tenants)
        self.history: list[View] = []
        self.generation = 0
        self.next_cursor: str | None = None
        self.loading = False
        self.total: int | None = None
        self.error: str | None = None  # the current search failed: no results to page
        self.query_error: str | None = None  # the box holds a query that does not parse
        self.pages_sought = 0  # pages loaded so far to find the view's focus event

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(self.view.text, placeholder=SEARCH_PLACEHOLDER, id="search")
        yield Static(id="status")
        filter_box = Input(placeholder=FILTER_PLACEHOLDER, id="filter")
        filter_box.display = False
        yield filter_box
        yield TimelineStrip(id="timeline")
        yield ResultsTable(id="results")
        yield EventDetail(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"as {self.backend.principal} · lake {self.backend.lake_name}"
        self.set_interval(AUDIT_FLUSH_SECONDS, self.flush_audit)
        self.apply(self.view, remember=False)

    @property
    def results(self) -> ResultsTable:
        return self.query_one("#results", ResultsTable)

    @property
    def detail(self) -> EventDetail:
        return self.query_one("#detail", EventDetail)

    @property
    def timeline(self) -> TimelineStrip:
        return self.query_one("#timeline", TimelineStrip)

    @property
    def search_box(self) -> Input:
        return self.query_one("#search", Input)

    def on_main_screen(self) -> bool:
        return self.screen is self.screen_stack[0]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in MAIN_ACTIONS or self.on_main_screen()

    # -- searching ----------------------------------------------------------------------------

    def apply(self, view: View, *, remember: bool = True) -> None:
        """Run a new search (remembering the current one for `back`)."""
        if remember:
            self.history = [*self.history[-(HISTORY - 1) :], self.view]
        self.view = view
        self.search_box.value = view.text
        self.generation += 1
        self.next_cursor = None
        self.total = None
        self.error = None
        self.query_error = None
        self.loading = True
        self.pages_sought = 0
        self.results.reset()
        self.detail.show(None)
        self.timeline.timeline = None
        self.timeline.status = "waiting for the search…"
        self.update_status()
        self.load_page(self.generation, view.filt, None)

    @work(thread=True, exclusive=True, group="search")
    def load_page(self, generation: int, filt: SearchFilter, cursor: str | None) -> None:
        """Fetch one page (the first when `cursor` is None) and post it."""
        try:
            page = self.backend.page(filt, cursor)
        except LakeError as exc:
            self.post_message(SearchFailed(generation, str(exc)))
            return
        self.post_message(PageLoaded(generation, page.events, page.next_cursor, cursor is None))

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return  # an abandoned search
        self.loading = False
        self.next_cursor = message.next_cursor
        self.results.add_events(message.events)
        if message.first:
            self.preview()
            width = self.timeline.content_size.width
            self.start_timeline(width if width > 10 else 100)
        if self.view.focus is not None and self.seek_focus():
            return
        self.update_status()

    def on_search_failed(self, message: SearchFailed) -> None:
        if message.generation != self.generation:
            return
        self.loading = False
        self.show_error(message.error)
        self.timeline.status = "no search"

    def show_error(self, error: str) -> None:
        self.error = error
        self.update_status()
        self.notify(error, title="search", severity="error")

    def show_query_error(self, error: str) -> None:
        """A query that does not parse: said on screen; the results of the current search
        stay (and can still be paged and exported)."""
        self.query_error = error
        self.update_status()
        self.notify(error, title="query", severity="error")

    def seek_focus(self) -> bool:
        """Put the cursor on the event the view is centred on (the `w` pivot's), loading
        pages until it is there; True while another page is on its way for it."""
        focus = self.view.focus
        assert focus is not None
        if self.results.select(focus):
            self.view = replace(self.view, focus=None)
            self.preview()
            return False
        if self.next_cursor is None or self.pages_sought >= MAX_SEEK_PAGES:
            self.view = replace(self.view, focus=None)  # not among the results: stay on top
            return False
        self.pages_sought += 1
        self.load_more()
        return True

    def start_timeline(self, width: int) -> None:
        self.timeline.counted_for = width
        self.load_timeline(self.generation, self.view.filt, width)

    def on_timeline_resized(self, message: TimelineResized) -> None:
        message.stop()
        if self.error is None and message.width != self.timeline.counted_for:
            self.start_timeline(message.width)

    @work(thread=True, exclusive=True, group="timeline")
    def load_timeline(self, generation: int, filt: SearchFilter, width: int) -> None:
        try:
            timeline = self.backend.timeline(filt, max_buckets=width)
        except LakeError as exc:
            self.post_message(TimelineLoaded(generation, None, str(exc)))
            return
        self.post_message(TimelineLoaded(generation, timeline))

    def on_timeline_loaded(self, message: TimelineLoaded) -> None:
        if message.generation != self.generation:
            return
        self.timeline.timeline = message.timeline
        if message.timeline is None:
            self.timeline.status = f"✗ {message.error}"
        else:
            self.total = message.timeline.total
            self.timeline.status = ""
        self.update_status()

    def update_status(self) -> None:
        status = self.query_one("#status", Static)
        error = self.query_error or self.error
        if error is not None:
            status.update(Text(f"✗ {error}", style="bold red"))
            return
        loaded = len(self.results.loaded)
        if self.loading and not loaded:
            status.update(Text(f"searching: {self.view.label}…", style="italic"))
            return
        count = f"{loaded:,}" if self.total is None else f"{loaded:,} of {self.total:,}"
        more = " · n or scroll for more" if self.next_cursor else ""
        marked = f" · {len(self.results.marked)} marked" if self.results.marked else ""
        view = self.results.describe_view()
        shaped = f" · {view}" if view else ""
        status.update(f"{self.view.label} — {count} event(s){more}{marked}{shaped}")

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "filter":
            message.stop()
            self.results.set_filter(message.value)
            self.preview()
            self.update_status()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "filter":
            message.stop()
            self.results.focus()
            return
        if message.input.id != "search":
            return
        message.stop()
        text = message.value.strip()
        try:
            filt = parse_query(text)
        except LakeError as exc:
            self.show_query_error(str(exc))  # the box keeps the text and the focus: fix it
            return
        self.apply(View(filt, text, filt.describe() if text else "newest events"))
        self.results.focus()

    def action_focus_search(self) -> None:
        self.search_box.focus()

    @property
    def filter_box(self) -> Input:
        return self.query_one("#filter", Input)

    def action_filter(self) -> None:
        """Show the filter box and focus it (typing narrows the loaded results at once)."""
        self.filter_box.display = True
        self.filter_box.focus()

    def action_sort(self) -> None:
        """Sort the loaded results by the next column (the last step: newest first again)."""
        self.results.next_sort()
        self.update_status()

    def on_view_changed(self, message: ViewChanged) -> None:
        message.stop()
        self.update_status()

    def action_leave_search(self) -> None:
        if self.filter_box.has_focus:  # Escape in the filter: every loaded result again
            self.filter_box.value = ""
            self.filter_box.display = False
            self.results.set_filter("")
            self.update_status()
            self.results.focus()
            return
        if self.search_box.has_focus:
            self.search_box.value = self.view.text  # Escape drops unapplied edits
            self.query_error = None
            self.update_status()
            self.results.focus()

    def action_load_more(self) -> None:
        if self.next_cursor is None and not self.loading:
            self.notify(f"all {len(self.results.events):,} results are loaded", timeout=3)
        self.load_more()

    def on_more_wanted(self, message: MoreWanted) -> None:
        message.stop()
        self.load_more()

    def load_more(self) -> None:
        """Fetch the next page unless one is on its way or there is none."""
        if self.loading or self.next_cursor is None or self.error is not None:
            return
        self.loading = True
        self.load_page(self.generation, self.view.filt, self.next_cursor)

    def action_previous_search(self) -> None:
        if not self.history:
            self.notify("no earlier search", timeout=3)
            return
        self.apply(self.history.pop(), remember=False)

    # -- the event under the cursor ---------------------------------------------------------

    def preview(self) -> None:
        """Show the event under the cursor (without checking it)."""
        event = self.results.current()
        if event is not self.detail.event:
            self.detail.show(event, NOT_RUN)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.data_table is not self.results:
            return
        self.preview()
        if self.results.near_end():
            self.load_more()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        if message.data_table is not self.results:
            return
        event = self.results.current()
        if event is not None:
            self.open_event(event)

    def open_event(self, event: Event) -> None:
        """Show the event and check its integrity in a worker."""
        self.detail.show(event, Integrity(Check.RUNNING))
        self.check_event(str(event["tenant"]), str(event["event_id"]))

    @work(thread=True, exclusive=True, group="check")
    def check_event(self, tenant: str, event_id: str) -> None:
        try:
            message = self.backend.check(tenant, event_id)
        except AccessDenied as exc:  # no proof permission: nothing was checked
            self.post_message(ProofChecked(tenant, event_id, False, str(exc), checked=False))
        except (LakeError, OSError) as exc:  # the finding: tampered, missing, unsealed…
            self.post_message(ProofChecked(tenant, event_id, False, str(exc)))
        else:
            self.post_message(ProofChecked(tenant, event_id, True, message))

    def on_proof_checked(self, message: ProofChecked) -> None:
        if not self.detail.shows(message.tenant, message.event_id):
            return  # the user moved on; the next open checks again
        if message.ok:
            integrity = Integrity(Check.VERIFIED, message.message)
        elif message.checked:
            integrity = Integrity(Check.FAILED, message.message)
        else:
            integrity = Integrity(Check.UNAVAILABLE, message.message)
        self.detail.show(self.detail.event, integrity)

    def action_mark(self) -> None:
        self.results.toggle_mark()
        self.update_status()

    def action_pivot(self, kind: str) -> None:
        event = self.results.current()
        if event is None:
            self.notify("no event under the cursor", severity="warning", timeout=3)
            return
        which = pivots.Pivot(kind)
        try:
            filt = pivots.pivot(which, event, self.window)
        except pivots.PivotUnavailable as exc:
            self.notify(str(exc), severity="warning", timeout=4)
            return
        label = pivots.describe(which, event, self.window)
        focus = event_key(event) if which is pivots.Pivot.WINDOW else None
        self.apply(View(filt, filt.to_query_string(), label, focus))

    # -- other views ------------------------------------------------------------------------

    def action_alerts(self) -> None:
        self.push_screen(AlertsScreen(self.backend), self.open_alert)

    def open_alert(self, alert: Alert | None) -> None:
        if alert is None:
            return
        filt = alert_filter(alert)
        label = f"alert {alert.rule_id} · {alert.tenant} · {alert.title}"
        self.apply(View(filt, filt.to_query_string(), label))

    def action_toggle_timeline(self) -> None:
        self.timeline.display = not self.timeline.display

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- files ------------------------------------------------------------------------------

    def action_export(self) -> None:
        if self.error is not None:
            self.notify("fix the search first: there are no results to export", severity="warning")
            return
        default = free_path(self.workdir, "auditlake-results", ".csv")
        hint = "Every result of the search, not just the loaded pages; .csv .json .jsonl .parquet"
        self.push_screen(
            PathPrompt("Export results to", default, self.workdir, hint),
            partial(self.start_export, self.view.filt),
        )

    def start_export(self, filt: SearchFilter, path: Path | None) -> None:
        if path is not None:
            self.export_results(filt, path)

    @work(thread=True, group="files")
    def export_results(self, filt: SearchFilter, path: Path) -> None:
        try:
            rows = self.backend.export(filt, path)
        except LakeError as exc:
            self.notify(str(exc), title="export", severity="error")
            return
        self.notify(f"exported {rows:,} event(s) to {path}", title="export")

    def action_evidence(self) -> None:
        events = self.results.marked_events()
        if not events:
            current = self.results.current()
            events = [current] if current is not None else []
        if not events:
            self.notify("no event under the cursor", severity="warning", timeout=3)
            return
        pairs = [(str(e["tenant"]), str(e["event_id"])) for e in events]
        if len(pairs) == 1:
            stem = f"evidence-{pairs[0][0]}-{pairs[0][1][:13]}"
        else:
            stem = f"evidence-{len(pairs)}-events"
        self.post_message(EvidenceWanted(pairs, stem, self.view.label))

    def on_evidence_wanted(self, message: EvidenceWanted) -> None:
        default = free_path(self.workdir, message.stem, ".zip")
        hint = "Events, inclusion proofs, checkpoints and verifier keys, checkable offline"
        self.push_screen(
            PathPrompt(
                f"Evidence pack of {len(message.events)} event(s) to", default, self.workdir, hint
            ),
            partial(self.start_evidence, message.events, message.note),
        )

    def start_evidence(self, events: list[tuple[str, str]], note: str, path: Path | None) -> None:
        if path is not None:
            self.write_evidence(events, note, path)

    @work(thread=True, group="files")
    def write_evidence(self, events: list[tuple[str, str]], note: str, path: Path) -> None:
        try:
            written = self.backend.evidence(events, path, note)
        except LakeError as exc:
            self.notify(str(exc), title="evidence pack", severity="error")
            return
        self.notify(f"wrote {written}: {len(events)} event(s) with proofs", title="evidence pack")

    # -- housekeeping -----------------------------------------------------------------------

    @work(thread=True, group="audit")
    def flush_audit(self) -> None:
        """Commit the buffered read-audit records (on a timer; the session's close does the
        last flush)."""
        try:
            self.backend.flush()
        except LakeError as exc:
            self.notify(f"read audit not written: {exc}", title="read audit", severity="error")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is not self.screen_stack[0]:
            return
        commands = (
            ("Search", "Focus the search box (/)", self.action_focus_search),
            ("Load more results", "Fetch the next page (n)", self.action_load_more),
            ("Pivot: same actor", "Events of this actor in its tenant (a)",
             partial(self.action_pivot, "actor")),
            ("Pivot: same IP", "Events from this address, all your tenants (i)",
             partial(self.action_pivot, "ip")),
            ("Pivot: same target", "Events on this target in its tenant (t)",
             partial(self.action_pivot, "target")),
            ("Pivot: time window", "Events around this one in its tenant (w)",
             partial(self.action_pivot, "window")),
            ("Back", "The previous search (b)", self.action_previous_search),
            ("Alerts", "Detections; open one to list its events (A)", self.action_alerts),
            ("Export results", "Every result to CSV/JSON/JSONL/Parquet (e)", self.action_export),
            ("Evidence pack", "Marked events or the one under the cursor (E)",
             self.action_evidence),
            ("Mark event", "Mark/unmark for an evidence pack (space)", self.action_mark),
            ("Filter results", "Narrow the loaded results by text (f)", self.action_filter),
            ("Sort results", "By the next column; a header click sorts by it (s)",
             self.action_sort),
            ("Toggle timeline", "Show or hide the timeline (l)", self.action_toggle_timeline),
            ("Help", "Keys and query syntax (?)", self.action_help),
        )  # fmt: skip
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
