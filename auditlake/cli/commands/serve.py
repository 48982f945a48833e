"""`auditlake serve` and `auditlake token create`: the HTTP collector and its tokens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import batch_options, listen_options, tenant_option
from auditlake.cli.output import ExitCode, fail


def _limit(flag: str, kind: Any, default: float, help_text: str) -> click.Option:
    return click.Option([flag], type=kind, default=default, show_default=True, help=help_text)


# The collector's limits, in the order --help lists them (after --batch-age).
LIMITS = (
    _limit("--max-body", click.IntRange(1024), 8 * 1024 * 1024,
           "Largest request body in bytes (413 beyond)."),
    _limit("--max-pending-events", click.IntRange(1), 500_000,
           "Events accepted but not yet in the lake before new requests get 503 + Retry-After."),
    _limit("--body-timeout", click.FloatRange(0.1), 10.0,
           "Seconds a client may take to send its body (408 beyond: slow clients hold no "
           "slot)."),
    _limit("--max-connections", click.IntRange(1), 1000,
           "Open connections at most (kept below the open-file limit); at the limit the "
           "oldest connection that has not sent a request is closed."),
    _limit("--header-timeout", click.FloatRange(0.1), 10.0,
           "Seconds a connection may take to send a request's headers before it is closed."),
    _limit("--drain-timeout", click.FloatRange(0.0), 30.0,
           "On SIGTERM, seconds to keep trying to commit what is pending (the rest stays "
           "in the write-ahead log for the next start, and the exit code is 1)."),
)  # fmt: skip


def _with_limits(command: click.Command) -> click.Command:
    """Insert LIMITS after --batch-age, where --help has always listed them."""
    at = next(i for i, p in enumerate(command.params) if p.name == "batch_age") + 1
    command.params[at:at] = list(LIMITS)
    return command


@_with_limits
@click.command()
@listen_options(8080)
@click.option(
    "--wal-dir",
    type=click.Path(file_okay=False),
    help="Write-ahead log directory (default: <config home>/wal/<lake name>).",
)
@batch_options(
    "Seal and commit a batch once this many events are pending.",
    "...or once the oldest pending event is this many seconds old.",
)
@click.option(
    "--forward-to-nats",
    metavar="URL",
    help="Publish accepted events to this NATS JetStream (202 once it has them) instead "
    "of the WAL and lake; `auditlake consume` appends them. No lake needed here.",
)
@click.option(
    "--forward-stream",
    default="AUDIT",
    show_default=True,
    help="JetStream stream to forward to (subjects: its name in lower case, .<tenant>).",
)
@pass_ctx
@handle_errors
def serve(
    ctx: Ctx,
    /,
    host: str,
    port: int,
    wal_dir: str | None,
    batch_events: int,
    batch_age: float,
    forward_to_nats: str | None,
    forward_stream: str,
    **limits: float,
) -> None:
    """Run the HTTP collector: POST /v1/events, GET /v1/health, GET /metrics.

    Events are validated, written to a write-ahead log and fsync'd before the 202; a
    batcher seals them into the lake by size or age. SIGTERM stops accepting, commits
    everything pending and exits 0; if some could not be committed (within
    --drain-timeout) it says so and exits 1: they stay in the write-ahead log and are
    committed on the next start. Tokens come from `auditlake token create`.

    With --forward-to-nats the 202 means stored in JetStream instead (503 + Retry-After
    while it is unreachable); nothing is kept here, so collectors scale out freely.
    """
    ctx.require_operator("serve")
    from ingest.acceptor import CollectorConfig
    from ingest.collector_app import serve as run_server

    lake = None if forward_to_nats else ctx.open()  # forwarding: a stateless HTTP tier
    wal = Path(wal_dir) if wal_dir else ctx.home / "wal" / (lake.name if lake else "forward")
    config = CollectorConfig(
        lake_path=lake.root if lake else ctx.lake_path,
        home=ctx.home,
        wal_dir=wal,
        batch_events=batch_events,
        batch_age_s=batch_age,
        max_body_bytes=int(limits["max_body"]),
        max_pending_events=int(limits["max_pending_events"]),
        body_timeout_s=limits["body_timeout"],
        validate_workers=os.cpu_count() or 1,
        forward_nats=forward_to_nats,
        forward_stream=forward_stream,
        max_connections=int(limits["max_connections"]),
        header_timeout_s=limits["header_timeout"],
        drain_timeout_s=limits["drain_timeout"],
    )
    if pending := run_server(config, host, port):
        fail(
            f"stopped with {pending} acknowledged event(s) not yet in the lake; they are "
            f"kept in the write-ahead log {wal} and committed on the next start",
            ExitCode.FINDING,
        )


@click.group()
def token() -> None:
    """Collector tokens, each bound to tenants (only a hash is stored)."""


@token.command("create")
@tenant_option(required=True, multiple=True)
@click.option("--name", help="A label for logs (never the secret).")
@pass_ctx
@handle_errors
def token_create(ctx: Ctx, tenant: tuple[str, ...], name: str | None) -> None:
    """Print a new token that may write events of these tenants; it is shown only once."""
    ctx.require_operator("token create")
    from ingest.tokens import TokenStore

    click.echo(TokenStore(ctx.home).create(list(tenant), name))
