"""`auditlake alerts list`: the alerts detection runs wrote, of the tenants you may read."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
import orjson

from auditlake.cli.context import Ctx, handle_errors, pass_ctx, refusal_recorded
from auditlake.cli.options import format_option
from auditlake.cli.output import emit_json, emit_table
from lake.contract import Alert
from lake.secrets import (
    Permission,
    check_reach,
    encrypted,
    keyring_for,
    logged_tenants,
    open_alerts,
)


@click.group()
def alerts() -> None:
    """Alerts written by detection runs."""


_NEVER = datetime.min.replace(tzinfo=UTC)  # where an alert without a last_seen sorts


def _stored(ctx: Ctx, tenant: tuple[str, ...], asked: str) -> list[Alert]:
    """The stored alerts of the tenants asked for (or all the principal's), opened when
    the lake is encrypted; the read is recorded in the read audit, a refusal too."""
    lake = ctx.open()
    who = ctx.who()
    audit = ctx.read_audit(lake)
    # Unknown principal or tenant: refused, and recorded like a refused search.
    with refusal_recorded(audit, who, "cli.alerts", asked, tenant):
        check_reach(who, Permission.READ_ALERTS, logged_tenants(lake), list(tenant))
    known = set(lake.read_alerts().column("tenant").to_pylist())
    scope = set(tenant) if tenant else {t for t in known if who.may(Permission.READ_ALERTS, t)}
    audit.record(who, interface="cli.alerts", query=asked, tenants=sorted(scope))
    stored = [Alert.from_row(r) for r in lake.read_alerts(scope).to_pylist()]
    if encrypted(lake):  # titles and groups quote the events' sealed fields
        stored = open_alerts(keyring_for(lake, ctx.home), stored)
    return stored


@alerts.command("list")
@click.option("--tenant", multiple=True, help="Only these tenants (repeat).")
@click.option("--rule", "rule_ids", multiple=True, help="Only these rule ids (repeat).")
@click.option(
    "--severity", multiple=True, help="Only these severities (info, low, medium, high, critical)."
)
@click.option("--since", help="Alerts last seen at or after this time (2026-11-01, 7d, ...).")
@format_option("table", "json", "jsonl")
@pass_ctx
@handle_errors
def alerts_list(
    ctx: Ctx,
    tenant: tuple[str, ...],
    rule_ids: tuple[str, ...],
    severity: tuple[str, ...],
    since: str | None,
    fmt: str,
) -> None:
    """Alerts of the tenants you may read, newest first; each names its evidence events.

    `auditlake prove EVENT_ID --tenant T` proves any of an alert's event_ids.
    """
    from lake.query import parse_time

    asked = " ".join(
        [
            *(f"tenant:{t}" for t in tenant),
            *(f"rule:{r}" for r in rule_ids),
            *(f"severity:{s}" for s in severity),
            *([f"since:{since}"] if since else []),
        ]
    )
    stored = _stored(ctx, tenant, asked)
    cutoff = parse_time(since) if since is not None else None
    chosen = [
        a
        for a in stored
        if (not rule_ids or a.rule_id in rule_ids)
        and (not severity or a.severity in severity)
        and (cutoff is None or (a.last_seen or _NEVER) >= cutoff)
    ]
    chosen.sort(key=lambda a: (a.last_seen or _NEVER, a.alert_id), reverse=True)
    out = [a.to_json() for a in chosen]
    if fmt == "json":
        emit_json(out)
    elif fmt == "jsonl":
        for item in out:
            sys.stdout.write(orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode() + "\n")
    else:
        emit_table(
            None,
            ["last seen", "tenant", "severity", "rule", "events", "title", "alert"],
            [[a["last_seen"][:19], a["tenant"], a["severity"], a["rule_id"], a["event_count"],
              a["title"], a["alert_id"]] for a in out],
        )  # fmt: skip
