"""`auditlake consume`: CLI wiring of the JetStream consumer (ingest/jetstream.py, source.py).

Registered on the `cli` group by auditlake.cli. nats-py is imported only when the command
runs (it is in the `scale` extra), so the rest of the CLI works without it.
"""

from __future__ import annotations

import signal
import threading

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import batch_options, format_option
from auditlake.cli.output import emit_json, emit_table
from lake.storage import check_tenant


@click.command()
@click.option(
    "--nats",
    "nats_url",
    envvar="AUDITLAKE_NATS_URL",
    default="nats://127.0.0.1:4222",
    show_default=True,
    help="NATS server with JetStream (credentials in the URL are never logged). "
    "Env: AUDITLAKE_NATS_URL.",
)
@click.option(
    "--stream",
    default="AUDIT",
    show_default=True,
    help="JetStream stream; producers publish to <stream in lower case>.<tenant>. "
    "Created (work queue, file storage) when missing.",
)
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="Only these tenants (repeat for several; default: every tenant).",
)
@batch_options(
    "Seal and commit a batch once about this many events are in hand.",
    "...or once the oldest of them is this many seconds old.",
)
@click.option(
    "--lease-ttl",
    type=click.FloatRange(1, 3600),
    default=10.0,
    show_default=True,
    help="Seconds a tenant's lease outlives a consumer that died (the first consumer of a "
    "stream sets it for all).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Exit once the stream holds nothing more for these tenants (drain mode).",
)
@format_option("table", "json")
@pass_ctx
@handle_errors
def consume(
    ctx: Ctx,
    nats_url: str,
    stream: str,
    tenants: tuple[str, ...],
    batch_events: int,
    batch_age: float,
    lease_ttl: float,
    once: bool,
    fmt: str,
) -> None:
    """Append events from a NATS JetStream stream to the lake, exactly once.

    Producers publish events to <stream>.<tenant> (e.g. audit.acme): NDJSON, a JSON array
    or one JSON object per message, or Arrow IPC from `auditlake serve
    --forward-to-nats`. A message is acknowledged only after its events are committed,
    sealed and on disk, and the stream position goes into the same commit, so a crash
    never loses or doubles an event. Invalid messages go to <stream>_rejected.<tenant>
    with the reasons in headers.

    Run several consumers to share the tenants: each tenant has one sequencer at a time
    (a lease in JetStream), taken over within --lease-ttl when its consumer dies.
    SIGTERM commits the batch in hand, releases the leases and exits 0.
    """
    ctx.require_operator("consume")
    for t in tenants:
        check_tenant(t)
    from ingest.jetstream import JetStreamSource, check_stream
    from ingest.source import ConsumeSettings
    from ingest.source import consume as run

    check_stream(stream)
    lake = ctx.open()
    signer = ctx.keys().active()
    settings = ConsumeSettings(
        batch_events=batch_events,
        batch_age_s=batch_age,
        once=once,
        tenants=frozenset(tenants) or None,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    source = JetStreamSource(nats_url, stream, lease_ttl_s=lease_ttl)
    try:
        totals = run(lake, signer, source, settings, stop)
    finally:
        source.close()
    if fmt == "json":
        emit_json(totals.as_dict())
        return
    summary = totals.as_dict()
    emit_table("consumed", list(summary), [list(summary.values())])
