"""The root `auditlake` group: its --lake and --as, also accepted after any subcommand.

Commands are registered on it in one place, auditlake/cli/__init__.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from auditlake.cli.context import Ctx
from auditlake.cli.output import fail, note
from lake.contract import LakeError
from lake.secrets import NEXT_FILE, check_principal

DEFAULT_LAKE = "./auditlake-data"

# The two global options, also accepted after any subcommand (`auditlake demo --lake D`,
# `auditlake keys list --as bob`): a user writes them where the README's examples put them.
# Given after the subcommand they win over the ones before it and over the environment.
GLOBAL_OPTIONS = {
    "--lake": ("lake_path", "Lake directory (or URI); same as the global --lake."),
    "--as": ("principal", "Principal to act as; same as the global --as."),
}


def _checked_principal(value: str) -> str:
    try:
        return check_principal(value)
    except LakeError as exc:
        fail(str(exc))


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Callback of a subcommand's --lake/--as: overrides what the group's option set."""
    if value is None:
        return
    obj = ctx.find_object(Ctx)
    if obj is None:  # `--help` of a subcommand: the group's callback has not run
        return
    attr = GLOBAL_OPTIONS[param.opts[0]][0]
    if attr == "principal":
        _checked_principal(value)
    setattr(obj, attr, value)


def _attach_globals(command: click.Command) -> None:
    """Give every subcommand (nested groups too) its own --lake and --as, once."""
    for sub in getattr(command, "commands", {}).values():
        taken = {o for p in sub.params for o in getattr(p, "opts", ())}
        for flag, (name, help_text) in GLOBAL_OPTIONS.items():
            if flag in taken:
                continue
            sub.params.append(
                click.Option(
                    [flag, f"_global_{name}"],
                    expose_value=False,
                    callback=_set_global,
                    help=help_text,
                )
            )
        _attach_globals(sub)


class AuditlakeGroup(click.Group):
    """The root group: before running, every subcommand learns --lake and --as."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _attach_globals(self)
        return super().main(*args, **kwargs)


@click.group(
    cls=AuditlakeGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--lake",
    envvar="AUDITLAKE_LAKE",
    default=DEFAULT_LAKE,
    show_default=True,
    help="Lake directory (or URI). Env: AUDITLAKE_LAKE.",
)
@click.option(
    "--as",
    "principal",
    envvar="AUDITLAKE_PRINCIPAL",
    default="admin",
    show_default=True,
    help="Principal to act as; the local operator is admin. Env: AUDITLAKE_PRINCIPAL.",
)
@click.version_option(package_name="auditlake")
@click.pass_context
def cli(ctx: click.Context, lake: str, principal: str) -> None:
    """auditlake: tamper-evident audit trails for many tenants, on Delta Lake.

    Events are appended as signed batches to a per-tenant Merkle log; anyone with the
    public key can prove that no event was changed, removed, reordered or inserted.

    \b
    Start here:
      auditlake demo                       build a demo lake with planted attacks
      auditlake init --name acme           create a lake and a signing key
      auditlake ingest events.jsonl        append events (jsonl/json/csv/parquet, - for stdin)
      auditlake verify                     check every event, checkpoint and signature
      auditlake search 'actor:alice outcome:failure created:>=7d'
      auditlake sql "SELECT action, count(*) FROM events GROUP BY 1"
      auditlake detect run                 run the detection rules (cron-safe)
      auditlake alerts list                what they found
      auditlake tui                        the investigator's terminal UI
      auditlake dashboard                  the auditor's web dashboard

    Private keys and trusted verifier keys live in the config home ($AUDITLAKE_HOME),
    never in the lake. Exit codes: 0 ok, 1 a check found a problem, 2 usage or input error.
    """
    _checked_principal(principal)
    ctx.obj = Ctx(lake, principal)
    if ctx.invoked_subcommand is not None and unfinished_shred(ctx.obj.home):
        note(
            "auditlake: warning: a `keys shred` stopped before it finished (the config home "
            "still holds the master key it was replacing): run the same `keys shred` again; "
            "until then a copy of the lake made before it can still be decrypted"
        )


def unfinished_shred(home: Path) -> bool:
    """Whether a shred's master-key rotation was interrupted: its new key is on disk beside
    the old one, which stays readable until the rotation ends."""
    return (home / NEXT_FILE).exists()
