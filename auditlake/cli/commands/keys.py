"""`auditlake init` and `auditlake keys …`: the lake and its signing keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option
from auditlake.cli.output import emit_json, emit_table, fail, note
from lake.secrets import TrustStore, ensure_outside
from lake.spec import utc_text
from lake.storage import Lake, check_lake_name, check_tenant


def _lake_location(ctx: Ctx) -> tuple[str | Path, str]:
    """Where the new lake goes and the last part of that path, checked before any key is
    made (an object store reachable and empty, a local directory creatable)."""
    if "://" in ctx.lake_path:
        url = Lake.check_new(ctx.lake_path)
        return url, url.rsplit("/", 1)[-1]
    path = Path(ctx.lake_path).expanduser().resolve()
    ensure_outside(ctx.home, path)
    try:  # a file in the way must not leave an orphan key behind
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the lake at {path}: {exc.strerror or exc}")
    return path, path.name


@click.command()
@click.option("--name", help="Lake name, used in checkpoint origins (default: from the path).")
@click.option(
    "--encrypt",
    is_flag=True,
    help="Encrypt details, actor_ip and user_agent at rest with per-tenant data keys "
    "(master key in the config home); enables `keys shred`.",
)
@pass_ctx
@handle_errors
def init(ctx: Ctx, name: str | None, encrypt: bool) -> None:
    """Create a lake, and a signing key in the config home if there is none.

    Prints the verifier key (name+hash+base64) on stdout: give it to whoever must verify
    the lake. Your own key is added to the config home's trusted keys.
    """
    ctx.require_operator("init")
    path, base = _lake_location(ctx)
    lake_name = name or re.sub(r"[^a-z0-9._-]", "-", base.lower()).strip("-._") or "lake"
    check_lake_name(lake_name)  # before any key is created for it
    signer, created = ctx.ensure_signer(f"{lake_name}-{datetime.now(UTC).strftime('%Y%m%d')}")
    extra = None
    if encrypt:
        from lake.secrets import FIELDS, master_key

        master_key(ctx.home, create=True)
        extra = {"encryption": {"enabled": True, "fields": list(FIELDS)}}
    lake = Lake.init(path, lake_name, signer.verifier_key.encode(), extra=extra)
    note(f"created lake {lake.name!r} at {lake.root}" + (" (encrypted fields)" if encrypt else ""))
    if created:
        note(f"created signing key {signer.name!r} in {ctx.keys().dir} (mode 0600)")
    else:
        note(f"signing with existing key {signer.name!r}")
    click.echo(signer.verifier_key.encode())


@click.group()
def keys() -> None:
    """Manage signing keys (kept in the config home, never in the lake)."""


@keys.command("generate")
@click.option("--name", required=True, help="Key name (letters, digits, '.', '_', '-').")
@click.option("--no-activate", is_flag=True, help="Create the key without signing with it.")
@pass_ctx
@handle_errors
def keys_generate(ctx: Ctx, name: str, no_activate: bool) -> None:
    """Create a new Ed25519 signing key (mode 0600) and print its verifier key."""
    ctx.require_operator("keys generate")
    signer = ctx.keys().generate(name, activate=not no_activate)
    TrustStore(ctx.home).add(signer.verifier_key)
    click.echo(signer.verifier_key.encode())


@keys.command("list")
@format_option("table", "json")
@pass_ctx
@handle_errors
def keys_list(ctx: Ctx, fmt: str) -> None:
    """List signing keys, marking the one that signs new checkpoints."""
    infos = ctx.keys().list()
    if fmt == "json":
        emit_json(
            [{"name": k.name, "verifier_key": k.verifier_key, "active": k.active} for k in infos]
        )
    else:
        emit_table(
            None,
            ["name", "active", "verifier key"],
            [[k.name, "yes" if k.active else "", k.verifier_key] for k in infos],
        )


@keys.command("rotate")
@click.option("--name", required=True, help="Name of the new key.")
@pass_ctx
@handle_errors
def keys_rotate(ctx: Ctx, name: str) -> None:
    """Create a new signing key and announce it in every tenant's log, signed by both keys.

    Verifiers that trust only the old key follow the announcement to the new one; the old
    key is trusted here until now (not-after). Restart running collectors afterwards.
    Then `auditlake keys retire OLD` destroys the old private key.
    """
    from lake.write import rotate

    ctx.require_operator("keys rotate")
    done = rotate(ctx.open(), ctx.keys(), TrustStore(ctx.home), name)
    for tenant, size in sorted(done.announced.items()):
        note(f"{tenant}: new key announced at size {size}, signed by {done.old} and {done.new}")
    click.echo(done.verifier_key)


@keys.command("retire")
@click.argument("name")
@pass_ctx
@handle_errors
def keys_retire(ctx: Ctx, name: str) -> None:
    """Destroy a (non-active) private key; its public half and history stay verifiable."""
    ctx.require_operator("keys retire")
    ctx.keys().retire(name)
    note(f"private key {name!r} overwritten and removed; checkpoints it signed still verify")


@keys.command("revoke")
@click.argument("name")
@click.option("--at", "when", required=True, help="Compromised from this time (RFC 3339 or date).")
@pass_ctx
@handle_errors
def keys_revoke(ctx: Ctx, name: str, when: str) -> None:
    """Mark a trusted key compromised from a time: checkpoints it signed later are findings."""
    from lake.query import parse_time

    ctx.require_operator("keys revoke")
    trust = TrustStore(ctx.home)
    matches = [k for k in trust.keys() if k.name == name]  # noqa: SIM118 - not a dict
    if not matches:
        fail(f"no trusted key named {name!r}")
    at = parse_time(when)
    for key in matches:
        trust.set_attr(key, "revoked", at)
    note(f"{name}: revoked from {utc_text(at, micros=False)}")
    if ctx.keys().active_name() == name:
        note("warning: this is the active signing key; run `auditlake keys rotate` now")


@keys.command("shred")
@click.option("--tenant", required=True, help="Tenant whose data keys to destroy.")
@click.option("--subject", help="Only this actor's key (a GDPR erasure of one person).")
@click.option("--yes", is_flag=True, help="Confirm: those encrypted fields become unreadable.")
@pass_ctx
@handle_errors
def keys_shred(ctx: Ctx, tenant: str, subject: str | None, yes: bool) -> None:
    """Crypto-shred a tenant, or one subject (actor) of it: destroy the data keys.

    details, actor_ip and user_agent of those events become unreadable for good, while
    every event, checkpoint and proof still verifies (the leaves cover the ciphertext).
    Recorded as a signed key.shred event (naming a subject only by its hash). Refused
    under a legal hold. Rotates the config home's master key, so copies of the lake made
    before the shred cannot be decrypted any more.
    """
    from lake.write import require_encrypted, shred

    ctx.require_operator("keys shred")
    lake = ctx.open()
    check_tenant(tenant)
    if not yes:
        require_encrypted(lake)  # nothing to confirm on a lake without data keys
        fail("this destroys encrypted fields for good; add --yes to confirm")
    gone = shred(lake, ctx.keys(), ctx.who(), tenant, subject)
    who = f"subject of {tenant}" if subject else tenant
    note(f"{who}: {gone} data key(s) destroyed; their encrypted fields now read as NULL")


@keys.command("export")
@click.option("--name", help="Only this key.")
@pass_ctx
@handle_errors
def keys_export(ctx: Ctx, name: str | None) -> None:
    """Print verifier keys (name+hash+base64), one a line."""
    infos = [k for k in ctx.keys().list() if name is None or k.name == name]
    if not infos:
        fail("no signing keys in the config home" if name is None else f"no key named {name!r}")
    for k in infos:
        click.echo(k.verifier_key)
