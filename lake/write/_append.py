"""Signed appends: validated events → sequenced rows in Delta → tiles → signed checkpoint.

The per-tenant sequencer is a Delta app transaction (`auditlake/seq/<tenant>`) whose
version is the tenant's log size. A writer reads it from one snapshot, numbers its events
from there and commits data plus the new version atomically *against that snapshot*; a
concurrent writer of the same tenant makes the commit fail with a conflict, and we retry
from a fresh snapshot. Delta records app transactions but does not enforce them
(measured), so the check-then-commit on one snapshot is what keeps logs from forking; it
works on object storage, where file locks do not.

A streaming source (ingest/source.py) also records how far it got, per tenant, as app
transactions `auditlake/source/<source>/<tenant>` in the same commit as the events: what
is in the lake and how far the source was read can never disagree after a crash.

Sealing (`_seal`) is a second, idempotent step serialised the same way on the checkpoints
table. A crash between the two commits leaves events `unsealed` (verify reports it) until
the next append or `seal` completes the checkpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import (
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)

from lake.contract import (
    EVENTS_PARTITIONS,
    EVENTS_SCHEMA,
    LEAF_FIELDS,
    UTC_US,
    Issue,
    ValidationError,
    hash_leaves,
    leaf_hashes_array,
)
from lake.log import NoteSigner
from lake.secrets import encrypted, keyring_for
from lake.storage import (
    COMMIT_ATTEMPTS,
    EVENTS_COLUMNS,
    Lake,
    check_tenant,
    retry_on_conflict,
    seq_app_id,
)
from lake.write._seal import Progress, SealResult, no_progress, seal
from lake.write._unique import IdCheck, check_ids, event_keys, first_occurrence

SOURCE_APP_PREFIX = "auditlake/source/"
# Epoch microseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
MIN_MICROS: Final = -62_135_596_800_000_000
MAX_MICROS: Final = 253_402_300_799_999_999
TIME_RANGE: Final = "is outside 0001-01-01..9999-12-31 UTC"
MAX_ISSUES: Final = 50
Conflicts = Callable[[list[Issue]], None]


# ZSTD, with the events columns' own dictionary settings (lake.storage.EVENTS_COLUMNS).
EVENTS_WRITER: Final = WriterProperties(compression="ZSTD", column_properties=EVENTS_COLUMNS)


def _crash_point(name: str) -> None:
    """Die here, like a killed process would, when AUDITLAKE_CRASH_AT names this point.

    Lets the test suite crash a real ingest between its two commits and check recovery.
    """
    if os.environ.get("AUDITLAKE_CRASH_AT") == name:
        os._exit(86)


def source_app_id(source: str, tenant: str) -> str:
    """Delta app-transaction id whose version is how far `source` was read for `tenant`."""
    return f"{SOURCE_APP_PREFIX}{source}/{check_tenant(tenant)}"


def source_position(table: DeltaTable, source: str, tenant: str) -> int:
    """The source position recorded with the tenant's events in this snapshot (0: none)."""
    return int(table.transaction_version(source_app_id(source, tenant)) or 0)


def stamp_received(events: pa.Table, when: datetime | None = None) -> pa.Table:
    """`events` with a `received_at` column (`when`, else now) unless they carry one."""
    if "received_at" in events.column_names:
        return events
    stamp = pa.scalar(when or datetime.now(UTC), UTC_US)
    return events.append_column("received_at", pa.repeat(stamp, events.num_rows))


def new_batch_id() -> str:
    """A UUIDv7 string: time-ordered, so batch ids sort by when they were written."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass
class TenantAppend:
    """What one append did to one tenant's log."""

    tenant: str
    appended: int
    duplicates: int
    first_seq: int
    tree_size: int
    conflicts: int = 0  # events left out: their id was another event's (`on_conflict`)


@dataclass
class AppendResult:
    """The outcome of one batch."""

    batch_id: str
    tenants: list[TenantAppend] = field(default_factory=list)
    sealed: list[SealResult] = field(default_factory=list)

    @property
    def appended(self) -> int:
        return sum(t.appended for t in self.tenants)

    @property
    def duplicates(self) -> int:
        return sum(t.duplicates for t in self.tenants)

    @property
    def conflicts(self) -> int:
        return sum(t.conflicts for t in self.tenants)


def _check_times(events: pa.Table) -> None:
    """Refuse times whose UTC date is outside 0001-01-01..9999-12-31, naming each event.

    Validation keeps times to a far narrower range; this guards the lake itself (date
    partitions, and every reader's datetime) from whatever reaches append some other way.
    Plain int64 arithmetic: nothing here can overflow, whatever the value.
    """
    issues = []
    for name in ("time", "received_at"):
        micros = pc.cast(events.column(name), pa.int64()).to_numpy(zero_copy_only=False)
        micros = np.asarray(micros, dtype=np.float64)  # nulls (NaN) are not ours to judge
        bad = (micros < MIN_MICROS) | (micros > MAX_MICROS)
        issues += [Issue(int(i), name, TIME_RANGE) for i in np.flatnonzero(bad)[:MAX_ISSUES]]
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.index), source="batch")


