"""The loop that drains a broker into the lake: `auditlake consume`.

`auditlake consume` appends events that producers published to a broker. This module is
the broker-neutral loop; ingest/broker.py says what a broker must offer (`Source`),
ingest/decode.py turns its messages into events, ingest/jetstream.py is the NATS half.

* `consume`: the loop. Gather a batch by size or age, append it with the source positions
  in the same Delta commit, `os.sync`, and only then acknowledge.

Exactly once into the lake
--------------------------
A message is acknowledged only once the commit that holds its events is on disk. Each
commit also records, per tenant, the highest position it covers
(`lake.write.source_app_id`), so a message delivered again after a crash, at or below
that position, is acknowledged without being appended. The lake's (tenant, id)
deduplication is the second line of defence: an event sent without an id gets one
derived from its content alone (`lake.contract`), so a redelivery, or the same event by
another route, yields the same id.

Skipping by position is sound only if each tenant's messages are committed in position
order, with none missing. The source and this loop guarantee it together: the one
leaseholder of a tenant reads from the tenant's oldest unacknowledged message on, one
batch at a time; a batch it cannot commit under its lease, or a delivery that went astray
(a reconnect loses what was in flight), makes it give up the tenant, never skip ahead.
The benchmark found that last case: without it, a dropped connection lost events.

A leaseholder that lost its lease without noticing (a long pause) may still commit the
batch in hand: the lake's per-tenant sequencer keeps the log from forking, and
deduplication keeps each event once.

There is no "nak": a message left unacknowledged goes to the tenant's next leaseholder in
order, which is what a redelivery must preserve.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ingest.batching import BATCH_AGE_S, BATCH_EVENTS, Backoff
from ingest.broker import EVENTS_HEADER, Message, Source, is_arrow
from ingest.decode import Decoded, decode
from ingest.jsonlog import log
from lake.contract import Issue, LakeError, is_valid_tenant
from lake.log import NoteSigner
from lake.storage import Lake
from lake.write import AppendResult, append, seal, source_app_id, source_position

__all__ = ["ConsumeSettings", "ConsumeTotals", "consume"]


@dataclass
class ConsumeSettings:
    """How `consume` batches; defaults sized like the collector's."""

    batch_events: int = BATCH_EVENTS
    batch_age_s: float = BATCH_AGE_S
    max_fetch: int = 10_000  # messages asked for in one fetch round
    rebalance_s: float = 1.0  # how often leases are reconsidered between batches
    once: bool = False  # stop when the source holds nothing more for these tenants
    tenants: frozenset[str] | None = None


@dataclass
class ConsumeTotals:
    """What a `consume` run did."""

    messages: int = 0
    batches: int = 0
    appended: int = 0
    duplicates: int = 0  # events already in the lake, or repeated within a batch
    skipped: int = 0  # messages at or below the recorded position (delivered again)
    rejected: int = 0  # messages kept in the rejection subject
    conflicts: int = 0  # events under another event's id, kept there with their message

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _test_hook(point: str) -> None:
    """Die (AUDITLAKE_CRASH_AT) or stop until SIGCONT (AUDITLAKE_PAUSE_AT, once) here.

    Lets the tests crash or freeze a real consumer between its checks and its commit.
    """
    if os.environ.get("AUDITLAKE_CRASH_AT") == point:
        os._exit(86)
    if os.environ.get("AUDITLAKE_PAUSE_AT") == point:
        del os.environ["AUDITLAKE_PAUSE_AT"]
        os.kill(os.getpid(), signal.SIGSTOP)


def _events_in(m: Message) -> int:
    declared = m.headers.get(EVENTS_HEADER, "")
    if declared.isdigit():
        return int(declared)
    return 1 if is_arrow(m) else max(1, m.data.count(b"\n"))


def _gather(source: Source, settings: ConsumeSettings, stop: threading.Event) -> list[Message]:
    """Messages until the batch is big or old enough (or nothing came for rebalance_s)."""
    batch: list[Message] = []
    events = 0
    began = time.monotonic()
    first: float | None = None
    while not stop.is_set() and events < settings.batch_events:
        now = time.monotonic()
        if first is None:
            if now - began >= settings.rebalance_s:
                break
            wait = min(settings.rebalance_s, 0.5)
        else:
            left = first + settings.batch_age_s - now
            if left <= 0:
                break
            wait = min(left, 0.25)
        got = source.fetch(settings.max_fetch, max(wait, 0.01))
        if got:
            first = first if first is not None else time.monotonic()
            batch += got
            events += sum(_events_in(m) for m in got)
    return batch


def consume(
    lake: Lake,
    signer: NoteSigner,
    source: Source,
    settings: ConsumeSettings,
    stop: threading.Event,
) -> ConsumeTotals:
    """Move events from `source` into the lake until `stop` is set (or, `once`, drained).

    The batch in hand when `stop` is set is still committed and acknowledged.
    """
    totals = ConsumeTotals()
    positions: dict[str, int] = {}
    sealed = seal(lake, signer, settings.tenants or lake.tenants())
    log(event="start", source=source.name, sealed_on_start=[r.tenant for r in sealed])
    next_rebalance = 0.0
    backoff = Backoff()
    while not stop.is_set():
        try:
            if time.monotonic() >= next_rebalance:
                gained, lost = source.rebalance(settings.tenants)
                for t in lost:
                    positions.pop(t, None)
                if gained:
                    # Read once the lease is ours (only a stale holder could still advance
                    # it; deduplication covers that). A tenant without one skips nothing.
                    table = lake.events_table()
                    positions.update(
                        {t: source_position(table, source.name, t) for t in gained
                         if is_valid_tenant(t)}
                    )  # fmt: skip
                next_rebalance = time.monotonic() + settings.rebalance_s
            batch = _gather(source, settings, stop)
            done = not batch and settings.once and source.drained(settings.tenants)
        except LakeError as exc:
            # E.g. the broker restarting (its client reconnects). A failed fetch gave up
            # every tenant, so nothing in hand is lost: it goes to the next holder.
            wait = backoff.wait_s()
            log(event="source_error", error=str(exc), retry_in_s=wait)
            stop.wait(wait)
            next_rebalance = 0.0
            continue
        backoff.reset()
        if done:
            break
        if batch:
            # Raises only when stopping with a batch it could not commit (left unacknowledged).
            _commit(lake, signer, source, batch, positions, totals, stop)
    log(event="stop", **totals.as_dict())
    return totals


