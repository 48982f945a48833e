"""Each event id once per tenant, whatever its date: the id check of every append.

Events are partitioned by (tenant, UTC date). The check used to read only the partitions
of the batch's dates, so an id came in a second time under another date: stored twice,
`verify` clean, `prove` picking one of the two. This check does not depend on the
partition. Its index is one the Delta log already keeps: the least and greatest event_id
of every data file (column statistics delta-rs writes with each file; a truncated maximum
is rounded up, so it stays an upper bound). A batch's ids are looked up only in the
tenant's files whose range holds one of them, and only their event_id column is read.
Time-ordered ids (UUIDv7, and the ids assigned to events sent without one) prune to the
files of the batch's own time span. Random ids (UUIDv4) give every file a range spanning
nearly the whole id space: then a writer's in-process index of id fingerprints per file
(lake/storage/_idindex.py) narrows the files to read, after one read of the tenant's id column.

Nothing is persisted beside the Delta table, so there is no second index to keep in step
with it: a commit that failed leaves nothing that could make its retry look like a
duplicate (a retry dropped as a duplicate would be an event lost), and each attempt under
the per-tenant sequencer checks against the very snapshot it then commits against.

Same id, same event? An event whose id the tenant already has is a retry, and dropped,
when its content is identical: every leaf field but `received_at`, which each delivery
stamps anew. Otherwise it is a conflict, another event under a used id, which the caller
rejects. Inside one batch the same rule holds against the id's first occurrence. On an
encrypted lake the stored values are decrypted to be compared; a value whose key was
shredded compares equal (it can no longer be told apart, and must not come back).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from lake.contract import LEAF_FIELDS, Issue
from lake.storage import DataFile, Lake, narrow

ID_TAKEN: Final = "id already used by another event of this tenant"
# What makes two deliveries one event: the leaf without the time of receipt.
COMPARED: Final = tuple(f for f in LEAF_FIELDS if f != "received_at")
# Stored ids read per is_in pass (bounds memory when random ids make every file a candidate).
READ_ROWS: Final = 1 << 20

Keys: TypeAlias = pa.Array | pa.ChunkedArray


def event_keys(rows: pa.Table) -> Keys:
    """tenant NUL event_id of every row: an event's identity in the lake."""
    sep = pa.scalar("\x00", pa.string())
    return pc.binary_join_element_wise(rows.column("tenant"), rows.column("event_id"), sep)


