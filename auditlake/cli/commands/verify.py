"""`auditlake verify`: every event, checkpoint and signature of the tenants in scope."""

from __future__ import annotations

from pathlib import Path

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import engine_address, engine_options, format_option, tenant_option
from auditlake.cli.output import ExitCode, emit_json, emit_table, fail, note, progress
from lake.secrets import Permission, TrustStore, parse_verifier_keys, scoped_tenants
from lake.verify import Engine, Report, parse_exported, record_report, verify_with
from lake.witness import CosignerKey


def print_report(report: Report, fmt: str) -> None:
    if fmt == "json":
        emit_json(report.as_dict())
        return
    emit_table(
        f"verify {report.lake}",
        ["tenant", "events", "sealed", "checkpoints", "keys", "result"],
        [
            [
                t.tenant,
                t.events,
                t.sealed_size,
                t.checkpoints,
                ", ".join(t.key_names),
                "ok" if t.ok else f"{len(t.findings) + sum(t.suppressed.values())} finding(s)",
            ]
            for t in report.tenants
        ],
    )
    if report.findings:
        emit_table(
            "findings",
            ["tenant", "kind", "seq", "event", "batch", "detail"],
            [[f.tenant, f.kind, f.seq, f.event_id, f.batch_id, f.message] for f in report.findings],
        )
        for t in report.tenants:
            for kind, count in t.suppressed.items():
                note(f"{t.tenant}: {count} more {kind} finding(s) not shown")


def _exported_notes(paths: tuple[str, ...]) -> list[str]:
    """The checkpoints in the files of --since-checkpoint."""
    notes: list[str] = []
    for path in paths:
        try:
            notes += parse_exported(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--since-checkpoint {path}: {exc}")
    return notes


@click.command()
@tenant_option(required=False, multiple=True)
@click.option(
    "--trusted-key",
    multiple=True,
    help="Verifier key(s) to trust, besides the config home's trusted_keys.",
)
@click.option(
    "--since-checkpoint",
    "since",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="File of checkpoint(s) exported earlier; detects rollback of newer batches.",
)
@click.option(
    "--witness-key",
    multiple=True,
    help="A witness's cosigner key (name+hash+base64) whose cosignatures count; repeat.",
)
@click.option(
    "--min-witnesses",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Require this many valid witness cosignatures on each tenant's latest checkpoint.",
)
@engine_options
@format_option("table", "json")
@pass_ctx
@handle_errors
def verify(
    ctx: Ctx,
    tenant: tuple[str, ...],
    trusted_key: tuple[str, ...],
    since: tuple[str, ...],
    witness_key: tuple[str, ...],
    min_witnesses: int,
    engine: str,
    address: str | None,
    fmt: str,
) -> None:
    """Check every event, checkpoint and signature; exit 1 on any finding.

    Recomputes every leaf from the stored rows, rebuilds the Merkle roots, checks each
    checkpoint's signature against trusted keys only, and reports each problem with its
    tenant, seq, event id, batch and kind (modified, missing, duplicate, inserted,
    reordered, bad_signature, untrusted_key, rollback, unsealed, ...).

    With --engine ray the same checks run as tasks per tenant and seq range on a Ray
    cluster (every worker must reach the lake), with the same report.
    """
    ray_address = engine_address(engine, address)
    lake = ctx.open()
    trusted = [*TrustStore(ctx.home).keys(), *parse_verifier_keys(list(trusted_key))]
    notes = _exported_notes(since)
    tenants = scoped_tenants(ctx.who(), lake, tenant, Permission.VERIFY)
    if min_witnesses > len(witness_key):
        fail(f"--min-witnesses {min_witnesses} needs at least that many --witness-key")
    if not trusted:
        note(
            "warning: no trusted keys (config home or --trusted-key): every checkpoint is untrusted"
        )
    with progress("verify") as update:
        report = verify_with(
            Engine(engine), lake, trusted, address=ray_address, tenants=tenants, since=notes,
            progress=lambda d, t: update("events", d, t),
            witness_keys=[CosignerKey.parse(k) for k in witness_key],
            min_witnesses=min_witnesses, windows=TrustStore(ctx.home).windows(),
        )  # fmt: skip
    record_report(lake, report, by=ctx.principal)
    print_report(report, fmt)
    if not report.ok:
        note(f"verify: {len(report.findings)} finding(s)")
        raise SystemExit(int(ExitCode.FINDING))