def _per_tenant(events: pa.Table, mask: np.ndarray, tenants: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(tenants, 0)
    if mask.any():
        for t in pc.filter(events.column("tenant"), pa.array(mask)).to_pylist():
            counts[t] += 1
    return counts


def _sequence(batch: pa.Table, sizes: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """seq for every row (input order within a tenant) and each tenant's row positions.

    Vectorised on dictionary codes: numbering 1M events takes milliseconds, not a sort of
    a million Python strings.
    """
    encoded = pc.dictionary_encode(batch.column("tenant")).combine_chunks()
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes), dtype=np.int64) - starts[codes[order]]
    base = np.array([sizes[name] for name in names], dtype=np.int64)
    seq = base[codes] + rank
    positions = {name: order[starts[k] : starts[k] + counts[k]] for k, name in enumerate(names)}
    return seq, positions


def _storage_order(rows: pa.Table) -> pa.Table:
    """Rows by tenant, date, seq: each data file then holds a contiguous, sorted seq run.

    Sorted with numpy on integer keys (Arrow's multi-key sort on strings took ~1 s/1M).
    """
    tenant = pc.dictionary_encode(rows.column("tenant")).combine_chunks()
    # Dictionary codes follow first appearance; rank them so the order is by name.
    ranks = np.argsort(np.argsort(np.array(tenant.dictionary.to_pylist(), dtype=object)))
    keys = (
        rows.column("seq").to_numpy(),
        pc.cast(rows.column("event_date"), pa.int32()).to_numpy(),
        ranks[tenant.indices.to_numpy(zero_copy_only=False)],
    )
    return rows.take(pa.array(np.lexsort(keys)))


def append(
    lake: Lake,
    events: pa.Table,
    signer: NoteSigner,
    *,
    batch_id: str | None = None,
    received_at: datetime | None = None,
    dedupe: bool = True,
    source_positions: Mapping[str, int] | None = None,
    on_conflict: Conflicts | None = None,
    progress: Progress = no_progress,
) -> AppendResult:
    """Append validated events (wire.OUTPUT_SCHEMA) as one batch, then seal each tenant.

    `received_at` comes from the events when they carry that column (the collector stamps
    each request as it arrives), else from the argument, else now.

    An id is used once per tenant, whatever the event's date (lake/write/_unique.py). An event
    whose (tenant, id) the lake already has, with the same content (`received_at` aside),
    is a retry and skipped, so re-sending is safe; so is a repeat within the batch. An
    event under an id that another event of the tenant already uses is a conflict: a
    ValidationError naming each such event (its row in `events`, field `id`) and nothing
    written, or, given `on_conflict`, those events are handed to it (as issues, before the
    commit) and left out while the rest is appended. `dedupe=False` skips the check for
    writers whose ids are fresh by construction, such as the read audit.
    The batch is all or nothing: one Delta commit for all its rows.

    A time (or receipt time) outside 0001..9999 UTC is refused (ValidationError).

    `source_positions` maps app ids (`source_app_id`) to positions recorded in that same
    commit; a position never goes back (the larger of it and the snapshot's is kept). A
    batch whose events are all duplicates commits nothing, so records no position.
    """
    batch_id = batch_id or new_batch_id()
    if events.num_rows == 0:
        return AppendResult(batch_id)
    batch = _prepare(lake, events, signer, batch_id, received_at, dedupe, progress)
    batch.source_positions = dict(source_positions or {})
    batch.on_conflict = on_conflict
    return retry_on_conflict(
        lambda: _attempt(batch),
        f"gave up after {COMMIT_ATTEMPTS} attempts: other writers kept advancing these "
        "tenants' logs",
    )


@dataclass
class _Batch:
    """One append's events, hashed once, and what its attempts share."""

    lake: Lake
    signer: NoteSigner
    batch_id: str
    events: pa.Table  # as stored (encrypted on an encrypted lake)
    plain: pa.Table  # as received: ids are compared on these
    tenants: list[str]
    hash_rows: np.ndarray  # one 32-byte leaf hash per event
    keys: pa.Table | None  # event keys, when deduplicating
    first: np.ndarray | None  # first occurrence of each key within the batch
    progress: Progress
    reported: np.ndarray  # conflicts already handed to on_conflict
    source_positions: dict[str, int] = field(default_factory=dict)
    on_conflict: Conflicts | None = None


