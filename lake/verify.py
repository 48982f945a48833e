"""Full integrity check of a lake: every event, every checkpoint, every signature.

For each tenant:

1. Recompute every leaf from the stored row (never trusting the stored `leaf_hash`).
2. Check each checkpoint's signed note against *trusted* keys only (config home or
   `--trusted-key`); a signature that verifies only with a key published inside the lake
   is `untrusted_key`. Check the note agrees with its row and that sizes only grow.
3. Take the stored level-0 hash tiles as the expected leaf sequence only if their roots
   match every signed checkpoint (then they are as authentic as the signatures), and
   compare each row against them. This pinpoints the event behind a failure:
   `modified`, `reordered`, `duplicate`, `inserted`, `missing`, `unsealed`. Without usable
   tiles, roots are rebuilt from the rows in seq order and compared instead.
4. Compare against checkpoints exported earlier (`--since-checkpoint`) to catch rollback
   of the newest batches, which leaves the lake self-consistent.

A damaged lake never raises: an unreadable data file is itself a finding.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.config import KeyWindow
from lake.errors import LakeError, NoteError, StorageError, UsageError
from lake.leaf import hash_leaves, hashes_to_bytes
from lake.merkle import MerkleLevels
from lake.note import Checkpoint, VerifierKey, parse_note, verify_note
from lake.schema import LEAF_FIELDS
from lake.storage import Lake
from lake.tiles import TILE_HEIGHT, TileLog

MAX_FINDINGS_PER_KIND = 50
READ_THREADS = 4
# Below this many events a process pool costs more (interpreter start, imports) than it saves.
PARALLEL_MIN_EVENTS = 300_000
ROW_COLUMNS = [*LEAF_FIELDS, "event_date", "seq", "batch_id", "leaf_hash"]

Progress = Callable[[int, int], None]


@dataclass
class Finding:
    """One problem, located as precisely as the evidence allows."""

    tenant: str
    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None
    batch_id: str | None = None
    file: str | None = None
    tree_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class TenantReport:
    """What verify found for one tenant."""

    tenant: str
    events: int = 0
    sealed_size: int = 0
    checkpoints: int = 0
    key_names: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        shown = sum(1 for f in self.findings if f.kind == finding.kind)
        if shown >= MAX_FINDINGS_PER_KIND:
            self.suppressed[finding.kind] = self.suppressed.get(finding.kind, 0) + 1
        else:
            self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "events": self.events,
            "sealed_size": self.sealed_size,
            "checkpoints": self.checkpoints,
            "key_names": self.key_names,
            "findings": [f.as_dict() for f in self.findings],
            "suppressed": self.suppressed,
        }


@dataclass
class Report:
    """The outcome of `verify` over some tenants."""

    lake: str
    tenants: list[TenantReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tenants)

    @property
    def findings(self) -> list[Finding]:
        return [f for t in self.tenants for f in t.findings]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lake": self.lake,
            "ok": self.ok,
            "events": sum(t.events for t in self.tenants),
            "findings": len(self.findings) + sum(sum(t.suppressed.values()) for t in self.tenants),
            "tenants": [t.as_dict() for t in self.tenants],
        }


@dataclass
class _Cp:
    size: int
    root: bytes
    batch_id: str
    key_name: str
    sealed_at: Any
    trusted: bool


def _origin_tenant(lake: Lake, origin: str) -> str | None:
    prefix = f"auditlake/{lake.name}/"
    return origin[len(prefix) :] if origin.startswith(prefix) else None


def parse_exported(text: str) -> list[str]:
    """Split a file of one or more exported signed checkpoints into notes."""
    notes: list[str] = []
    current: list[str] = []
    in_sigs = False
    for line in text.splitlines(keepends=True):
        if in_sigs and not line.startswith("— "):
            notes.append("".join(current))
            current, in_sigs = [], False
        if line == "\n" and current:
            in_sigs = True
        if line.strip() or current:
            current.append(line)
    if current:
        notes.append("".join(current))
    return [n for n in notes if n.strip()]


def verify_lake(
    lake: Lake,
    trusted: Sequence[VerifierKey],
    *,
    tenants: Sequence[str] | None = None,
    since: Sequence[str] = (),
    progress: Progress | None = None,
    workers: int = 1,
    witness_keys: Sequence[Any] = (),
    min_witnesses: int = 0,
    windows: Mapping[str, KeyWindow] | None = None,
) -> Report:
    """Verify the lake (or some tenants) against trusted keys and exported checkpoints.

    With `workers` > 1, lakes of PARALLEL_MIN_EVENTS or more are verified in that many
    processes, a tenant at a time ("spawn": a calling script needs the usual
    `if __name__ == "__main__":` guard; the CLI passes one worker per core).
    """
    report = Report(lake.root)
    events_table = lake.events_table()
    all_files = lake.data_files(events_table)
    cps_all = lake.read_checkpoints()
    known = sorted({f.tenant for f in all_files} | set(cps_all.column("tenant").to_pylist()))
    exported: dict[str, list[Checkpoint]] = {}
    since_findings: list[Finding] = []
    for note in since:
        _exported(lake, note, trusted, exported, since_findings)
    wanted = list(tenants) if tenants is not None else sorted(set(known) | set(exported))
    unknown = [t for t in wanted if t not in known and t not in exported]
    if tenants is not None and unknown:
        # A misspelt tenant must not make a cron job pass: say so instead of "ok".
        raise UsageError(f"no events or checkpoints for tenant(s): {', '.join(unknown)}")
    total = sum(f.num_records or 0 for f in all_files if f.tenant in set(wanted))
    done = 0
    published = _published(lake)
    from lake.retention import removed_ranges

    removed = removed_ranges(lake)
    events_of = {t: sum(f.num_records or 0 for f in all_files if f.tenant == t) for t in wanted}
    workers = min(workers, len(wanted)) if total >= PARALLEL_MIN_EVENTS else 1
    reports: dict[str, TenantReport] = {}
    if workers > 1 and len(wanted) > 1:
        # One process per core, tenants largest first: leaf and tree hashing hold the GIL.
        ctx = multiprocessing.get_context("spawn")
        keys = [k.encode() for k in trusted]
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {
                t: pool.submit(
                    _verify_in_worker,
                    lake.root,
                    t,
                    keys,
                    exported.get(t, []),
                    [f for f in all_files if f.tenant == t],
                    cps_all.filter(pc.equal(cps_all.column("tenant"), t)),
                    removed.get(t, []),
                    dict(windows or {}),
                )
                for t in sorted(wanted, key=lambda t: -events_of[t])
            }
            for t, fut in futures.items():
                reports[t] = fut.result()
                done += events_of[t]
                if progress:
                    progress(done, total)
    else:
        for tenant in wanted:
            tr = TenantReport(tenant)
            files = [f for f in all_files if f.tenant == tenant]
            cps = cps_all.filter(pc.equal(cps_all.column("tenant"), tenant))
            _verify_tenant(
                lake,
                tenant,
                files,
                cps,
                trusted,
                published,
                exported.get(tenant, []),
                tr,
                removed.get(tenant, []),
                windows,
            )
            reports[tenant] = tr
            done += events_of[tenant]
            if progress:
                progress(done, total)
    for tenant in wanted:
        tr = reports[tenant]
        for f in since_findings:
            if f.tenant == tenant:
                tr.add(f)
        report.tenants.append(tr)
    if witness_keys or min_witnesses:
        for tr in report.tenants:
            cps = cps_all.filter(pc.equal(cps_all.column("tenant"), tr.tenant))
            _check_witnesses(lake, tr, cps, witness_keys, min_witnesses)
    for f in since_findings:
        if f.tenant not in set(wanted) and tenants is None:
            tr = TenantReport(f.tenant)
            tr.add(f)
            report.tenants.append(tr)
    return report


def _verify_in_worker(
    root: str,
    tenant: str,
    trusted: list[str],
    exported: list[Checkpoint],
    files: list[Any],
    cps: pa.Table,
    removed: list[tuple[int, int]],
    windows: dict[str, KeyWindow],
) -> TenantReport:
    """Verify one tenant in a worker process (top-level so it can be pickled).

    The parent's snapshot (file list, checkpoints) is passed in, so every worker checks
    the same version of the lake and none re-reads the Delta log.
    """
    lake = Lake.open(root)
    keys = [VerifierKey.parse(k) for k in trusted]
    tr = TenantReport(tenant)
    _verify_tenant(lake, tenant, files, cps, keys, _published(lake), exported, tr, removed, windows)
    return tr


def _published(lake: Lake) -> list[VerifierKey]:
    out = []
    for text in lake.published_keys:
        try:
            out.append(VerifierKey.parse(text))
        except NoteError:
            continue
    return out


def _exported(
    lake: Lake,
    note: str,
    trusted: Sequence[VerifierKey],
    out: dict[str, list[Checkpoint]],
    findings: list[Finding],
) -> None:
    try:
        text, _ = parse_note(note)
        cp = Checkpoint.parse(text)
    except NoteError as exc:
        raise NoteError(f"--since-checkpoint: not a signed checkpoint ({exc})") from None
    tenant = _origin_tenant(lake, cp.origin)
    if tenant is None:
        raise NoteError(
            f"--since-checkpoint: origin {cp.origin!r} is not a log of lake {lake.name!r}"
        )
    try:
        verify_note(note, trusted)
    except NoteError as exc:
        findings.append(
            Finding(
                tenant,
                "bad_signature",
                f"exported checkpoint does not verify: {exc}",
                tree_size=cp.tree_size,
            )
        )
        return
    out.setdefault(tenant, []).append(cp)


def _check_signatures(
    lake: Lake,
    tenant: str,
    cps: pa.Table,
    trusted: Sequence[VerifierKey],
    published: Sequence[VerifierKey],
    tr: TenantReport,
    windows: Mapping[str, KeyWindow] | None = None,
) -> list[_Cp]:
    out: list[_Cp] = []
    # In sealing order, so that a key announced by a rotation checkpoint (signed by a
    # trusted key and the new one) is trusted for the checkpoints after it.
    trusted_now = list(trusted)
    valid_for = dict(windows or {})
    rows = sorted(cps.to_pylist(), key=lambda r: (r["sealed_at"], r["tree_size"]))
    for row in rows:
        size = int(row["tree_size"])
        where = {"tree_size": size, "batch_id": row["batch_id"]}
        try:
            text, _ = parse_note(row["note"])
            cp = Checkpoint.parse(text)
        except NoteError as exc:
            tr.add(
                Finding(tenant, "bad_checkpoint", f"checkpoint note is malformed: {exc}", **where)
            )
            continue
        if (
            cp.origin != lake.origin(tenant)
            or cp.tree_size != size
            or cp.root_hash != row["root_hash"]
        ):
            tr.add(
                Finding(
                    tenant,
                    "bad_checkpoint",
                    "checkpoint note disagrees with its row (origin, size or root)",
                    **where,
                )
            )
            continue
        trusted_ok = False
        try:
            vn = verify_note(row["note"], trusted_now, allow_unverified=True)
        except NoteError as exc:
            tr.add(Finding(tenant, "bad_signature", f"checkpoint signature: {exc}", **where))
            continue
        at = row["sealed_at"]
        valid = [k for k in vn.verified if valid_for.get(k.encode(), KeyWindow()).allows(at)]
        trusted_ok = bool(valid)
        if vn.verified and not valid:
            why = "; ".join(
                f"{k.name}: {valid_for.get(k.encode(), KeyWindow()).describe()}"
                for k in vn.verified
            )
            tr.add(
                Finding(
                    tenant,
                    "key_not_valid",
                    f"checkpoint sealed at {at:%Y-%m-%dT%H:%M:%SZ} is signed only by keys "
                    f"outside their validity ({why})",
                    **where,
                )
            )
            out.append(_Cp(size, cp.root_hash, row["batch_id"], row["key_name"], at, False))
            continue
        if trusted_ok and vn.unverified:
            _follow_announcements(row["note"], vn.unverified, published, at, trusted_now, valid_for)
        if not trusted_ok:
            names = ", ".join(sorted({s.name for s in vn.unverified})) or "nobody"
            try:
                pv = verify_note(row["note"], published, allow_unverified=True)
                found = bool(pv.verified)
            except NoteError:
                tr.add(
                    Finding(
                        tenant,
                        "bad_signature",
                        f"checkpoint signature by {names} does not verify",
                        **where,
                    )
                )
                continue
            detail = "its key is published only inside the lake" if found else "the key is unknown"
            tr.add(
                Finding(
                    tenant,
                    "untrusted_key",
                    f"checkpoint signed by {names}, which is not a trusted key ({detail})",
                    **where,
                )
            )
        out.append(
            _Cp(size, cp.root_hash, row["batch_id"], row["key_name"], row["sealed_at"], trusted_ok)
        )
    # sizes must only grow in sealing order, and one size has one root
    by_time = sorted(out, key=lambda c: (c.sealed_at, c.size))
    for prev, cur in itertools.pairwise(by_time):
        if cur.size < prev.size:
            tr.add(
                Finding(
                    tenant,
                    "bad_chain",
                    f"checkpoint of size {cur.size} was sealed after one of size {prev.size}",
                    tree_size=cur.size,
                    batch_id=cur.batch_id,
                )
            )
    roots: dict[int, bytes] = {}
    for c in out:
        if roots.setdefault(c.size, c.root) != c.root:
            tr.add(
                Finding(
                    tenant, "fork", f"two checkpoints of size {c.size} differ", tree_size=c.size
                )
            )
    return out


def _read_rows(lake: Lake, files: list[Any], tenant: str, tr: TenantReport) -> pa.Table | None:
    """Read a tenant's data files concurrently (Parquet decoding releases the GIL)."""

    def one(f: Any) -> pa.Table | Finding:
        try:
            return lake.read_file(f, ROW_COLUMNS)
        except (OSError, pa.ArrowException, LakeError) as exc:
            reason = (
                "is missing" if isinstance(exc, FileNotFoundError) else f"is unreadable ({exc})"
            )
            return Finding(tenant, "unreadable_file", f"data file {f.path} {reason}", file=f.path)

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        results = list(pool.map(one, files))
    parts = [r for r in results if isinstance(r, pa.Table)]
    for r in results:
        if isinstance(r, Finding):
            tr.add(r)
    if not parts:
        return None
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except pa.ArrowException as exc:
        tr.add(Finding(tenant, "unreadable_file", f"data files do not share a schema ({exc})"))
        return None


