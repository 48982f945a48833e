"""`auditlake optimize`: compact and Z-order the events table (no value changes)."""

from __future__ import annotations

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option
from auditlake.cli.output import emit_json, note, progress


@click.command()
@click.option("--tenant", multiple=True, help="Only this tenant (repeat for several).")
@click.option("--no-zorder", is_flag=True, help="Compact only, keeping the rows' order.")
@format_option("table", "json")
@pass_ctx
@handle_errors
def optimize(ctx: Ctx, tenant: tuple[str, ...], no_zorder: bool, fmt: str) -> None:
    """Compact small files and Z-order rows by (actor_id, action, time) for fast search.

    Rows move between files but no value changes: `auditlake verify` passes afterwards.
    Replaced files stay on disk (time travel and open search cursors keep working).
    """
    from lake.storage import optimize as run

    ctx.require_operator("optimize")
    with progress("optimize") as update:
        result = run(ctx.open(), tenants=list(tenant) or None, zorder=not no_zorder,
                     progress=update)  # fmt: skip
    if fmt == "json":
        emit_json(result.as_dict())
        return
    note(
        f"optimized {len(result.tenants)} tenant(s): {result.files_removed} file(s) "
        f"rewritten into {result.files_added}; table version {result.version_before} → "
        f"{result.version_after}"
    )
