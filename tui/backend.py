"""The TUI's one door to the lake: every read the app makes, callable from worker threads.

The app runs each read in a Textual thread worker so the screen never waits on DuckDB or
Delta. Several workers may run at once (a page, a proof check, the timeline, the periodic
read-audit flush), and `QuerySession` keeps state (its Delta snapshot and its locked
DuckDB connection, rebuilt when the principal's files change), so every call into it is
serialised by one lock. Only an export's stream of rows runs outside it, so the app stays
usable while a large export is written. Everything goes through the principal's
`LakeSession`: scoped to its tenants and recorded in the read audit, interface "tui".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lake.api import (
    FORMATS,
    Alert,
    LakeSession,
    Permission,
    SearchFilter,
    UsageError,
    write_batches,
)
from tui.timeline import BUCKET_SQL, SPAN_SQL, STEPS, Timeline, choose_step, fill

PAGE_ROWS: Final = 200
# File suffix → export format of `lake.query`.
EXPORT_SUFFIXES: Final = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

Event = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a search: its events (stored rows as dicts), newest first, and the
    cursor of the next page (None when this was the last)."""

    events: list[Event]
    next_cursor: str | None


def alert_filter(alert: Alert) -> SearchFilter:
    """The search that lists an alert's evidence events."""
    return SearchFilter(tenants=(alert.tenant,), event_ids=alert.event_ids or ())


def alert_evidence(alert: Alert) -> list[tuple[str, str]]:
    """(tenant, event_id) of each evidence event, as `LakeSession.evidence` takes them."""
    return [(alert.tenant, e) for e in alert.event_ids or ()]


def export_format(path: Path) -> str:
    """The export format a file name asks for, by its suffix (UsageError if none)."""
    fmt = EXPORT_SUFFIXES.get(path.suffix.lower())
    if fmt is None or fmt not in FORMATS:
        known = ", ".join(EXPORT_SUFFIXES)
        raise UsageError(f"cannot tell the export format of {path.name!r}: end it in {known}")
    return fmt


def free_path(directory: Path, stem: str, suffix: str) -> Path:
    """`directory/stem+suffix`, or `stem-2`, `stem-3`… when that file exists already."""
    candidate = directory / f"{stem}{suffix}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = directory / f"{stem}-{n}{suffix}"
    return candidate


class Backend:
    """What the app may ask of the lake, as the session's principal.

    Args:
        session: the principal's open session (the caller closes it).
        page_rows: events per page of the results table.
    """

    def __init__(self, session: LakeSession, *, page_rows: int = PAGE_ROWS) -> None:
        self.session = session
        self.page_rows = page_rows
        self._lock = threading.Lock()

    @property
    def principal(self) -> str:
        return self.session.principal.name

    @property
    def lake_name(self) -> str:
        return self.session.lake.name

    def tenants(self) -> list[str]:
        """The tenants whose events the principal may read."""
        with self._lock:
            return self.session.tenants()

    def page(self, filt: SearchFilter, cursor: str | None = None) -> Page:
        """One page of events matching `filt` (after `cursor`), newest first."""
        with self._lock:
            result = self.session.search(filt, limit=self.page_rows, cursor=cursor)
            table = result.to_arrow()  # a page is small; its next cursor is known once read
        return Page(table.to_pylist(), result.next_cursor)

    def check(self, tenant: str, event_id: str) -> str:
        """Prove the event against the tenant's latest signed checkpoint and check the
        proof with the trusted keys; raises ProofError naming what does not hold."""
        return self.session.check(event_id, tenant=tenant)

    def timeline(self, filt: SearchFilter, max_buckets: int) -> Timeline:
        """Events and failures per bucket over the whole span of `filt`'s matches."""
        where, params = filt.to_sql()
        query = self.session.query
        with self._lock:  # two aggregates: quick, so under the lock like a page
            tenants = query.scope(list(filt.tenants), Permission.READ_EVENTS)
            query.record("timeline", filt.to_query_string(), tenants, "success", None)
            with contextlib.closing(query.connection().cursor()) as cursor:
                span = cursor.execute(SPAN_SQL.format(where=where), params).fetchone()
                if span is None or span[0] is None:
                    return Timeline(STEPS[0], None, (), ())
                step = choose_step(span[0], span[1], max_buckets)
                rows = cursor.execute(BUCKET_SQL.format(where=where), [step, *params]).fetchall()
        return fill(rows, step)

    def alerts(self) -> list[Alert]:
        """Alerts of the tenants the principal may read alerts of, newest first."""
        with self._lock:
            return self.session.alert_list()

    def export(self, filt: SearchFilter, path: Path) -> int:
        """Write every event matching `filt` (not just the loaded pages) to `path`, in the
        format its suffix names; returns the number of events.

        Streams batch by batch into `path.part`, renamed when complete, so a failed export
        leaves no file that looks whole. An existing `path` is never overwritten. The rows
        stream outside the lock (a DuckDB cursor of its own), so the app stays usable.
        """
        fmt = export_format(path)
        if path.exists():
            raise UsageError(f"{path} exists already: choose another file")
        with self._lock:
            result = self.session.search(filt, limit=None)
        part = path.with_name(path.name + ".part")
        try:
            with part.open("wb") as out:
                rows = write_batches(iter(result), fmt, out, schema=result.schema)
            part.replace(path)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            part.unlink(missing_ok=True)
        return rows

    def evidence(self, events: Sequence[tuple[str, str]], path: Path, note: str = "") -> Path:
        """Write an evidence pack (events, inclusion proofs, checkpoints, verifier keys) of
        (tenant, event_id) pairs to `path`; never overwrites a file."""
        if not events:
            raise UsageError("no events for an evidence pack")
        if path.exists():
            raise UsageError(f"{path} exists already: choose another file")
        try:
            return self.session.evidence(list(events), path, note=note)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None

    def flush(self) -> int:
        """Commit the buffered read-audit records; returns how many were written.

        Not under the lock: the audit has its own, and its commit touches no query state.
        """
        return self.session.audit.flush()
