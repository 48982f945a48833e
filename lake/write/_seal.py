"""Sealing: each tenant's newly committed events checkpointed under a signed tree head.

Sealing is idempotent and serialised like appends, by a Delta app transaction on the
checkpoints table (`auditlake/seal/<tenant>` = the sealed size) committed against the
snapshot it read. It extends the tenant's tiles from the sealed size to the committed one
(from the leaf hashes an append just computed, else recomputed from the stored rows, which
must match their stored hashes) and appends one signed checkpoint row per tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from lake.contract import (
    CHECKPOINTS_PARTITIONS,
    CHECKPOINTS_SCHEMA,
    LEAF_FIELDS,
    StorageError,
    hash_leaves,
    hashes_to_bytes,
)
from lake.log import Checkpoint, NoteSigner, TileLog, sign_checkpoint, tree_root
from lake.storage import COMMIT_ATTEMPTS, Lake, check_tenant, retry_on_conflict, seal_app_id

Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class SealResult:
    """A checkpoint written for one tenant."""

    tenant: str
    tree_size: int
    root_hash: bytes
    note: str


def _leaf_hashes_from_lake(lake: Lake, table: DeltaTable, tenant: str, lo: int, hi: int) -> bytes:
    """Recompute leaf hashes of seq [lo, hi) from stored rows, refusing anything inconsistent."""
    files = lake.data_files(table, tenants={tenant}, min_seq=lo)
    rows = lake.read_rows(files, [*LEAF_FIELDS, "seq", "leaf_hash"])
    seqs = rows.column("seq")
    rows = rows.filter(pc.and_(pc.greater_equal(seqs, lo), pc.less(seqs, hi))).sort_by("seq")
    got = rows.column("seq").to_numpy()
    if len(got) != hi - lo or (len(got) and not np.array_equal(got, np.arange(lo, hi))):
        raise StorageError(
            f"tenant {tenant}: cannot seal seq {lo}..{hi - 1}: the stored rows have gaps or "
            "duplicates; run `auditlake verify`"
        )
    hashes = hash_leaves(rows.select(list(LEAF_FIELDS)))
    stored = hashes_to_bytes(rows.column("leaf_hash"))
    if hashes != stored:
        raise StorageError(
            f"tenant {tenant}: refusing to seal seq {lo}..{hi - 1}: stored rows do not match "
            "their leaf hashes; run `auditlake verify`"
        )
    return hashes


def _last_batch_id(lake: Lake, table: DeltaTable, tenant: str, size: int) -> str:
    files = lake.data_files(table, tenants={tenant}, min_seq=size - 1)
    rows = lake.read_rows(files, ["seq", "batch_id"])
    rows = rows.filter(pc.equal(rows.column("seq"), size - 1))
    return str(rows.column("batch_id")[0].as_py()) if rows.num_rows else "unknown"


def seal(
    lake: Lake,
    signer: NoteSigner,
    tenants: Iterable[str],
    *,
    known: dict[str, tuple[int, bytes]] | None = None,
    batch_id: str | None = None,
    progress: Progress = no_progress,
) -> list[SealResult]:
    """Checkpoint every tenant whose committed log is longer than its sealed log.

    `known` maps a tenant to (start, leaf hashes) the caller just wrote; when it covers
    exactly the unsealed range the lake is not re-read.
    """
    known = known or {}
    tenants = [check_tenant(t) for t in tenants]
    return retry_on_conflict(
        lambda: _seal_once(lake, signer, tenants, known, batch_id, progress),
        f"gave up sealing after {COMMIT_ATTEMPTS} attempts",
    )


def _seal_once(
    lake: Lake,
    signer: NoteSigner,
    tenants: list[str],
    known: dict[str, tuple[int, bytes]],
    batch_id: str | None,
    progress: Progress,
) -> list[SealResult]:
    """One attempt of `seal` on fresh snapshots; a lost race raises CommitFailedError."""
    checkpoints = lake.checkpoints_table()
    events = lake.events_table()
    rows: list[dict[str, object]] = []
    results: list[SealResult] = []
    txns: list[Transaction] = []
    for tenant in tenants:
        sealed = Lake.sealed_size(checkpoints, tenant)
        size = Lake.tree_size(events, tenant)
        if size <= sealed:
            continue
        start, hashes = known.get(tenant, (-1, b""))
        if start == sealed and len(hashes) == (size - sealed) * 32 and batch_id:
            last_batch = batch_id
        else:
            progress("seal", 0, size - sealed)
            hashes = _leaf_hashes_from_lake(lake, events, tenant, sealed, size)
            last_batch = _last_batch_id(lake, events, tenant, size)
        tiles = TileLog(lake, tenant)
        tiles.extend(sealed, hashes)
        root = tree_root(size, tiles.node_fn(size))
        row, txn = checkpoint_row(lake, tenant, size, root, [signer], last_batch)
        rows.append(row)
        results.append(SealResult(tenant, size, root, str(row["note"])))
        txns.append(txn)
    if not rows:
        return []
    commit_checkpoints(checkpoints, rows, txns, "checkpoints")
    progress("seal", 1, 1)
    return results


def checkpoint_row(
    lake: Lake,
    tenant: str,
    size: int,
    root: bytes,
    signers: Sequence[NoteSigner],
    batch_id: str,
    *,
    at: datetime | None = None,
) -> tuple[dict[str, object], Transaction]:
    """A signed checkpoint row of the tenant's log at `size`, and its seal transaction.

    All signers sign the same note (a key rotation's old and new key); the last one's
    name is recorded as the row's key. The note signs its moment (`at`, default now) in
    a `time` extension line: verify judges key validity on that, while the row's
    `sealed_at` (the same moment) is for display only, since anyone who can write the
    lake can rewrite a column.
    """
    moment = at or datetime.now(UTC)
    cp = Checkpoint.at(lake.origin(tenant), size, root, moment)
    note = sign_checkpoint(cp, list(signers))
    row: dict[str, object] = {
        "tenant": tenant,
        "tree_size": size,
        "root_hash": root,
        "batch_id": batch_id,
        "note": note,
        "key_name": signers[-1].name,
        "sealed_at": moment,
    }
    return row, Transaction(app_id=seal_app_id(tenant), version=size)


def commit_checkpoints(
    checkpoints: DeltaTable,
    rows: list[dict[str, object]],
    txns: list[Transaction],
    kind: str,
) -> None:
    """Commit checkpoint rows against this snapshot (a lost race raises CommitFailedError:
    run the caller's attempt under `retry_on_conflict`)."""
    write_deltalake(
        checkpoints,
        pa.Table.from_pylist(rows, schema=CHECKPOINTS_SCHEMA),
        mode="append",
        partition_by=CHECKPOINTS_PARTITIONS,
        commit_properties=CommitProperties(
            custom_metadata={"auditlake.kind": kind},
            app_transactions=txns,
            max_commit_retries=0,
        ),
    )