def _verify_tenant(
    lake: Lake,
    tenant: str,
    files: list[Any],
    cps_table: pa.Table,
    trusted: Sequence[VerifierKey],
    published: Sequence[VerifierKey],
    exported: list[Checkpoint],
    tr: TenantReport,
    removed: Sequence[tuple[int, int]] = (),
    windows: Mapping[str, KeyWindow] | None = None,
) -> None:
    cps = _check_signatures(lake, tenant, cps_table, trusted, published, tr, windows)
    tr.checkpoints = len(cps)
    tr.key_names = sorted({c.key_name for c in cps})
    sealed = max((c.size for c in cps), default=0)
    tr.sealed_size = sealed

    rows = _read_rows(lake, files, tenant, tr)
    n = rows.num_rows if rows is not None else 0
    tr.events = n
    if rows is not None and n:
        computed = np.frombuffer(hash_leaves(rows.select(list(LEAF_FIELDS))), np.uint8).reshape(
            n, 32
        )
        stored = _hash_matrix(rows.column("leaf_hash"))
        seq = rows.column("seq").to_numpy(zero_copy_only=False).astype(np.int64)
        event_ids = rows.column("event_id")
        batches = rows.column("batch_id")
        _check_dates(rows, tenant, tr)
    else:
        computed = np.zeros((0, 32), np.uint8)
        stored = computed
        seq = np.zeros(0, np.int64)
        event_ids = pa.array([], pa.string())
        batches = pa.array([], pa.string())

    def locate(i: int) -> dict[str, Any]:
        return {
            "seq": int(seq[i]),
            "event_id": event_ids[i].as_py(),
            "batch_id": batches[i].as_py(),
        }

    # The expected leaves: stored tiles, if every checkpoint vouches for them.
    expected: np.ndarray | None = None
    levels: MerkleLevels | None = None
    if sealed:
        try:
            tiles = TileLog(lake, tenant)
            t0 = tiles.level0(sealed)
            lv = MerkleLevels.from_concatenated(t0)
            if all(lv.root(c.size) == c.root for c in cps):
                expected = np.frombuffer(t0, np.uint8).reshape(sealed, 32)
                levels = lv
                _check_upper_tiles(tenant, tiles, lv, sealed, tr)
            else:
                tr.add(
                    Finding(
                        tenant,
                        "bad_tiles",
                        "stored hash tiles disagree with the signed checkpoints",
                    )
                )
        except (StorageError, OSError) as exc:
            tr.add(Finding(tenant, "bad_tiles", f"stored hash tiles are unusable ({exc})"))

    # Rows whose stored leaf_hash is not the hash of the row itself.
    for i in np.flatnonzero((computed != stored).any(axis=1))[: MAX_FINDINGS_PER_KIND * 4]:
        if expected is None or not (
            0 <= seq[i] < sealed and (computed[i] == expected[seq[i]]).all()
        ):
            continue  # reported below against the expected leaf
        tr.add(
            Finding(tenant, "modified", "stored leaf_hash does not match the row", **locate(int(i)))
        )

    if expected is not None:
        _compare_rows(tenant, sealed, seq, computed, expected, locate, tr, removed)
    else:
        levels = _compare_without_tiles(tenant, seq, computed, cps, locate, tr, removed)

    beyond = np.flatnonzero(seq >= sealed)
    if len(beyond):
        by_batch = Counter(batches[int(i)].as_py() for i in beyond)
        for batch_id, count in sorted(by_batch.items(), key=lambda kv: str(kv[0])):
            first = int(min(seq[i] for i in beyond if batches[int(i)].as_py() == batch_id))
            tr.add(
                Finding(
                    tenant,
                    "unsealed",
                    f"{count} event(s) from seq {first} are not covered by any signed checkpoint",
                    seq=first,
                    batch_id=batch_id,
                )
            )

    for cp in exported:
        if cp.tree_size > sealed:
            tr.add(
                Finding(
                    tenant,
                    "rollback",
                    f"an exported checkpoint has {cp.tree_size} events but the lake's log is "
                    f"sealed at {sealed}: newer batches were removed",
                    tree_size=cp.tree_size,
                )
            )
        elif levels is None or levels.root(cp.tree_size) != cp.root_hash:
            tr.add(
                Finding(
                    tenant,
                    "rollback",
                    f"the lake's log at size {cp.tree_size} differs from the exported checkpoint",
                    tree_size=cp.tree_size,
                )
            )