def _prepare(
    lake: Lake,
    events: pa.Table,
    signer: NoteSigner,
    batch_id: str,
    received_at: datetime | None,
    dedupe: bool,
    progress: Progress,
) -> _Batch:
    """Checks, encrypts and hashes the events, and seals what a crashed writer left."""
    # A collector stamps each request on arrival; a batch without stamps gets one now.
    events = stamp_received(events, received_at)
    _check_times(events)
    tenants = sorted(set(events.column("tenant").to_pylist()))
    for tenant in tenants:
        check_tenant(tenant)
    plain = events
    if encrypted(lake):
        # Before anything is hashed: the leaf covers the ciphertext (lake/secrets/_crypto.py).
        events = keyring_for(lake).encrypt_table(events)
    # Finish anything a crashed writer left unsealed before numbering new events.
    seal(lake, signer, tenants, progress=progress)
    progress("hash", 0, events.num_rows)
    hashes = hash_leaves(events.select(list(LEAF_FIELDS)))
    hash_rows = np.frombuffer(hashes, dtype=np.uint8).reshape(-1, 32)
    progress("hash", events.num_rows, events.num_rows)
    keys = event_keys(plain) if dedupe else None
    first = first_occurrence(keys) if keys is not None else None
    reported = np.zeros(events.num_rows, dtype=bool)
    return _Batch(
        lake, signer, batch_id, events, plain, tenants, hash_rows, keys, first, progress, reported
    )


def _check(b: _Batch, table: DeltaTable) -> IdCheck:
    """Which events are retries (dropped) or conflicts (refused, or handed to on_conflict)."""
    n = b.events.num_rows
    if b.keys is None or b.first is None:
        return IdCheck(np.zeros(n, bool), np.zeros(n, bool))
    check = check_ids(b.lake, table, b.plain, b.keys, b.first)
    if check.conflict.any():
        if b.on_conflict is None:
            raise ValidationError(check.issues()[:MAX_ISSUES], source="batch")
        fresh = check.conflict & ~b.reported
        if fresh.any():
            b.on_conflict(IdCheck(np.zeros_like(fresh), fresh).issues())
            b.reported |= fresh
    return check


def _attempt(b: _Batch) -> AppendResult:
    """Numbers the batch from a fresh snapshot and commits it; a lost race raises
    CommitFailedError (another writer advanced one of our tenants' logs)."""
    result = AppendResult(b.batch_id)
    table = b.lake.events_table()
    sizes = {t: Lake.tree_size(table, t) for t in b.tenants}
    check = _check(b, table)
    keep = ~check.drop
    batch = b.events.filter(pa.array(keep)) if check.drop.any() else b.events
    batch_hashes = b.hash_rows[keep]
    dups = _per_tenant(b.events, check.retry, b.tenants)
    conflicts = _per_tenant(b.events, check.conflict, b.tenants)
    if batch.num_rows == 0:
        result.tenants = [
            TenantAppend(t, 0, dups[t], sizes[t], sizes[t], conflicts[t]) for t in b.tenants
        ]
        return result
    seq, positions = _sequence(batch, sizes)
    new_sizes = {t: sizes[t] + len(positions.get(t, ())) for t in b.tenants}
    txns = [Transaction(app_id=seq_app_id(t), version=new_sizes[t]) for t in positions]
    txns += [
        Transaction(app_id=app, version=max(pos, int(table.transaction_version(app) or 0)))
        for app, pos in b.source_positions.items()
    ]
    b.progress("write", 0, batch.num_rows)
    _commit_events(table, _event_rows(batch, seq, batch_hashes, b.batch_id), txns, b.batch_id)
    b.progress("write", batch.num_rows, batch.num_rows)
    _crash_point("after-events-commit")
    result.tenants = [
        TenantAppend(t, len(positions.get(t, ())), dups[t], sizes[t], new_sizes[t], conflicts[t])
        for t in b.tenants
    ]
    known = {t: (sizes[t], batch_hashes[positions[t]].tobytes()) for t in positions}
    result.sealed = seal(
        b.lake, b.signer, list(positions), known=known, batch_id=b.batch_id, progress=b.progress
    )
    return result


def _event_rows(batch: pa.Table, seq: np.ndarray, hashes: np.ndarray, batch_id: str) -> pa.Table:
    """The stored rows of a batch: numbered, stamped with the batch id and leaf hashes."""
    rows = (
        batch.append_column("seq", pa.array(seq, pa.int64()))
        .append_column("batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), batch.num_rows))
        .append_column("leaf_hash", leaf_hashes_array(hashes.tobytes()))
        .select(EVENTS_SCHEMA.names)
        .cast(EVENTS_SCHEMA)
    )
    return _storage_order(rows)


def _commit_events(
    table: DeltaTable, rows: pa.Table, txns: list[Transaction], batch_id: str
) -> None:
    """One commit against `table`'s snapshot (delta-rs retries off: a race must fail)."""
    write_deltalake(
        table,
        rows,
        mode="append",
        partition_by=EVENTS_PARTITIONS,
        writer_properties=EVENTS_WRITER,
        commit_properties=CommitProperties(
            custom_metadata={"auditlake.batch_id": batch_id, "auditlake.kind": "events"},
            app_transactions=txns,
            max_commit_retries=0,
        ),
    )
