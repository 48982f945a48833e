"""`auditlake tui`: CLI wiring of the investigator TUI (tui/).

Registered on the `cli` group by auditlake.cli. The command opens the principal's
session (so a missing lake, an unknown principal or a tenant it may not read is a one-line
error before any screen appears), runs the app, and closes the session afterwards, which
flushes the buffered read audit. Textual is imported only here, when the TUI is asked for.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.output import fail


@click.command()
@click.option(
    "--tenant",
    multiple=True,
    help="Start with this tenant's events (repeat for several; default: all yours).",
)
@click.option(
    "--window",
    type=click.IntRange(1, 7 * 24 * 60),
    default=15,
    show_default=True,
    help="Minutes either side of an event for the time-window pivot (w).",
)
@pass_ctx
@handle_errors
def tui(ctx: Ctx, tenant: tuple[str, ...], window: int) -> None:
    """Investigate in the terminal: search, pivot, timeline, proofs, alerts, evidence.

    Opens on the newest events of the tenants you may read (--as). The search box takes
    the same query syntax as `auditlake search`; every search, proof and export runs as
    you and is recorded in the read audit.

    \b
    Keys:
      /          search (Enter applies, Escape leaves the box)
      ↑ ↓ PgDn   move; the detail pane follows; scrolling to the end loads more
      Enter      open the event: check its inclusion proof (✓ or the finding)
      a i t      pivot: same actor, same IP (all your tenants), same target
      w          pivot: ±--window minutes around the event
      b          back to the previous search      n  next page of results
      A          alerts (Enter lists an alert's events, e writes its evidence pack)
      e          export every result (.csv .json .jsonl .parquet)
      space / E  mark events / evidence pack of the marked (or current) events
      l          show or hide the timeline        ctrl+p  command palette
      ?          help                             q  quit
    """
    import lake.api
    from lake.secrets import Permission
    from lake.storage import check_tenant
    from tui.app import AuditlakeApp

    session = lake.api.open(
        ctx.lake_path, as_=ctx.principal, home=ctx.home, interface="tui", buffered=True
    )
    with session:
        for t in tenant:
            check_tenant(t)
            session.principal.require(Permission.READ_EVENTS, t)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            fail("auditlake tui needs a terminal on stdin and stdout")
        AuditlakeApp(session, tenants=tenant, window=timedelta(minutes=window)).run()