def _check_upper_tiles(
    tenant: str, tiles: TileLog, levels: MerkleLevels, size: int, tr: TenantReport
) -> None:
    """Stored tiles above the leaves must match the rebuilt tree: `prove` reads them."""
    tile_level = 1
    while size >> (TILE_HEIGHT * tile_level):
        count = size >> (TILE_HEIGHT * tile_level)
        stored = tiles.entries(tile_level, size)
        if stored != levels.level(TILE_HEIGHT * tile_level)[: count * 32]:
            tr.add(
                Finding(
                    tenant,
                    "bad_tiles",
                    f"stored hash tiles at level {tile_level} differ from the tree rebuilt "
                    "from the leaves; proofs that read them would fail",
                    tree_size=size,
                )
            )
        tile_level += 1


def _hash_matrix(column: pa.ChunkedArray) -> np.ndarray:
    return np.frombuffer(hashes_to_bytes(column), np.uint8).reshape(-1, 32)


def _check_dates(rows: pa.Table, tenant: str, tr: TenantReport) -> None:
    day = pc.cast(rows.column("time"), pa.date32())
    wrong = pc.not_equal(day, rows.column("event_date"))
    if pc.any(wrong).as_py():
        for i in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)):
            tr.add(
                Finding(
                    tenant,
                    "misplaced",
                    "event is stored in the partition of another date",
                    seq=rows.column("seq")[int(i)].as_py(),
                    event_id=rows.column("event_id")[int(i)].as_py(),
                )
            )


