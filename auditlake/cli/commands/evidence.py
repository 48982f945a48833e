"""`auditlake evidence`: an evidence pack (events, proofs, checkpoints, verifier keys)."""

from __future__ import annotations

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx, refusal_recorded
from auditlake.cli.output import fail, note
from lake.secrets import AccessDenied, Permission, Principal, check_reach, logged_tenants
from lake.storage import Lake, check_tenant


def _alert_events(lake: Lake, who: Principal, alert_id: str) -> tuple[str, tuple[str, ...]]:
    """The tenant and evidence event ids of an alert `who` may read (AccessDenied else)."""
    check_reach(who, Permission.READ_ALERTS, logged_tenants(lake))
    rows = [r for r in lake.read_alerts().to_pylist() if r["alert_id"] == alert_id]
    if not rows or not who.may(Permission.READ_ALERTS, rows[0]["tenant"]):
        raise AccessDenied(f"no alert {alert_id!r} that you may read")
    return rows[0]["tenant"], tuple(rows[0]["event_ids"])


@click.command()
@click.argument("event_ids", nargs=-1)
@click.option("--tenant", help="Tenant of the EVENT_IDS.")
@click.option("--alert", "alert_id", help="Instead: every evidence event of this alert.")
@click.option("--note", "note_text", default="", help="A line for the manifest (case number).")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the zip.",
)
@pass_ctx
@handle_errors
def evidence(
    ctx: Ctx,
    event_ids: tuple[str, ...],
    tenant: str | None,
    alert_id: str | None,
    note_text: str,
    output: str,
) -> None:
    """Write an evidence pack: events, their inclusion proofs, checkpoints, verifier keys.

    \b
      auditlake evidence --alert 3f2a… -o case-42.zip
      auditlake evidence --tenant acme 0192…-7c1e 0192…-8d2f -o case-42.zip
      auditlake verify-proof case-42.zip --key "$KEY"     # anyone, offline

    Needs the investigator role (or higher) on the tenant; recorded in the read audit.
    """
    from lake.proofs import build_pack

    lake = ctx.open()
    who = ctx.who()
    if alert_id and (event_ids or tenant):
        fail("give either --alert or --tenant with EVENT_IDS, not both")
    if not alert_id and (not tenant or not event_ids):
        fail("give --alert ALERT_ID, or --tenant T and one or more EVENT_IDS")
    if tenant is not None:
        check_tenant(tenant)
    # Refused packs are recorded in the read audit like refused searches.
    audit = ctx.read_audit(lake)
    asked = f"alert:{alert_id}" if alert_id else " ".join(f"id:{e}" for e in event_ids)
    if alert_id:
        with refusal_recorded(audit, who, "cli.evidence", asked, []):
            tenant, event_ids = _alert_events(lake, who, alert_id)
    assert tenant is not None
    with refusal_recorded(audit, who, "cli.evidence", asked, [tenant]):
        check_reach(who, Permission.PROVE, logged_tenants(lake), [tenant])
    audit.record(who, interface="cli.evidence", query=asked, tenants=[tenant])
    local = [k.verifier_key for k in ctx.keys().list()]
    data = build_pack(
        lake, [(tenant, e) for e in event_ids], made_by=who.name, note=note_text, local_keys=local
    )
    with open(output, "wb") as fh:
        fh.write(data)
    note(f"wrote {output}: {len(event_ids)} event(s) with proofs ({len(data):,} bytes)")
