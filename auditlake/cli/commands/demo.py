"""`auditlake demo`: a lake with realistic traffic and planted attacks, verified.

Wiring only: the traffic comes from `ingest.demo`, the rest is the ordinary lake API.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.group import DEFAULT_LAKE
from auditlake.cli.output import ExitCode, emit_table, fail, note, progress
from lake.contract import LakeNotFoundError, validate
from lake.secrets import TrustStore, ensure_outside
from lake.storage import Lake
from lake.verify import Report, verify_lake
from lake.write import append

if TYPE_CHECKING:
    from ingest.demo import DemoData
    from lake.log import NoteSigner

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def run_detection(lake: Lake, update_label: str) -> list[Any]:
    """Run the built-in pack once over the new lake; the alerts it wrote, worst first."""
    from detect.model import load_rules
    from detect.runner import run

    with progress(update_label) as update:
        result = run(lake, load_rules(), progress=update)
    order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(result.new, key=lambda a: (order.get(a.severity, 9), a.rule_id))


def _fresh_path(lake_path: str, home: Path, force: bool) -> Path:
    """The demo lake's directory, empty: an old demo lake is removed with --force, and
    anything else there is refused."""
    path = Path(lake_path).expanduser().resolve()
    ensure_outside(home, path)
    try:
        existing = Lake.open(path)
    except LakeNotFoundError:
        existing = None
    if existing is not None:
        if not existing.meta.get("demo"):
            fail(f"{path} holds a lake that is not a demo lake; choose another --lake")
        if not force:
            fail(f"{path} already holds a demo lake; pass --force to rebuild it")
        shutil.rmtree(path)
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        fail(f"{path} exists and is not an empty directory; choose another --lake")
    try:  # before any key is made: an unusable path must not leave an orphan key behind
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the lake at {path}: {exc.strerror or exc}")
    return path


def _ingest_by_day(lake: Lake, signer: NoteSigner, data: DemoData, seed: int) -> None:
    """One signed batch per day of traffic."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in data.events:
        by_day[event["time"][:10]].append(event)
    with progress("demo") as update:
        done = 0
        for day in sorted(by_day):
            batch = validate(by_day[day], namespace=f"demo-{seed}-{day}".encode())
            if batch.rejected:  # the generator must only produce valid events
                fail(f"demo generator produced invalid events: {batch.issues[0]}")
            append(lake, batch.table, signer)
            done += batch.table.num_rows
            update("ingest", done, len(data.events))


def _show(lake: Lake, report: Report, data: DemoData) -> None:
    emit_table(
        f"demo lake at {lake.root}",
        ["tenant", "events", "sealed", "checkpoints", "verify"],
        [
            [t.tenant, t.events, t.sealed_size, t.checkpoints, "ok" if t.ok else "FAILED"]
            for t in report.tenants
        ],
    )
    emit_table(
        "planted incidents",
        ["kind", "tenant", "actor", "ip", "events", "when (UTC)"],
        [
            [i.kind, i.tenant, i.actor_id, i.ip, len(i.event_ids),
             i.start.strftime("%Y-%m-%d %H:%M")]
            for i in data.incidents
        ],
    )  # fmt: skip


def _try_next(lake_path: str, data: DemoData) -> None:
    sample = data.incidents[0] if data.incidents else None
    lake_opt = "" if lake_path == DEFAULT_LAKE else f" --lake {lake_path}"
    print("\nTry next:")
    print(f"  auditlake{lake_opt} verify")
    print(f"  auditlake{lake_opt} alerts list")
    print(f"  auditlake{lake_opt} search 'outcome:failure ip:203.0.113.*'")
    if sample:
        proof_cmd = f"prove {sample.event_ids[0]} --tenant {sample.tenant}"
        print(f"  auditlake{lake_opt} {proof_cmd} > proof.json")
        print(f"  auditlake{lake_opt} verify-proof proof.json")
        print(f"  auditlake{lake_opt} checkpoint export --tenant {sample.tenant} > cp.txt")
        print(f"  auditlake{lake_opt} verify --since-checkpoint cp.txt")


def run_demo(ctx: Ctx, *, days: int, events_per_day: int, seed: int, force: bool) -> Lake:
    """Generate, ingest day by day (one signed batch a day), verify, detect, summarise."""
    from ingest.demo import generate

    path = _fresh_path(ctx.lake_path, ctx.home, force)
    signer, created = ctx.ensure_signer("demo-signing-key")
    if created:
        note(f"created signing key {signer.name!r} in {ctx.keys().dir}")
        signer = ctx.keys().active()
    trusted = TrustStore(ctx.home)
    trusted.add(signer.verifier_key)
    lake = Lake.init(path, "demo", signer.verifier_key.encode(), extra={"demo": True})
    data = generate(days=days, events_per_tenant_per_day=events_per_day, seed=seed)
    _ingest_by_day(lake, signer, data, seed)
    report = verify_lake(lake, trusted.keys())
    _show(lake, report, data)
    if not report.ok:
        fail("the demo lake did not verify", ExitCode.FINDING)
    found = run_detection(lake, update_label="detect")
    emit_table(
        "alerts (auditlake detect run, built-in pack)",
        ["severity", "rule", "tenant", "events", "title"],
        [[a.severity, a.rule_id, a.tenant, a.event_count, a.title] for a in found],
    )
    _try_next(ctx.lake_path, data)
    return lake


@click.command()
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days of traffic to generate, one signed batch a day.",
)
@click.option(
    "--events-per-day",
    type=click.IntRange(10, 1_000_000),
    default=400,
    show_default=True,
    help="Events per tenant per day.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),  # the generator rejects negative seeds
    default=7,
    show_default=True,
    help="Random seed: the same seed gives the same events and incidents.",
)
@click.option("--force", is_flag=True, help="Replace an existing demo lake at --lake.")
@pass_ctx
@handle_errors
def demo(ctx: Ctx, days: int, events_per_day: int, seed: int, force: bool) -> None:
    """Build a demo lake with realistic traffic and planted attacks, then verify it."""
    ctx.require_operator("demo")
    run_demo(ctx, days=days, events_per_day=events_per_day, seed=seed, force=force)
