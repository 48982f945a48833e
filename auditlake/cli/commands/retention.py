"""`auditlake retention …` and `auditlake hold …`: CLI wiring of lake.retention.

Registered on the `cli` group by auditlake.cli.
"""

from __future__ import annotations

from typing import Any

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option
from auditlake.cli.output import emit_json, emit_table, fail, note
from lake.secrets import Permission, Principal, logged_tenants
from lake.storage import Lake, check_tenant

PRESET_HELP = "sox (7 years), hipaa (6 years), pci-dss (12 months)"
ALLOW_NEW_HELP = "The tenant has no events yet (a tenant about to be onboarded): set it anyway."


def _check_managed(who: Principal, lake: Lake, tenant: str, allow_new: bool, what: str) -> None:
    """May `who` manage `tenant`, and does the lake hold it? A misspelt tenant would take
    the setting while the real tenant stays unprotected, so one without a log in the lake
    is refused unless --allow-new says it is on purpose."""
    who.require(Permission.MANAGE_RETENTION, check_tenant(tenant))
    if not allow_new and tenant not in logged_tenants(lake):
        fail(
            f"no tenant {tenant!r} in this lake: {what} "
            "(misspelt? `auditlake retention status` lists the tenants; --allow-new sets it "
            "for a tenant that has no events yet)"
        )


@click.group()
def retention() -> None:
    """Retention per tenant: how long events are kept, and the only path that removes them.

    \b
      auditlake retention status                      policy, oldest/newest data, what is due
      auditlake retention set --tenant acme --preset pci-dss
      auditlake retention set --tenant acme --days 2557
      auditlake retention apply --dry-run             what would be removed
      auditlake retention apply                       remove due partitions (not under hold)

    Removal takes whole expired days of a tenant, never under a legal hold, and is signed
    into the lake's own log first (`retention.apply`, naming the seq ranges), so verify
    tells a lawful removal from tampering and every remaining proof still holds.
    """


@retention.command("status")
@click.option("--tenant", multiple=True, help="Only these tenants.")
@format_option("table", "json")
@pass_ctx
@handle_errors
def retention_status(ctx: Ctx, tenant: tuple[str, ...], fmt: str) -> None:
    """Per tenant: retention, legal hold, oldest and newest data, what is due."""
    from lake.write import status

    who = ctx.who()
    rows = [
        s for s in status(ctx.open(), tenants=list(tenant) or None)
        if who.may(Permission.READ_CHECKPOINTS, s.tenant) or who.operator
    ]  # fmt: skip
    if fmt == "json":
        emit_json([s.as_dict() for s in rows])
        return
    emit_table(
        None,
        ["tenant", "keep (days)", "preset", "oldest", "newest", "due days", "due events", "hold"],
        [[s.tenant, s.days, s.preset or "", s.oldest, s.newest, len(s.due_dates), s.due_events,
          s.hold.reason if s.hold else ""] for s in rows],
    )  # fmt: skip


@retention.command("set")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--days", type=click.IntRange(1), help="Keep events this many days.")
@click.option("--preset", type=click.Choice(["sox", "hipaa", "pci-dss"]), help=PRESET_HELP)
@click.option("--allow-new", is_flag=True, help=ALLOW_NEW_HELP)
@pass_ctx
@handle_errors
def retention_set(
    ctx: Ctx, tenant: str, days: int | None, preset: str | None, allow_new: bool
) -> None:
    """Set how long a tenant's events are kept (default 2557 days, seven years)."""
    from lake.write import set_policy

    who = ctx.who()
    lake = ctx.open()
    _check_managed(who, lake, tenant, allow_new, "a retention policy on it would govern nothing")
    entry = set_policy(lake, ctx.keys().active(), who, tenant, days=days, preset=preset)
    note(f"{tenant}: keep {entry['days']} days" + (f" ({preset})" if preset else ""))


@retention.command("apply")
@click.option("--tenant", multiple=True, help="Only these tenants.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@format_option("table", "json")
@pass_ctx
@handle_errors
def retention_apply(ctx: Ctx, tenant: tuple[str, ...], dry_run: bool, fmt: str) -> None:
    """Remove every expired day of events not under legal hold (signed first)."""
    from lake.write import apply

    who = ctx.who()
    lake = ctx.open()
    wanted = list(tenant) or None
    if wanted:
        for t in wanted:
            who.require(Permission.MANAGE_RETENTION, t)
    elif not who.operator:
        wanted = who.tenants(Permission.MANAGE_RETENTION, lake.tenants())
        if not wanted:
            note("auditlake: you may manage the retention of no tenant")
            raise SystemExit(2)
    done = apply(lake, ctx.keys().active(), who, tenants=wanted, dry_run=dry_run)
    rows: list[dict[str, Any]] = [
        {"tenant": r.tenant, "dates": [d.isoformat() for d in r.dates], "events": r.events,
         "seq_ranges": r.seq_ranges, "refused": r.refused, "removed": not dry_run and not r.refused}
        for r in done
    ]  # fmt: skip
    if fmt == "json":
        emit_json(rows)
        return
    emit_table(
        "dry run: nothing removed" if dry_run else None,
        ["tenant", "days", "events", "seq ranges", "result"],
        [[r["tenant"], len(r["dates"]), r["events"],
          ", ".join(f"{a}-{b}" for a, b in r["seq_ranges"]),
          r["refused"] or ("would remove" if dry_run else "removed")] for r in rows],
    )  # fmt: skip
    if not rows:
        note("nothing is due")


@click.group()
def hold() -> None:
    """Legal hold: while set, nothing of the tenant is removed, whatever its retention."""


@hold.command("set")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--reason", required=True, help="Case or matter reference (recorded).")
@click.option("--allow-new", is_flag=True, help=ALLOW_NEW_HELP)
@pass_ctx
@handle_errors
def hold_set(ctx: Ctx, tenant: str, reason: str, allow_new: bool) -> None:
    """Put a tenant under legal hold (recorded as a signed event)."""
    from lake.write import set_hold

    who = ctx.who()
    lake = ctx.open()
    _check_managed(who, lake, tenant, allow_new, "a legal hold on it would protect nothing")
    set_hold(lake, ctx.keys().active(), who, tenant, reason)
    note(f"{tenant}: under legal hold ({reason})")


@hold.command("clear")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--reason", default="hold lifted", show_default=True, help="Why (recorded).")
@pass_ctx
@handle_errors
def hold_clear(ctx: Ctx, tenant: str, reason: str) -> None:
    """Lift a tenant's legal hold (recorded as a signed event)."""
    from lake.write import set_hold

    who = ctx.who()
    who.require(Permission.MANAGE_RETENTION, tenant)
    set_hold(ctx.open(), ctx.keys().active(), who, tenant, reason, clear=True)
    note(f"{tenant}: legal hold lifted")