def first_occurrence(keys: Keys) -> np.ndarray:
    """For every row, the index of the first row with the same key (itself if first)."""
    n = len(keys)
    unique = pc.unique(keys)
    if len(unique) == n:  # the usual case: one hash pass
        return np.arange(n, dtype=np.int64)
    codes = pc.index_in(keys, value_set=unique).to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.full(len(unique), n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
    return np.asarray(first[codes])


@dataclass
class IdCheck:
    """The rows of a batch whose (tenant, id) is not new, by what they turned out to be."""

    retry: np.ndarray  # identical to the stored event, or to the id's first row: dropped
    conflict: np.ndarray  # another event under a used id: rejected

    @property
    def drop(self) -> np.ndarray:
        return np.asarray(self.retry | self.conflict)

    def issues(self) -> list[Issue]:
        """One issue per conflicting row, indexed by its row in the batch."""
        return [Issue(int(i), "id", ID_TAKEN) for i in np.flatnonzero(self.conflict)]


def check_ids(
    lake: Lake,
    table: DeltaTable,
    events: pa.Table,
    keys: Keys,
    first: np.ndarray,
    *,
    plain: bool = True,
) -> IdCheck:
    """Classify the rows of `events` whose id the tenant has (in this snapshot) or reuses.

    `keys` and `first` are `event_keys` and `first_occurrence` of the batch. `plain`:
    `events` hold the values as sent (not yet encrypted), stored ones get decrypted.
    """
    n = events.num_rows
    retry = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    stored = stored_rows(lake, table, events, keys)
    in_lake = np.zeros(n, dtype=bool)
    if stored.num_rows:
        in_lake = pc.is_in(keys, value_set=stored.column("_k")).to_numpy(zero_copy_only=False)
    # A repeat of an id the lake does not have: against the batch's first row of that id.
    repeat = np.flatnonzero((first != np.arange(n)) & ~in_lake)
    if len(repeat):
        same = same_rows(events, repeat, events, first[repeat])
        retry[repeat], conflict[repeat] = same, ~same
    rows = np.flatnonzero(in_lake)
    if len(rows):
        mine = pa.table({"_k": pc.take(keys, pa.array(rows)), "_r": pa.array(rows)})
        pairs = mine.join(stored, "_k", use_threads=False)
        at = pairs.column("_r").to_numpy()
        if plain and lake.meta.get("encryption", {}).get("enabled"):
            pairs = _decrypted(lake, pairs)
        same_pair = same_rows(events, at, pairs, np.arange(pairs.num_rows), shredded=True)
        same = np.zeros(n, dtype=bool)
        np.logical_or.at(same, at, same_pair)
        retry[rows], conflict[rows] = same[rows], ~same[rows]
    return IdCheck(retry, conflict)


def candidate_files(files: Sequence[DataFile], ids_of: dict[str, list[str]]) -> list[DataFile]:
    """The files whose event_id range holds one of their tenant's `ids_of` (sorted)."""
    out = []
    for f in files:
        ids = ids_of.get(f.tenant)
        if not ids:
            continue
        if f.min_id is None or f.max_id is None:
            out.append(f)  # no statistics: it may hold anything
            continue
        i = bisect.bisect_left(ids, f.min_id)
        if i < len(ids) and ids[i] <= f.max_id:
            out.append(f)
    return out


def stored_rows(lake: Lake, table: DeltaTable, events: pa.Table, keys: Keys) -> pa.Table:
    """Stored rows (COMPARED columns and their key `_k`) sharing a key with `events`."""
    by_tenant = pa.table({"t": events.column("tenant"), "i": events.column("event_id")})
    grouped = by_tenant.group_by("t", use_threads=False).aggregate([("i", "distinct")])
    # Sorted as Python strings: code point order, the UTF-8 byte order of the statistics.
    ids_of: dict[str, list[str]] = {
        t: sorted(ids)
        for t, ids in zip(
            grouped.column("t").to_pylist(), grouped.column("i_distinct").to_pylist(), strict=True
        )
    }
    files = lake.data_files(table, tenants=set(ids_of), ids=True)
    # Random ids leave statistics little to prune: the in-process index narrows further.
    candidates = narrow(lake, candidate_files(files, ids_of), ids_of)
    wanted = pc.unique(keys)
    hit_files: dict[int, list[str]] = {}
    start = 0
    while start < len(candidates):
        group: list[DataFile] = []
        rows = 0
        while start < len(candidates) and (not group or rows < READ_ROWS):
            group.append(candidates[start])
            rows += candidates[start].num_records or 0
            start += 1
        parts = [lake.read_file(f, ["tenant", "event_id"]) for f in group]
        have = pa.concat_tables(parts)
        hit = pc.is_in(event_keys(have), value_set=wanted).to_numpy(zero_copy_only=False)
        if not hit.any():
            continue
        owner = np.repeat(np.arange(len(group)), [p.num_rows for p in parts])
        hit_ids = have.column("event_id").filter(pa.array(hit)).to_pylist()
        for k, event_id in zip(owner[hit].tolist(), hit_ids, strict=True):
            hit_files.setdefault(start - len(group) + k, []).append(event_id)
    found = []
    for k, ids in hit_files.items():
        # Whole columns, then is_in: a Parquet filter of thousands of ids (a batch sent
        # again) costs far more than the read.
        part = lake.read_file(candidates[k], list(COMPARED))
        found.append(part.filter(pc.is_in(part.column("event_id"), value_set=pa.array(ids))))
    if not found:
        return pa.table({"_k": pa.array([], pa.string())})
    rows_ = pa.concat_tables(found, promote_options="permissive")
    return rows_.append_column("_k", event_keys(rows_))


def _decrypted(lake: Lake, pairs: pa.Table) -> pa.Table:
    """Stored encrypted fields of `pairs` as plaintext (shredded: None, marked unknown)."""
    from lake.secrets import FIELDS, keyring_for

    ring = keyring_for(lake)
    tenants = pairs.column("tenant").to_pylist()
    ids = pairs.column("event_id").to_pylist()
    for name in FIELDS:
        if name not in pairs.column_names:
            continue
        raw = pairs.column(name)
        plain = pa.array(ring.decrypt_array(tenants, ids, name, raw.to_pylist()), pa.string())
        gone = pc.and_(pc.is_valid(raw), pc.is_null(plain))
        pairs = pairs.set_column(pairs.schema.get_field_index(name), name, plain)
        pairs = pairs.append_column(f"_shredded_{name}", gone)
    return pairs


def same_rows(
    a: pa.Table, a_rows: np.ndarray, b: pa.Table, b_rows: np.ndarray, *, shredded: bool = False
) -> np.ndarray:
    """Whether row a_rows[i] of `a` and b_rows[i] of `b` hold the same event (COMPARED).

    Nulls equal nulls. With `shredded`, a field `b` marks `_shredded_<name>` counts as equal.
    """
    same = np.ones(len(a_rows), dtype=bool)
    if not len(a_rows):
        return same
    ia, ib = pa.array(a_rows, pa.int64()), pa.array(b_rows, pa.int64())
    for name in COMPARED:
        x = pc.take(a.column(name), ia)
        y = pc.take(b.column(name), ib)
        if y.type != x.type:
            y = y.cast(x.type)
        equal = pc.or_(pc.fill_null(pc.equal(x, y), False), pc.and_(pc.is_null(x), pc.is_null(y)))
        if shredded and f"_shredded_{name}" in b.column_names:
            equal = pc.or_(equal, pc.take(b.column(f"_shredded_{name}"), ib))
        same &= equal.to_numpy(zero_copy_only=False)
    return same


def repeated_ids(lake: Lake, files: Sequence[DataFile]) -> list[tuple[str, list[int]]]:
    """Ids stored more than once among one tenant's `files`, each with its rows' seqs.

    For `verify`. Files are grouped where their event_id ranges overlap (statistics from
    `data_files(ids=True)`), and each group's id column is read on its own, so memory is
    bounded by the largest group: a few files with time-ordered ids, the whole tenant with
    random ones. Files that cannot be read are skipped (verify reports them).
    """
    order = sorted(files, key=lambda f: (f.min_id is not None, f.min_id or ""))
    groups: list[list[DataFile]] = []
    top: str | None = None
    for f in order:
        # A file without statistics may hold anything: it joins every group (one group).
        if groups and (f.min_id is None or top is None or f.min_id <= top):
            groups[-1].append(f)
            top = None if top is None or f.max_id is None else max(top, f.max_id)
        else:
            groups.append([f])
            top = f.max_id
    out: list[tuple[str, list[int]]] = []
    for group in groups:
        try:
            rows = lake.read_rows(group, ["event_id", "seq"])
        except (OSError, pa.ArrowException):
            continue
        counts = pc.value_counts(rows.column("event_id"))
        many = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        if not len(many):
            continue
        hit = rows.filter(pc.is_in(rows.column("event_id"), value_set=many))
        seqs: dict[str, list[int]] = {}
        for event_id, seq in zip(
            hit.column("event_id").to_pylist(), hit.column("seq").to_pylist(), strict=True
        ):
            seqs.setdefault(event_id, []).append(seq)
        out += [(i, sorted(x for x in s if x is not None)) for i, s in sorted(seqs.items())]
    return out
