"""`auditlake prove`, `verify-proof` and `checkpoint export`: what leaves the lake to be
checked elsewhere, and the check itself."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import orjson

from auditlake.cli.context import Ctx, handle_errors, pass_ctx, refusal_recorded
from auditlake.cli.options import tenant_option
from auditlake.cli.output import ExitCode, emit_json, fail, note
from lake.contract import ProofError
from lake.proofs import check_proof, prove, prove_consistency
from lake.secrets import Permission, TrustStore, check_reach, logged_tenants, parse_verifier_keys
from lake.storage import check_tenant

NEED_WHAT = "give an EVENT_ID, or --consistency OLD_SIZE"
T = TypeVar("T")


@click.command("prove")
@click.argument("event_id", required=False)
@tenant_option(required=True)
@click.option(
    "--consistency",
    "old_size",
    type=click.IntRange(1),
    help="Instead: a consistency proof from this older tree size to the latest.",
)
@pass_ctx
@handle_errors
def prove_cmd(ctx: Ctx, event_id: str | None, tenant: str, old_size: int | None) -> None:
    """Print an inclusion proof of EVENT_ID (JSON), checkable offline with the public key.

    With --consistency N, print instead a proof that the tenant's log at size N is a
    prefix of its latest signed checkpoint.
    """
    lake = ctx.open()
    who = ctx.who()
    check_tenant(tenant)
    if not event_id and old_size is None:
        fail(NEED_WHAT)
    # A proof carries the stored row: it is a read, recorded like a search (refused too).
    audit = ctx.read_audit(lake)
    asked = f"consistency:{old_size}" if old_size is not None else f"id:{event_id}"
    with refusal_recorded(audit, who, "cli.prove", asked, [tenant]):
        check_reach(who, Permission.PROVE, logged_tenants(lake), [tenant])
    local = [k.verifier_key for k in ctx.keys().list()]
    audit.record(who, interface="cli.prove", query=asked, tenants=[tenant])
    if old_size is not None:
        emit_json(prove_consistency(lake, tenant, old_size, local))
    elif event_id:
        emit_json(prove(lake, tenant, event_id, local))
    else:
        fail(NEED_WHAT)


def _or_finding(what: str, check: Callable[[], T]) -> T:
    """The check's result; a failed check is a finding (exit 1), named on stderr."""
    try:
        return check()
    except ProofError as exc:
        note(f"{what} FAILED: {exc}")
        raise SystemExit(int(ExitCode.FINDING)) from None


@click.command("verify-proof")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--key",
    multiple=True,
    help="Verifier key to check against (default: the config home's trusted keys).",
)
@pass_ctx
@handle_errors
def verify_proof(ctx: Ctx, file: str, key: tuple[str, ...]) -> None:
    """Check a proof from `prove`, or an evidence pack (zip); exit 1 if anything fails.

    FILE may be '-' for stdin. Checks with the config home's trusted keys or --key only,
    never with a key found inside the proof or pack.
    """
    from lake.proofs import check_pack, is_pack, read_input

    try:
        raw = read_input(file)  # bounded: a proof or pack comes from outside
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")

    keys_ = parse_verifier_keys(list(key), "--key") if key else TrustStore(ctx.home).keys()
    if is_pack(raw):
        if not keys_:
            fail("no verifier key to check the pack with: give --key, or trust one")
        lines = _or_finding("evidence pack", lambda: check_pack(raw, keys_))
        for line in lines:
            click.echo(f"proof OK: {line}")
        click.echo(f"evidence pack OK: {len(lines)} proof(s)")
        return
    try:
        proof = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        fail(f"{file}: not JSON ({exc})")
    if not keys_:  # nothing to check against is a usage error, not a failed proof
        fail("no verifier key to check the proof with: give --key, or trust one in the config home")
    click.echo(f"proof OK: {_or_finding('proof', lambda: check_proof(proof, keys_))}")


@click.group()
def checkpoint() -> None:
    """Signed checkpoints, to keep outside the lake."""


@checkpoint.command("export")
@tenant_option(required=False)
@click.option(
    "--to",
    "dest",
    type=click.Path(file_okay=False),
    help="Write every tenant's latest checkpoint under this directory (for cron), as "
    "DIR/<lake>/<tenant>/<tree size>.txt; files are never overwritten.",
)
@pass_ctx
@handle_errors
def checkpoint_export(ctx: Ctx, tenant: str | None, dest: str | None) -> None:
    """Print the tenant's latest signed checkpoint; keep it to detect rollback later.

    With --to DIR (e.g. a mount of an object-lock bucket, or another machine's share),
    writes all tenants' latest checkpoints there; run it from cron:

    \b
      */5 * * * * auditlake checkpoint export --to /mnt/worm/auditlake
      auditlake verify --since-checkpoint /mnt/worm/auditlake/<lake>/<tenant>/<size>.txt
    """
    from lake.proofs import export_checkpoints, latest_checkpoint

    lake = ctx.open()
    if dest is not None:
        written = export_checkpoints(lake, ctx.who(), Path(dest), [tenant] if tenant else None)
        note(f"{len(written)} new checkpoint(s) exported under {dest}")
        return
    if tenant is None:
        fail("give --tenant T (prints it), or --to DIR (writes every tenant's)")
    ctx.who().require(Permission.READ_CHECKPOINTS, check_tenant(tenant))
    try:
        cp = latest_checkpoint(lake, tenant)
    except ProofError as exc:
        fail(str(exc))
    sys.stdout.write(cp["note"])