def _compare_rows(
    tenant: str,
    sealed: int,
    seq: np.ndarray,
    computed: np.ndarray,
    expected: np.ndarray,
    locate: Callable[[int], dict[str, Any]],
    tr: TenantReport,
    removed: Sequence[tuple[int, int]] = (),
) -> None:
    inside = (seq >= 0) & (seq < sealed)
    idx = np.flatnonzero(inside)
    match = np.zeros(len(seq), dtype=bool)
    match[idx] = (computed[idx] == expected[seq[idx]]).all(axis=1)
    matched_seq = seq[match]
    counts = np.bincount(matched_seq, minlength=sealed) if sealed else np.zeros(0, np.int64)
    # duplicates: more than one authentic copy of a seq
    if (counts > 1).any():
        seen: set[int] = set()
        for i in np.flatnonzero(match):
            s = int(seq[i])
            if counts[s] > 1:
                if s in seen:
                    tr.add(
                        Finding(
                            tenant, "duplicate", "event is stored more than once", **locate(int(i))
                        )
                    )
                seen.add(s)
    bad = np.flatnonzero(inside & ~match)
    index: dict[bytes, int] | None = None
    for i in bad:
        s = int(seq[i])
        if counts[s] >= 1:
            tr.add(
                Finding(
                    tenant,
                    "inserted",
                    "a row claims a seq that already holds an authentic event",
                    **locate(int(i)),
                )
            )
            continue
        if index is None:
            index = {expected[k].tobytes(): k for k in range(sealed)}
        home = index.get(computed[i].tobytes())
        if home is not None:
            tr.add(
                Finding(
                    tenant,
                    "reordered",
                    f"event is stored at seq {s} but was sealed at seq {home}",
                    **locate(int(i)),
                )
            )
        else:
            tr.add(
                Finding(
                    tenant,
                    "modified",
                    "event content differs from what was sealed",
                    **locate(int(i)),
                )
            )
    present = np.zeros(sealed, dtype=bool)
    present[seq[inside]] = True
    _mark_removed(present, removed)
    _report_missing(tenant, np.flatnonzero(~present), tr)
    bad_range = seq[~inside & (seq < 0)]
    for s in bad_range[:5]:
        tr.add(Finding(tenant, "inserted", f"a row has an impossible seq {int(s)}", seq=int(s)))


