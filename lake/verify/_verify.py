"""Full integrity check of a lake: every event, every checkpoint, every signature.

`verify_lake` only orchestrates; each job is a module of its own:

- `_read`: the tables and files of a lake that may be damaged (what cannot be read is
  itself a finding: verify reports a damaged lake, it never dies of one);
- `_chain`: each checkpoint's signed note against *trusted* keys only (config home or
  `--trusted-key`; a key published only inside the lake is `untrusted_key`), key
  windows, the rotation chain and the order of signed times;
- `_tenant`, `_tree`, `_ranges`: each tenant's rows recomputed into leaves and checked
  against the signed roots, range task by range task over aligned ranges of `seq`;
- `_engines`, `_ray`: where the range tasks run (this process, a local process pool,
  a Ray cluster), with the same report;
- `_exported`: checkpoints exported earlier (`--since-checkpoint`), to catch rollback of
  the newest batches, which leaves the lake self-consistent;
- `_witnesses`: witness cosignatures; `_history`: the record `status` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lake.contract import CHECKPOINTS_SCHEMA, UsageError
from lake.log import VerifierKey
from lake.secrets import KeyWindow
from lake.storage import DataFile, Lake, paths
from lake.verify._chain import check_signatures, published_keys
from lake.verify._engines import Progress, Steps, TaskRunner, pool_context, run_steps
from lake.verify._exported import read_exported
from lake.verify._ranges import RANGE_EVENTS
from lake.verify._read import READ_ERRORS, data_files, open_table, read_checkpoints
from lake.verify._report import Finding, FindingKind, Report, TenantReport
from lake.verify._tenant import tenant_steps
from lake.verify._witnesses import check_witnesses
from lake.write import removed_ranges, repeated_ids

if TYPE_CHECKING:
    from lake.witness import CosignerKey


@dataclass
class _Lake:
    """What the whole lake shows before any tenant is checked."""

    files: list[DataFile]  # the events table's data files
    checkpoints: pa.Table  # every checkpoint row that could be read
    checkpoint_findings: list[Finding]  # checkpoints files that could not be read
    tenants: list[str]  # every tenant with events or checkpoints

    def checkpoints_of(self, tenant: str) -> pa.Table:
        return self.checkpoints.filter(pc.equal(self.checkpoints.column("tenant"), tenant))


def _read_lake(lake: Lake, damaged: list[Finding]) -> _Lake:
    """The data files and checkpoints that can be read; what cannot goes to `damaged`."""
    events_table = open_table(lake, paths.EVENTS, damaged)
    files = data_files(lake, events_table, damaged) if events_table is not None else []
    checkpoints_table = open_table(lake, paths.CHECKPOINTS, damaged)
    cps, cp_findings = (
        read_checkpoints(lake, checkpoints_table)
        if checkpoints_table is not None
        else (CHECKPOINTS_SCHEMA.empty_table(), [])
    )
    damaged += [f for f in cp_findings if not f.tenant]
    known = sorted(
        {f.tenant for f in files}
        | set(cps.column("tenant").to_pylist())
        | {f.tenant for f in cp_findings if f.tenant}
    )
    return _Lake(files, cps, cp_findings, known)


def verify_lake(
    lake: Lake,
    trusted: Sequence[VerifierKey],
    *,
    tenants: Sequence[str] | None = None,
    since: Sequence[str] = (),
    progress: Progress | None = None,
    workers: int = 1,
    witness_keys: Sequence[CosignerKey] = (),
    min_witnesses: int = 0,
    windows: Mapping[str, KeyWindow] | None = None,
    range_events: int = RANGE_EVENTS,
    runner: TaskRunner | None = None,
) -> Report:
    """Verify the lake (or some tenants) against trusted keys and exported checkpoints.

    With `workers` > 1, lakes of PARALLEL_MIN_EVENTS or more are verified in that many
    processes, range task by range task (`lake.storage.process_context`: a calling script
    needs the usual `if __name__ == "__main__":` guard; the CLI passes one worker per
    core). `runner` runs the range tasks elsewhere instead (e.g. on Ray, see
    `verify_lake_ray`); `range_events` sizes them. The report does not depend on either.
    """
    report = Report(lake.root)
    damaged = report.lake_findings
    seen = _read_lake(lake, damaged)
    exported, since_findings = read_exported(lake, since, trusted)
    wanted = list(tenants) if tenants is not None else sorted(set(seen.tenants) | set(exported))
    unknown = [t for t in wanted if t not in seen.tenants and t not in exported]
    if tenants is not None and unknown and not damaged:
        # A misspelt tenant must not make a cron job pass: say so instead of "ok".
        raise UsageError(f"no events or checkpoints for tenant(s): {', '.join(unknown)}")
    files_of: dict[str, list[DataFile]] = {t: [] for t in wanted}
    for data_file in seen.files:
        if data_file.tenant in files_of:
            files_of[data_file.tenant].append(data_file)
    events_of = {t: sum(d.num_records or 0 for d in fs) for t, fs in files_of.items()}
    # Start the workers' process now: it imports while the log and signatures are read.
    context = pool_context(runner, workers, sum(events_of.values()))
    published = published_keys(lake)
    try:
        removed = removed_ranges(lake)
    except READ_ERRORS:
        removed = {}  # the unreadable file is reported with its tenant's findings
    reports = {t: TenantReport(t) for t in wanted}
    for f in seen.checkpoint_findings:
        if f.tenant in reports:
            reports[f.tenant].add(f)
    steps: dict[str, Steps] = {}
    if damaged:
        _signatures_only(lake, seen, trusted, published, reports, events_of, windows)
    else:
        # largest first, so that the big tenants do not finish last on a busy pool
        for t in sorted(wanted, key=lambda t: -events_of[t]):
            steps[t] = tenant_steps(
                lake, t, files_of[t], seen.checkpoints_of(t), trusted, published,
                exported.get(t, []), reports[t], removed.get(t, []), windows, range_events,
            )  # fmt: skip
    run_steps(steps, runner, context, workers, events_of, progress)
    for tenant in wanted:
        _add_repeated_ids(lake, reports[tenant], files_of[tenant])
        for f in since_findings:
            if f.tenant == tenant:
                reports[tenant].add(f)
        report.tenants.append(reports[tenant])
    if witness_keys or min_witnesses:
        for tr in report.tenants:
            cps = seen.checkpoints_of(tr.tenant)
            check_witnesses(lake, tr, cps, witness_keys, min_witnesses)
    for f in since_findings:
        if f.tenant not in set(wanted) and tenants is None:
            tr = TenantReport(f.tenant)
            tr.add(f)
            report.tenants.append(tr)
    return report


def _signatures_only(
    lake: Lake,
    seen: _Lake,
    trusted: Sequence[VerifierKey],
    published: Sequence[VerifierKey],
    reports: Mapping[str, TenantReport],
    events_of: Mapping[str, int],
    windows: Mapping[str, KeyWindow] | None,
) -> None:
    """A table is unreadable: report each tenant's signatures, not its rows.

    Without both tables the rows cannot be checked against the signatures (every event
    would look missing or unsealed): report what is unreadable, and the signatures that
    can still be read.
    """
    for t, tr in reports.items():
        tr.events = events_of[t]
        cps = check_signatures(lake, t, seen.checkpoints_of(t), trusted, published, tr, windows)
        tr.checkpoints = len(cps)
        tr.sealed_size = max((c.size for c in cps), default=0)
        tr.key_names = sorted({c.key_name for c in cps})


def _add_repeated_ids(lake: Lake, tr: TenantReport, files: Sequence[DataFile]) -> None:
    """An id is used once per tenant, whatever the date: two stored events under one id
    (each authentic) make `prove ID` ambiguous."""
    for event_id, seqs in repeated_ids(lake, files):
        message = f"id used by {len(seqs)} stored events (seq {', '.join(map(str, seqs))})"
        last = seqs[-1] if seqs else None
        tr.add(Finding(tr.tenant, FindingKind.DUPLICATE, message, seq=last, event_id=event_id))