def _reject_conflicts(
    source: Source, messages: Sequence[Message], decoded: Decoded
) -> Callable[[list[Issue]], None]:
    """What append calls with the events whose id another event of the tenant has: each
    goes to the rejection subject with its message, before the commit (the message's
    other events are appended; sent again, they are retries and skipped)."""

    def reject(issues: list[Issue]) -> None:
        by_message: dict[int, list[Issue]] = {}
        for issue in issues:
            k = int(decoded.owner[issue.index])
            local = int(decoded.local[issue.index])
            by_message.setdefault(k, []).append(Issue(local, issue.field, issue.message))
        for k, found in sorted(by_message.items()):
            m = messages[k]
            source.reject(m, found)
            log(event="rejected", subject=m.subject, position=m.position, issues=len(found),
                fields=["id"])  # fmt: skip

    return reject


def _commit(
    lake: Lake,
    signer: NoteSigner,
    source: Source,
    batch: list[Message],
    positions: dict[str, int],
    totals: ConsumeTotals,
    stop: threading.Event,
) -> None:
    """Commit a batch, then acknowledge it; retry until done, or until its leases go."""
    decoded: Decoded | None = None
    backoff = Backoff()
    while True:
        kept = _drop_lost(source, batch, positions)
        if len(kept) != len(batch):
            batch, decoded = kept, None
        if not batch:
            return
        fresh = [m for m in batch if m.position > positions.get(m.tenant, 0)]
        if decoded is None:
            decoded = decode(fresh, source.name)
        _test_hook("consume-before-commit")
        started = time.perf_counter()
        try:
            result = _append_and_ack(lake, signer, source, batch, fresh, decoded)
        except (LakeError, OSError) as exc:
            if stop.is_set():
                # Shutting down with a batch we cannot commit: leave it to the next holder.
                for t in {m.tenant for m in batch}:
                    source.release(t)
                raise
            wait = backoff.wait_s()
            log(event="commit_failed", error=str(exc), retry_in_s=wait)
            stop.wait(wait)
            continue
        for m in fresh:
            if m.tenant in positions:
                positions[m.tenant] = max(positions[m.tenant], m.position)
        _count(totals, batch, len(fresh), decoded, result, time.perf_counter() - started)
        return


def _drop_lost(source: Source, batch: list[Message], positions: dict[str, int]) -> list[Message]:
    """The batch without the messages of tenants whose lease is not (certainly) ours."""
    lost = {m.tenant for m in batch if not source.holds(m.tenant)}
    if not lost:
        return batch
    # Not ours any more (or not certainly): leave these messages to the next holder.
    log(event="lease_lost", tenants=sorted(lost),
        messages=sum(m.tenant in lost for m in batch))  # fmt: skip
    for t in lost:
        source.release(t)
        positions.pop(t, None)
    return [m for m in batch if m.tenant not in lost]


def _append_and_ack(
    lake: Lake,
    signer: NoteSigner,
    source: Source,
    batch: list[Message],
    fresh: list[Message],
    decoded: Decoded,
) -> AppendResult | None:
    """Reject, append (with the source positions in the same commit), sync, acknowledge."""
    top: dict[str, int] = {}
    for m in fresh:
        top[m.tenant] = max(top.get(m.tenant, 0), m.position)
    marks = {source_app_id(source.name, t): p for t, p in top.items() if is_valid_tenant(t)}
    for m, issues in decoded.rejected:
        source.reject(m, issues)
    result = None
    if decoded.events.num_rows:
        result = append(
            lake,
            decoded.events,
            signer,
            source_positions=marks,
            on_conflict=_reject_conflicts(source, fresh, decoded),
        )
        # delta-rs does not fsync: the events are on disk before the broker forgets them.
        os.sync()
    source.ack(batch)
    return result


def _count(
    totals: ConsumeTotals,
    batch: list[Message],
    fresh: int,
    decoded: Decoded,
    result: AppendResult | None,
    seconds: float,
) -> None:
    """Add a committed batch to the totals, and log it."""
    for m, issues in decoded.rejected:
        log(event="rejected", subject=m.subject, position=m.position, issues=len(issues),
            fields=sorted({i.field for i in issues}))  # fmt: skip
    appended = result.appended if result else 0
    duplicates = decoded.repeats + (result.duplicates if result else 0)
    totals.messages += len(batch)
    totals.batches += 1
    totals.skipped += len(batch) - fresh
    totals.rejected += len(decoded.rejected)
    totals.appended += appended
    totals.conflicts += result.conflicts if result else 0
    totals.duplicates += duplicates
    log(
        event="commit",
        batch_id=result.batch_id if result else None,
        messages=len(batch),
        events=appended,
        duplicates=duplicates,
        skipped=len(batch) - fresh,
        rejected=len(decoded.rejected),
        seconds=round(seconds, 4),
    )