def _follow_announcements(
    note: str,
    unverified: Sequence[Any],
    published: Sequence[VerifierKey],
    at: Any,
    trusted_now: list[VerifierKey],
    valid_for: dict[str, KeyWindow],
) -> None:
    """A key that co-signs a checkpoint with a valid trusted key is trusted from then on."""
    text = parse_note(note)[0].encode()
    for sig in unverified:
        for key in published:
            same = key.name == sig.name and key.key_hash == sig.key_hash
            if same and key not in trusted_now and key.verify(text, sig.signature):
                trusted_now.append(key)
                valid_for.setdefault(key.encode(), KeyWindow(not_before=at))


def _check_witnesses(
    lake: Lake, tr: TenantReport, cps: pa.Table, keys: Sequence[Any], needed: int
) -> None:
    """Cosignatures by trusted witnesses: enough on the latest checkpoint, none conflicting.

    A valid cosignature of a tree head the lake does not hold (another root at a size it
    has: a fork; a size beyond its own: a rollback) means the log showed a witness a
    history it no longer shows.
    """
    from lake.witness import stored_cosignatures

    bodies: dict[int, str] = {}
    for row in cps.to_pylist():
        try:
            bodies[int(row["tree_size"])] = parse_note(row["note"])[0]
        except NoteError:
            continue
    sealed = max(bodies, default=0)
    stored = stored_cosignatures(lake, tr.tenant)
    have: set[str] = set()
    for size, entry in sorted(stored.items()):
        for key in keys:
            line = entry["cosignatures"].get(key.name)
            if line is None:
                continue
            if key.verify(entry["body"], line) is None:
                tr.add(
                    Finding(
                        tr.tenant,
                        "bad_cosignature",
                        f"the stored cosignature of witness {key.name} does not verify",
                        tree_size=size,
                    )
                )
                continue
            lake_body = bodies.get(size)
            if lake_body == entry["body"]:
                if size == sealed:
                    have.add(key.name)
                continue
            what = (
                f"size {size} with another root than the lake's (a fork)"
                if lake_body is not None
                else f"size {size}, beyond the lake's {sealed} (newer batches were removed)"
            )
            tr.add(
                Finding(
                    tr.tenant, "witness_conflict", f"witness {key.name} cosigned {what}",
                    tree_size=size,
                )
            )  # fmt: skip
    if needed and len(have) < needed:
        tr.add(
            Finding(
                tr.tenant,
                "unwitnessed",
                f"the latest checkpoint (size {sealed}) has {len(have)} valid witness "
                f"cosignature(s); {needed} required",
                tree_size=sealed,
            )
        )


