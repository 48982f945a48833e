"""Which data files may hold an id, when their statistics cannot say: an in-process index.

The id check (lake/write/_unique.py) prunes a tenant's files by their min/max event_id. Random
ids (UUIDv4) defeat that: every file's range spans nearly the whole id space, so every
append would read the tenant's whole id column again (measured at 1M events: a 10k batch
went from 0.08 to 0.24 s, and it grows with the lake). Writers that append again and again
(the collector, `consume`) keep here a 64-bit fingerprint of every id of the files they
have read, with the file it came from, so the next append reads only files that were
added since and the few whose fingerprints match.

Only committed data files are indexed, each by its path, and Delta data files never
change: an entry can go stale only by its file leaving the table (retention, optimize),
and hits in files absent from the snapshot at hand are ignored. Nothing is persisted, so
a failed commit leaves nothing behind, and a writer that starts afresh reads once.
Fingerprints only narrow the files to read: a match is confirmed by reading the file, and
an id always has the same fingerprint, so a stored id is never missed. Memory: 12 bytes
per indexed id, held only for tenants whose ids the statistics could not prune.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa

from lake.storage._lake import DataFile, Lake

# Below this many rows in the candidate files, reading them is cheaper than indexing.
MIN_ROWS: Final = 8_192


def fingerprints(ids: Sequence[str]) -> np.ndarray:
    """A 64-bit BLAKE2b fingerprint of each id (uint64)."""
    digest = hashlib.blake2b
    raw = b"".join(digest(i.encode(), digest_size=8).digest() for i in ids)
    return np.frombuffer(raw, dtype=np.uint64).copy() if raw else np.zeros(0, np.uint64)


@dataclass
class TenantIndex:
    """Fingerprints of the ids of some of one tenant's files, as sorted runs."""

    ordinal: dict[str, int] = field(default_factory=dict)  # file path -> its number
    paths: list[str] = field(default_factory=list)
    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (fps, file nos)

    def add(self, files: Sequence[DataFile], ids: Sequence[Sequence[str]]) -> None:
        """Index the ids of `files` (ids[i] are those of files[i])."""
        fps, owners = [], []
        for f, of_file in zip(files, ids, strict=True):
            self.ordinal[f.path] = len(self.paths)
            self.paths.append(f.path)
            fps.append(fingerprints(of_file))
            owners.append(np.full(len(of_file), self.ordinal[f.path], dtype=np.uint32))
        if not fps:
            return
        run = np.concatenate(fps), np.concatenate(owners)
        order = np.argsort(run[0], kind="stable")
        self.runs.append((run[0][order], run[1][order]))
        # Keep few runs: merge while the newest is at least half the one before it.
        while len(self.runs) > 1 and len(self.runs[-1][0]) * 2 >= len(self.runs[-2][0]):
            (a, fa), (b, fb) = self.runs[-2], self.runs[-1]
            merged = np.concatenate([a, b])
            order = np.argsort(merged, kind="stable")
            self.runs[-2:] = [(merged[order], np.concatenate([fa, fb])[order])]

    def files_of(self, ids: Sequence[str]) -> set[str]:
        """Paths of indexed files holding an id with the fingerprint of one of `ids`."""
        wanted = fingerprints(ids)
        out: set[int] = set()
        for fps, owners in self.runs:
            lo = np.searchsorted(fps, wanted, side="left")
            hi = np.searchsorted(fps, wanted, side="right")
            for a, b in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True):
                out.update(owners[a:b].tolist())
        return {self.paths[k] for k in out}


_INDEXES: weakref.WeakKeyDictionary[Lake, dict[str, TenantIndex]] = weakref.WeakKeyDictionary()


def narrow(lake: Lake, files: Sequence[DataFile], ids_of: dict[str, list[str]]) -> list[DataFile]:
    """The files among `files` (candidates by statistics) that may hold one of their
    tenant's `ids_of`, through the lake's in-process index (files not in it are read and
    added first). Tenants whose candidates are few are passed through as they are."""
    indexes = _INDEXES.setdefault(lake, {})
    out: list[DataFile] = []
    by_tenant: dict[str, list[DataFile]] = {}
    for f in files:
        by_tenant.setdefault(f.tenant, []).append(f)
    for tenant, mine in by_tenant.items():
        if tenant not in indexes and sum(f.num_records or 0 for f in mine) < MIN_ROWS:
            out += mine
            continue
        index = indexes.setdefault(tenant, TenantIndex())
        missing = [f for f in mine if f.path not in index.ordinal]
        if missing:
            read = [lake.read_file(f, ["event_id"]).column("event_id") for f in missing]
            index.add(missing, [_strings(c) for c in read])
        hit = index.files_of(ids_of.get(tenant, []))
        out += [f for f in mine if f.path in hit]
    return out


def _strings(column: pa.ChunkedArray) -> list[str]:
    return [str(v) for v in column.to_pylist() if v is not None]
