"""`auditlake detect run`: incremental, cron-safe runs of the rules over the lake.

What "incremental" means here:

- **New events** are the rows of data files added to the events table since the Delta
  version a rule last processed, read from the commit log (`dataChange` adds only, so an
  `optimize` rewrite is not mistaken for new data). This is the watermark: exact, immune
  to clock skew, and it catches late events because it follows arrival in the lake, not
  event time. The newest `received_at` seen is kept beside it for people (lag).
- **Lookback overlap**: for each tenant with new events, a rule recomputes every dedup
  bucket those events can touch, reading from (bucket start − window − lookback), so a
  window that straddles two runs is seen whole.
- **No duplicates**: alert ids are deterministic (detect/engine.py), alerts are upserted
  by id and rows that did not change are not rewritten, so reruns, overlaps and a crash
  between the alert commit and the watermark write add nothing.
- **One run at a time**: an exclusive lock file in the lake; a second run exits at once.
  On an object store (no file locks) the alerts commit is the fence instead: a run commits
  its alerts only against the alerts snapshot it started from (Delta's put-if-absent of
  the next log entry, no retries), so of two overlapping runs the later one to commit
  fails with RunBusy and writes nothing (sinks may have seen its alerts: at least once).
- **Object stores**: DuckDB reads local copies of the files a run needs (lake/storage/_cache.py).
- **Sinks first, each on its own, at least once**: new and changed alerts go to every
  sink before the alerts table and the watermark move; a sink that fails keeps them in
  its spool for the next run and is reported, and the others are served regardless
  (detect/delivery.py). A crash before the alerts commit sends them again next run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from detect.delivery import SinkReport, deliver
from detect.engine import (
    Bounds,
    alerts,
    buckets_touched,
    clamp_us,
    connection,
    duration_us,
    epoch_us,
    scan_range,
    timestamps,
)
from detect.model import Rule, RuleKind
from detect.sinks import Sink
from detect.state import LOCK_PATH, STATE_PATH, DetectState, RuleState, RunBusy, run_lock
from lake.contract import ALERTS_SCHEMA, EVENTS_SCHEMA, READ_AUDIT_TENANT, Alert
from lake.query import HIVE, release, sql_literal
from lake.secrets import (
    decrypted_select,
    encrypted,
    keyring_for,
    open_alerts,
    register_decrypt,
    seal_alerts,
)
from lake.storage import DataFile, Lake, TableFiles
from lake.storage import paths as lake_paths

__all__ = [
    "LOCK_PATH",
    "STATE_PATH",
    "RunBusy",
    "RunMode",
    "RunResult",
    "Runner",
    "run",
    "run_lock",
]


class Stage(StrEnum):
    """What a progress report counts."""

    RULES = "rules"  # rules evaluated (in this process)
    TENANTS = "tenants"  # tenants' tasks finished (an engine spreading work by tenant)


Progress = Callable[[Stage, int, int], None]


def _no_progress(stage: Stage, done: int, total: int) -> None:
    return None


class RunMode(StrEnum):
    """How a run treated a rule."""

    INCREMENTAL = "incremental"  # the events added since its watermark
    BACKFILL = "backfill"  # every event in the [since, until) the caller gave
    FULL = "full"  # every event: a new or changed rule, or its watermark's log is gone
    IDLE = "idle"  # nothing new since its watermark


@dataclass
class RuleRun:
    rule_id: str
    mode: RunMode
    tenants: int = 0
    alerts: int = 0
    new: int = 0
    changed: int = 0


@dataclass
class RunResult:
    version: int
    rules: list[RuleRun] = field(default_factory=list)
    new: list[Alert] = field(default_factory=list)
    changed: list[Alert] = field(default_factory=list)
    received_at: datetime | None = None
    sinks: list[SinkReport] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """Every sink took every alert it was offered."""
        return all(s.ok for s in self.sinks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "rules": [asdict(r) for r in self.rules],
            "new_alerts": len(self.new),
            "changed_alerts": len(self.changed),
            "sinks": [s.as_dict() for s in self.sinks],
        }


def _added_since(lake: Lake, table: DeltaTable, since: int) -> list[str] | None:
    """Paths of files added with new data after version `since`; None if the log is gone."""
    paths: list[str] = []
    for v in range(since + 1, table.version() + 1):
        try:
            raw = lake.read_bytes(lake_paths.delta_commit(lake_paths.EVENTS, v))
        except FileNotFoundError:
            return None
        for line in raw.splitlines():
            if not line.strip():
                continue
            action = orjson.loads(line)
            add = action.get("add")
            if add and add.get("dataChange", True):
                paths.append(add["path"])
    live = {f.path for f in lake.data_files(table)}
    # A file added and later rewritten (optimize) is no longer live; its rows are in
    # the rewritten file, which was not a data change: read the rows where they now are.
    missing = [p for p in paths if p not in live]
    if missing:
        return None
    return paths


@dataclass(frozen=True)
class _Span:
    """A tenant's new events span event times [first, last], in epoch microseconds.

    Integers, not datetimes: a stored time outside Python's years 1-9999, or a range
    widened by a window past them, must not stop detection for every tenant.
    """

    tenant: str
    first: int
    last: int


_DAY_US: Final = 86_400_000_000
_UNIX_DAY0: Final = date(1970, 1, 1)


def _as_datetime(us: int) -> datetime:
    """Epoch microseconds as a UTC datetime, held inside the years Python can represent."""
    lo, hi = epoch_us(datetime.min), epoch_us(datetime.max)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=min(max(us, lo), hi))


def _spans(con: duckdb.DuckDBPyConnection, files: list[str]) -> tuple[list[_Span], datetime | None]:
    if not files:
        return [], None
    rows = con.execute(
        "SELECT tenant, epoch_us(min(time)), epoch_us(max(time)), epoch_us(max(received_at)) "
        f"FROM read_parquet(?, {HIVE}) GROUP BY tenant ORDER BY tenant",
        [files],
    ).fetchall()
    spans = [_Span(t, lo, hi) for t, lo, hi, _ in rows if t != READ_AUDIT_TENANT and lo is not None]
    newest = max((r[3] for r in rows if r[3] is not None), default=None)
    return spans, None if newest is None else _as_datetime(newest)


class Runner:
    """One detection run over a lake snapshot, on one locked-down DuckDB connection.

    The connection (lake.query's `locked_connection`) may read the snapshot's data files
    and nothing else: a rule's SQL cannot reach other files, write, attach or load.
    Close it with `close()`.
    """

    def __init__(
        self,
        lake: Lake,
        rules: Sequence[Rule],
        *,
        now: datetime | None = None,
        files: Sequence[DataFile] | None = None,
    ) -> None:
        """`files`: the snapshot's data files as another process listed them (an engine's
        worker evaluates over the driver's snapshot instead of listing a newer one)."""
        self.lake = lake
        self.rules = [r for r in rules if r.enabled]
        self.now = now or datetime.now(UTC)
        self.table = lake.events_table()
        self.version = self.table.version()
        self.files = lake.data_files(self.table) if files is None else list(files)
        self.copies = TableFiles(lake)  # object stores: local copies for DuckDB
        self.sizes = {f.path: f.size for f in self.files}
        self.con = connection([self.data_path(f.path) for f in self.files], self._setup)

    def _setup(self, con: duckdb.DuckDBPyConnection) -> None:
        """Before the connection is locked: the empty events table and the decryption."""
        con.register("_empty_arrow", EVENTS_SCHEMA.empty_table())
        con.execute("CREATE TABLE _empty_events AS SELECT * FROM _empty_arrow")
        con.unregister("_empty_arrow")
        if encrypted(self.lake):  # the operator's job: every tenant's data key
            register_decrypt(con, keyring_for(self.lake), {f.tenant for f in self.files})

    def close(self) -> None:
        release(self.con)

    def data_path(self, path: str) -> str:
        """Where DuckDB reads an events data file (object stores: its local copy)."""
        return self.copies.path(
            lake_paths.table_file(lake_paths.EVENTS, path), self.sizes.get(path)
        )

    def _view(self, ranges: Sequence[tuple[str, int, int]], by: str = "time") -> None:
        """Point the `events` view at these (tenant, start, end) ranges (epoch µs)."""
        wanted: dict[str, list[tuple[int, int]]] = {}
        for tenant, lo, hi in ranges:
            wanted.setdefault(tenant, []).append((lo // _DAY_US, hi // _DAY_US))
        files = []
        for f in self.files:
            spans = wanted.get(f.tenant)
            if not spans:
                continue
            day = (f.event_date - _UNIX_DAY0).days
            if by == "time" and not any(lo <= day <= hi for lo, hi in spans):
                continue
            files.append(self.data_path(f.path))
        scan = pa.table(
            {
                "tenant": [r[0] for r in ranges],
                "lo": timestamps([r[1] for r in ranges]),
                "hi": timestamps([r[2] for r in ranges]),
            }
        )
        self.con.register("_scan", scan)
        self.copies.fetch(files)
        if not files:
            self.con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM _empty_events")
            return
        listing = ", ".join(map(sql_literal, files))
        source = f"read_parquet([{listing}], {HIVE})"
        cols = decrypted_select(EVENTS_SCHEMA.names, "e") if encrypted(self.lake) else "e.*"
        self.con.execute(
            f"CREATE OR REPLACE VIEW events AS SELECT {cols} FROM {source} e "
            f"JOIN _scan s ON e.tenant = s.tenant AND e.{by} >= s.lo AND e.{by} < s.hi"
        )

    def evaluate(self, rule: Rule, spans: Sequence[_Span] | None) -> tuple[list[Alert], int]:
        """Alerts of `rule` for the buckets the spans touch (None: silence over every tenant)."""
        if rule.kind == RuleKind.SILENCE:
            tenants = sorted({f.tenant for f in self.files} - {READ_AUDIT_TENANT})
            now = epoch_us(self.now)
            start = clamp_us(now - duration_us(rule.lookback) - duration_us(rule.window))
            self._view([(t, start, now) for t in tenants], by="received_at")
            return alerts(self.con, rule, now=self.now), len(tenants)
        assert spans is not None
        bounds, ranges = [], []
        for s in spans:
            lo, hi = buckets_touched(rule, s.first, s.last)
            bounds.append(Bounds(s.tenant, lo, hi))
            start, end = scan_range(rule, lo, hi)
            ranges.append((s.tenant, start, end))
        if not bounds:
            return [], 0
        self._view(ranges)
        return alerts(self.con, rule, bounds=bounds, now=self.now), len(bounds)


Work = Sequence[tuple[Rule, Sequence[_Span] | None]]
# (runner, [(rule, spans)], progress) -> [(alerts, tenants evaluated)], one per work item
Evaluate = Callable[[Runner, Work, Progress], list[tuple[list[Alert], int]]]


def evaluate_here(
    runner: Runner, work: Work, progress: Progress = _no_progress
) -> list[tuple[list[Alert], int]]:
    """Evaluate each (rule, spans) in this process, one rule after another."""
    out = []
    for i, (rule, spans) in enumerate(work):
        progress(Stage.RULES, i, len(work))
        out.append(runner.evaluate(rule, spans))
    return out


_COMPARED: Final = ("event_count", "first_seen", "last_seen", "event_ids", "title", "severity")


def _diff(found: Sequence[Alert], existing: dict[str, Alert]) -> tuple[list[Alert], list[Alert]]:
    """The alerts not in the table yet, and those whose evidence, title or severity moved."""
    new, changed = [], []
    for alert in found:
        old = existing.get(alert.alert_id)
        if old is None:
            new.append(alert)
        elif any(getattr(old, k) != getattr(alert, k) for k in _COMPARED):
            changed.append(alert)
    return new, changed


_LOST_RACE: Final = (
    "another `auditlake detect run` wrote alerts while this one ran; this one wrote "
    "nothing (the next run finds its alerts again)"
)


def write_alerts(lake: Lake, found: Sequence[Alert], table: DeltaTable | None) -> None:
    """Upsert alerts by (tenant, alert_id) into the `alerts` Delta table.

    `table` is the alerts snapshot the run started from (None: there was no table). The
    merge commits against it without retries, so if another run committed meanwhile this
    one raises RunBusy instead of writing alerts computed from stale state.
    """
    if not found:
        return
    data = pa.Table.from_pylist([a.to_row() for a in found], schema=ALERTS_SCHEMA)
    if table is None:
        try:
            table = lake.create_alerts_table()
        except DeltaError:
            if lake.alerts_table() is not None:  # another run created it first
                raise RunBusy(_LOST_RACE) from None
            raise
    try:
        (
            table.merge(
                data,
                predicate="t.tenant = s.tenant AND t.alert_id = s.alert_id",
                source_alias="s",
                target_alias="t",
                commit_properties=CommitProperties(max_commit_retries=0),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
    except CommitFailedError:
        raise RunBusy(_LOST_RACE) from None


@dataclass(frozen=True)
class _Plan:
    """What a run does with one rule: how, and over which tenants' new events."""

    rule: Rule
    mode: RunMode
    spans: list[_Span] | None = None


class _NewEvents:
    """The spans of the events added since a Delta version, each version read once."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.all_files = [runner.data_path(f.path) for f in runner.files]
        self.cache: dict[int, tuple[list[_Span], datetime | None]] = {}

    def since(self, version: int) -> tuple[list[_Span], datetime | None]:
        """(spans by tenant, newest received_at) of events after `version` (-1: all)."""
        if version not in self.cache:
            runner = self.runner
            added = _added_since(runner.lake, runner.table, version) if version >= 0 else None
            files = self.all_files if added is None else [runner.data_path(p) for p in added]
            runner.copies.fetch(files)
            self.cache[version] = _spans(runner.con, files)
        return self.cache[version]


def _plan(
    runner: Runner,
    state: DetectState,
    tenants: Sequence[str] | None,
    result: RunResult,
) -> list[_Plan]:
    """Each rule from its watermark: idle, incremental, or full (no usable watermark)."""
    new_events = _NewEvents(runner)
    plans = []
    for rule in runner.rules:
        start = state.rules.get(rule.id, RuleState()).start(rule.fingerprint())
        if start >= runner.version and rule.kind != RuleKind.SILENCE:
            plans.append(_Plan(rule, RunMode.IDLE))
            continue
        spans, newest = new_events.since(start)
        if newest and (result.received_at is None or newest > result.received_at):
            result.received_at = newest
        spans = [s for s in spans if not tenants or s.tenant in tenants]
        plans.append(_Plan(rule, RunMode.INCREMENTAL if start >= 0 else RunMode.FULL, spans))
    return plans


def _plan_backfill(
    runner: Runner, since: datetime | None, until: datetime | None, tenants: Sequence[str] | None
) -> list[_Plan]:
    """Every rule over [since, until) of every (chosen) tenant, watermarks untouched."""
    lo = 0 if since is None else epoch_us(since)
    hi = epoch_us(until or runner.now)
    known = sorted({f.tenant for f in runner.files} - {READ_AUDIT_TENANT})
    spans = [_Span(t, lo, hi) for t in known if not tenants or t in tenants]
    return [_Plan(rule, RunMode.BACKFILL, spans) for rule in runner.rules]


def _existing(lake: Lake, snapshot: DeltaTable | None) -> dict[str, Alert]:
    """The alerts the run started from, by id, in the clear (a sealed value differs at
    every write, so they are compared opened)."""
    stored = [Alert.from_row(r) for r in lake.read_alerts(table=snapshot).to_pylist()]
    if encrypted(lake):
        stored = open_alerts(keyring_for(lake), stored)
    return {a.alert_id: a for a in stored}


def _evaluate(
    runner: Runner,
    plans: Sequence[_Plan],
    evaluate: Evaluate,
    progress: Progress,
    existing: dict[str, Alert],
    result: RunResult,
) -> None:
    """Every rule's evaluation at once (so that an engine can spread them by tenant),
    then each rule's alerts sorted into new and changed."""
    work = [(p.rule, p.spans) for p in plans if p.mode != RunMode.IDLE]
    evaluated = iter(evaluate(runner, work, progress))
    for plan in plans:
        if plan.mode == RunMode.IDLE:
            result.rules.append(RuleRun(plan.rule.id, RunMode.IDLE))
            continue
        found, n_tenants = next(evaluated)
        new, changed = _diff(found, existing)
        result.new += new
        result.changed += changed
        result.rules.append(
            RuleRun(plan.rule.id, plan.mode, n_tenants, len(found), len(new), len(changed))
        )
    progress(Stage.RULES, len(runner.rules), len(runner.rules))


def run(
    lake: Lake,
    rules: Sequence[Rule],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tenants: Sequence[str] | None = None,
    now: datetime | None = None,
    sinks: Sequence[Sink] = (),
    progress: Progress = _no_progress,
    evaluate: Evaluate | None = None,
) -> RunResult:
    """Run the rules: incrementally from each rule's watermark, or over [since, until).

    `evaluate` computes the rules' alerts somewhere else (detect/distributed.py: on Ray);
    everything around it (watermarks, diff, sinks, alerts commit) stays here.
    """
    backfill = since is not None or until is not None
    with run_lock(lake):
        alerts_snapshot = lake.alerts_table()  # the fence for this run's alerts commit
        runner = Runner(lake, rules, now=now)
        try:
            state = DetectState.load(lake)
            result = RunResult(runner.version)
            plans = (
                _plan_backfill(runner, since, until, tenants)
                if backfill
                else _plan(runner, state, tenants, result)
            )
            existing = _existing(lake, alerts_snapshot)
            _evaluate(runner, plans, evaluate or evaluate_here, progress, existing, result)
        finally:
            runner.close()
        out = result.new + result.changed
        result.sinks = deliver(lake, sinks, out)
        sealed = seal_alerts(keyring_for(lake), out) if encrypted(lake) else out
        write_alerts(lake, sealed, alerts_snapshot)
        if not backfill:
            for rule in runner.rules:
                state.rules[rule.id] = RuleState(
                    rule.fingerprint(), runner.version, result.received_at, runner.now
                )
            state.save(lake)
        return result