def _mark_removed(present: np.ndarray, removed: Sequence[tuple[int, int]]) -> None:
    """Seqs removed by a signed retention record count as accounted for, not missing."""
    for lo, hi in removed:
        present[max(lo, 0) : min(hi + 1, len(present))] = True


def _report_missing(tenant: str, missing: np.ndarray, tr: TenantReport) -> None:
    if not len(missing):
        return
    breaks = np.flatnonzero(np.diff(missing) != 1) + 1
    for run in np.split(missing, breaks):
        lo, hi = int(run[0]), int(run[-1])
        what = f"seq {lo}" if lo == hi else f"seq {lo}..{hi} ({hi - lo + 1} events)"
        tr.add(Finding(tenant, "missing", f"{what} missing from the lake", seq=lo))


def _compare_without_tiles(
    tenant: str,
    seq: np.ndarray,
    computed: np.ndarray,
    cps: list[_Cp],
    locate: Callable[[int], dict[str, Any]],
    tr: TenantReport,
    removed: Sequence[tuple[int, int]] = (),
) -> MerkleLevels | None:
    """No trustworthy tiles: rebuild the log from rows in seq order and compare roots."""
    if not len(seq):
        for c in cps:
            if c.size:
                _report_missing(tenant, np.arange(c.size), tr)
                break
        return None
    order = np.argsort(seq, kind="stable")
    s_sorted = seq[order]
    top = int(s_sorted[-1]) + 1
    dup = np.flatnonzero(np.diff(s_sorted) == 0) + 1
    for k in dup:
        tr.add(Finding(tenant, "duplicate", "two rows share one seq", **locate(int(order[k]))))
    present = np.zeros(max(top, 0), dtype=bool)
    present[s_sorted[s_sorted >= 0]] = True
    sealed = max((c.size for c in cps), default=0)
    if sealed > top:
        present = np.concatenate([present, np.zeros(sealed - top, dtype=bool)])
    lawful = present.copy()
    _mark_removed(lawful, removed)
    missing = np.flatnonzero(~lawful)
    _report_missing(tenant, missing, tr)
    if len(dup) or len(missing) or not present.all():
        return None  # removed rows cannot be re-hashed: the roots need the tiles
    levels = MerkleLevels.from_concatenated(computed[order].tobytes())
    for c in cps:
        if c.size <= levels.size and levels.root(c.size) != c.root:
            tr.add(
                Finding(
                    tenant,
                    "root_mismatch",
                    f"the events do not hash to the signed root of size {c.size}",
                    tree_size=c.size,
                    batch_id=c.batch_id,
                )
            )
    return levels


VERIFY_LOG: Final = "_auditlake/verify/last.json"


def record_report(lake: Lake, report: Report, *, by: str) -> None:
    """Remember each tenant's latest full verification (time, who, result) in the lake.

    For display only (dashboard, status): a record inside the lake proves nothing, since
    whoever can write the lake could forge it; `verify` itself is the proof.
    """
    try:
        doc = orjson.loads(lake.read_bytes(VERIFY_LOG))
        if not isinstance(doc, dict):
            doc = {}
    except (FileNotFoundError, orjson.JSONDecodeError):
        doc = {}
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for t in report.tenants:
        doc[t.tenant] = {
            "verified_at": at,
            "by": by,
            "ok": t.ok,
            "events": t.events,
            "sealed_size": t.sealed_size,
            "findings": len(t.findings) + sum(t.suppressed.values()),
            "kinds": sorted({f.kind for f in t.findings} | set(t.suppressed)),
        }
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    lake.write_bytes(VERIFY_LOG, text)


def last_reports(lake: Lake) -> dict[str, dict[str, Any]]:
    """Per tenant, the latest recorded verification (see `record_report`)."""
    try:
        doc = orjson.loads(lake.read_bytes(VERIFY_LOG))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}
