"""`auditlake ingest` and `auditlake seal`: events in, checkpoints signed, witnesses asked.

The work is `ingest.summary` (read, validate, spool, append) and `lake.write.seal`; this
module only prints what they did.
"""

from __future__ import annotations

import contextlib
from typing import Any

import click

from auditlake.cli.context import MAX_ERRORS_SHOWN, Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option, tenant_option
from auditlake.cli.output import emit_json, emit_table, fail, note, progress
from lake.secrets import TrustStore
from lake.storage import Lake, check_tenant
from lake.write import seal

DEFAULT_BATCH = 500_000


def ask_witnesses(ctx: Ctx, lake: Lake, tenants: list[str]) -> list[dict[str, Any]]:
    """After a seal, ask the configured witnesses to cosign (never fails the command)."""
    from lake.witness import load_witnesses, request_cosignatures

    witnesses = load_witnesses(ctx.home)
    out: list[dict[str, Any]] = []
    for tenant in tenants if witnesses else []:
        for r in request_cosignatures(lake, tenant, witnesses):
            out.append(r.__dict__)
            if not r.ok:
                note(f"warning: witness {r.witness} did not cosign {tenant}: {r.message}")
    return out


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "json", "csv", "parquet"]),
    help="Input format (default: by extension; stdin is sniffed).",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Ingest the valid events and write rejects to a file beside the input.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Where to write rejects (default: <input>.rejects.jsonl).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Events per signed batch; also what bounds ingest's memory.",
)
@click.option(
    "--max-future-skew",
    metavar="DURATION",
    envvar="AUDITLAKE_MAX_FUTURE_SKEW",
    help="Refuse events whose time is further than this ahead of this machine's clock, "
    "e.g. 24h, 90m, 0s (default 24h; env AUDITLAKE_MAX_FUTURE_SKEW). Times before 1970 "
    "are always refused.",
)
# `--format` is the input format here (the contract), so the summary's format needs its own flag.
@format_option("table", "json", flag="--output-format")
@pass_ctx
@handle_errors
def ingest(
    ctx: Ctx,
    files: tuple[str, ...],
    input_format: str | None,
    skip_invalid: bool,
    rejects: str | None,
    batch_size: int,
    max_future_skew: str | None,
    fmt: str,
) -> None:
    """Append events from FILES ('-' for stdin) as signed batches.

    Every input is validated before anything is written: by default one invalid event
    rejects the whole command (exit 2, every problem named). Events already in the lake
    (same tenant and id) are skipped, so running the same ingest twice is safe; so are
    repeats of an event sent without an id (its id comes from its content).
    A lake that cannot be written, a closed stdin or a full spool disk is a one-line
    error with exit 2, before anything is written.
    """
    from ingest.summary import PartlyIngested, check_writable, ingest_inputs, load_inputs
    from lake.contract import parse_duration

    ctx.require_operator("ingest")
    skew = parse_duration(max_future_skew) if max_future_skew else None
    lake = ctx.open()
    check_writable(ctx.lake_path)
    signer = ctx.keys().active()
    with contextlib.ExitStack() as spools:
        loaded = load_inputs(
            files, spools, lake_path=ctx.lake_path, input_format=input_format,
            skip_invalid=skip_invalid, max_future_skew=skew, progress=progress,
        )  # fmt: skip
        try:
            summary = ingest_inputs(
                lake, signer, loaded, batch_size=batch_size, rejects=rejects,
                lake_path=ctx.lake_path, progress=progress, notify=note,
            )  # fmt: skip
        except PartlyIngested as exc:
            for issue in exc.issues[:MAX_ERRORS_SHOWN]:
                note(f"{exc.source}: {issue}")
            fail(str(exc))
    summary.witnesses = ask_witnesses(ctx, lake, summary.touched())
    if fmt == "json":
        emit_json(summary.as_dict())
        return
    emit_table("ingested", ["tenant", "appended", "log size"], summary.per_tenant())
    if summary.batches:
        ids = [b.batch_id for b in summary.batches]
        note(f"{len(ids)} signed batch(es): {', '.join(ids)}")
    note(
        f"{summary.appended} event(s) appended, {summary.duplicates} already present, "
        f"{summary.rejected} rejected"
    )


@click.command("seal")
@tenant_option(required=False, multiple=True)
@click.option(
    "--rebuild-tiles",
    is_flag=True,
    help="Rewrite the hash tiles from the stored rows (after a bad_tiles finding); refused "
    "unless the rows match every checkpoint signed by a trusted key.",
)
@pass_ctx
@handle_errors
def seal_cmd(ctx: Ctx, tenant: tuple[str, ...], rebuild_tiles: bool) -> None:
    """Sign checkpoints for events committed but not yet sealed (after a crash).

    Also removes temporary tile files older than ten minutes that a crash or a full disk
    left behind (younger ones may belong to a concurrent writer).
    """
    from lake.log import rebuild, remove_stale_temp

    ctx.require_operator("seal")
    lake = ctx.open()
    tenants = list(tenant) or lake.tenants()
    for t in tenants:  # temp tile files a crash or a full disk left behind
        if stale := remove_stale_temp(lake, check_tenant(t)):
            note(f"{t}: removed {stale} stale temporary tile file(s)")
    if rebuild_tiles:
        trusted = TrustStore(ctx.home).keys()
        for t in tenants:
            size = rebuild(lake, check_tenant(t), trusted)
            note(f"{t}: hash tiles rebuilt for {size} events")
        return
    results = seal(lake, ctx.keys().active(), tenants)
    for r in results:
        note(f"{r.tenant}: sealed at size {r.tree_size}")
    ask_witnesses(ctx, lake, sorted({r.tenant for r in results}))
    if not results:
        note("nothing to seal")
