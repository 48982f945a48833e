"""`auditlake access …`: principals and their per-tenant roles (lake/secrets/_access.py).

Registered on the `cli` group by auditlake.cli. Every `access` subcommand lives here (the
dashboard's sign-in tokens too), so no registration module imports another.
"""

from __future__ import annotations

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option
from auditlake.cli.output import emit_json, emit_table, fail, note
from lake.secrets import ROLE_PERMISSIONS, ROLES, AccessPolicy, Role, SigninStore


@click.group()
def access() -> None:
    """Principals and their per-tenant roles (kept in the config home).

    \b
    Roles, each including the one before:
      viewer        read events (search, sql, tui)
      investigator  + alerts, inclusion proofs, evidence export
      auditor       + checkpoints, verify
      admin         + retention and legal holds, keys
    Grant on tenant '*' for every tenant; the read audit (tenant 'auditlake') needs its
    own grant. The local operator, admin, holds every role.
    """


@access.command("grant")
@click.argument("principal")
@click.option("--tenant", required=True, help="Tenant id, or '*' for every tenant.")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="Role to give.")
@pass_ctx
@handle_errors
def access_grant(ctx: Ctx, principal: str, tenant: str, role: str) -> None:
    """Give PRINCIPAL a role on a tenant (replacing its role there)."""
    ctx.require_operator("access grant")
    AccessPolicy(ctx.home).grant(principal, tenant, role)
    note(f"{principal}: {role} on {tenant}")


@access.command("revoke")
@click.argument("principal")
@click.option("--tenant", help="Only this tenant (default: every grant of PRINCIPAL).")
@pass_ctx
@handle_errors
def access_revoke(ctx: Ctx, principal: str, tenant: str | None) -> None:
    """Take PRINCIPAL's role on a tenant (or all its roles) away."""
    ctx.require_operator("access revoke")
    removed = AccessPolicy(ctx.home).revoke(principal, tenant)
    if not removed:
        fail(f"{principal} holds no such grant")
    note(f"{principal}: {removed} grant(s) revoked")


@access.command("list")
@format_option("table", "json")
@pass_ctx
@handle_errors
def access_list(ctx: Ctx, fmt: str) -> None:
    """Every grant: principal, tenant, role and what the role allows.

    The whole policy is the operator's to see; any other principal (--as) sees only its
    own grants, so it learns neither who else may read nor which tenants they hold.
    """
    grants = AccessPolicy(ctx.home).list()
    if not ctx.who().operator:
        grants = [g for g in grants if g[0] == ctx.principal]
        note(f"your own grants only ({ctx.principal}); the whole policy is the operator's")
    rows = [
        {
            "principal": p,
            "tenant": t,
            "role": str(r),
            "permissions": sorted(str(x) for x in ROLE_PERMISSIONS[Role(r)]),
        }
        for p, t, r in grants
    ]
    if fmt == "json":
        emit_json(rows)
        return
    emit_table(
        None,
        ["principal", "tenant", "role", "may"],
        [[r["principal"], r["tenant"], r["role"], ", ".join(r["permissions"])] for r in rows],
    )


@access.command("token")
@click.argument("principal")
@click.option("--revoke", is_flag=True, help="Instead: remove every sign-in token of PRINCIPAL.")
@pass_ctx
@handle_errors
def access_token(ctx: Ctx, principal: str, revoke: bool) -> None:
    """Print a new dashboard sign-in token for PRINCIPAL; it is shown only once.

    The config home keeps only its SHA-256. Whoever holds the token signs in as
    PRINCIPAL and sees what PRINCIPAL's grants allow (`auditlake access grant`).
    """
    ctx.require_operator("access token")
    store = SigninStore(ctx.home)
    if revoke:
        removed = store.revoke(principal)
        if not removed:
            fail(f"{principal} holds no sign-in token")
        note(f"{principal}: {removed} sign-in token(s) revoked")
        return
    who = AccessPolicy(ctx.home).principal(principal)
    if not who.operator and not who.grants:
        note(
            f"warning: {principal} holds no grant yet and will see nothing until "
            "`auditlake access grant`"
        )
    click.echo(store.create(principal))
