"""Which checkpoints a trusted key vouches for, judged only on what the checkpoints sign.

A checkpoint signs its origin, tree size, root and (since checkpoints carry one) the time
it was made, in a `time` extension line. Everything else in the checkpoints table, the
`sealed_at` column above all, can be rewritten by anyone with write access to the lake,
so it decides nothing here:

1. *Order.* Checkpoints are taken in the order of the log: by tree size, then by signed
   time. A key announced by a rotation checkpoint (cosigned by a trusted, valid key) is
   trusted from that checkpoint on, with its window starting at the announcement's time.
2. *Key windows.* A key's validity (`not-before`, `not-after`, `revoked` in trusted_keys)
   is tested against the signed time. A checkpoint without one (written before
   checkpoints carried a time) cannot show when it was signed: by a key that is revoked
   it is a finding (`key_not_valid`); by a key whose window is bounded but not revoked
   (an honest rotation) it is accepted only when a checkpoint that is valid and at least
   as large vouches for the same tree anyway (every root is compared against the one
   tree), so it adds nothing an attacker could use.
3. *Time along the log.* A checkpoint of a larger tree signs a later time than every
   smaller one, and once the log signs times it keeps signing them: otherwise `bad_chain`.
   So a stolen key that was rotated out cannot sign a later tree head with a backdated
   time that its old window would allow.
4. One size has one root (`fork`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lake.contract import NoteError
from lake.log import Checkpoint, NoteSignature, VerifierKey, parse_note, verify_note
from lake.secrets import KeyWindow
from lake.spec import utc_text
from lake.storage import Lake
from lake.verify._report import Finding, FindingKind, TenantReport

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_ALWAYS = KeyWindow()


@dataclass
class SealedCheckpoint:
    """A checkpoint row whose note parsed and agrees with its row."""

    size: int
    root: bytes
    batch_id: str
    key_name: str
    signed_time: datetime | None
    trusted: bool


def published_keys(lake: Lake) -> list[VerifierKey]:
    """The verifier keys the lake publishes about itself (trusted for nothing by themselves).

    A key that does not parse is skipped: it could vouch for nothing anyway.
    """
    out = []
    for text in lake.published_keys:
        try:
            out.append(VerifierKey.parse(text))
        except NoteError:
            continue
    return out


def _stamp(moment: datetime) -> str:
    return utc_text(moment)


def _parsed(
    lake: Lake, tenant: str, cps: pa.Table, tr: TenantReport
) -> list[tuple[dict[str, Any], Checkpoint]]:
    """Rows whose note is a checkpoint of this tenant's log agreeing with the row."""
    out = []
    for row in cps.to_pylist():
        where = {"tree_size": int(row["tree_size"]), "batch_id": row["batch_id"]}
        try:
            text, _ = parse_note(row["note"])
            cp = Checkpoint.parse(text)
        except NoteError as exc:
            tr.add(
                Finding(
                    tenant,
                    FindingKind.BAD_CHECKPOINT,
                    f"checkpoint note is malformed: {exc}",
                    **where,
                )
            )
            continue
        if (
            cp.origin != lake.origin(tenant)
            or cp.tree_size != where["tree_size"]
            or cp.root_hash != row["root_hash"]
        ):
            tr.add(
                Finding(
                    tenant,
                    FindingKind.BAD_CHECKPOINT,
                    "checkpoint note disagrees with its row (origin, size or root)",
                    **where,
                )
            )
            continue
        out.append((row, cp))
    # The log's own order: tree size, then signed time (a checkpoint without one first).
    out.sort(key=lambda rc: (rc[1].tree_size, rc[1].signed_time or _EARLIEST))
    return out


def check_signatures(
    lake: Lake,
    tenant: str,
    cps: pa.Table,
    trusted: Sequence[VerifierKey],
    published: Sequence[VerifierKey],
    tr: TenantReport,
    windows: Mapping[str, KeyWindow] | None = None,
) -> list[SealedCheckpoint]:
    """Check every checkpoint's signatures, key windows and signed time; report findings.

    Returns the checkpoints whose note agrees with its row, in the log's order, each
    marked trusted when a trusted key valid at its signed time signed it.
    """
    out: list[SealedCheckpoint] = []
    trusted_now = list(trusted)
    valid_for = dict(windows or {})
    undated: list[tuple[SealedCheckpoint, dict[str, Any], str]] = []
    for row, cp in _parsed(lake, tenant, cps, tr):
        where = {"tree_size": cp.tree_size, "batch_id": row["batch_id"]}
        at = cp.signed_time
        sealed = SealedCheckpoint(
            cp.tree_size, cp.root_hash, row["batch_id"], row["key_name"], at, False
        )
        try:
            vn = verify_note(row["note"], trusted_now, allow_unverified=True)
        except NoteError as exc:
            tr.add(
                Finding(tenant, FindingKind.BAD_SIGNATURE, f"checkpoint signature: {exc}", **where)
            )
            continue
        window = {k.encode(): valid_for.get(k.encode(), _ALWAYS) for k in vn.verified}
        if at is not None:
            valid = [k for k in vn.verified if window[k.encode()].allows(at)]
        else:
            valid = [k for k in vn.verified if window[k.encode()] == _ALWAYS]
        if vn.verified and not valid:
            why = "; ".join(f"{k.name}: {window[k.encode()].describe()}" for k in vn.verified)
            if at is None and not any(window[k.encode()].revoked for k in vn.verified):
                undated.append((sealed, where, why))  # judged once the whole log is seen
            else:
                tr.add(Finding(tenant, FindingKind.KEY_NOT_VALID, _not_valid(at, why), **where))
            out.append(sealed)
            continue
        if valid and vn.unverified:
            _follow_announcements(row["note"], vn.unverified, published, at, trusted_now, valid_for)
        if not valid and not _report_untrusted(
            tenant, row["note"], vn.unverified, published, tr, where
        ):
            continue
        sealed.trusted = bool(valid)
        out.append(sealed)
    vouched = max((c.size for c in out if c.trusted), default=-1)
    for sealed, where, why in undated:
        if sealed.size <= vouched:
            sealed.trusted = True
        else:
            tr.add(Finding(tenant, FindingKind.KEY_NOT_VALID, _not_valid(None, why), **where))
    _check_order(tenant, out, tr)
    roots: dict[int, bytes] = {}
    for c in out:
        if roots.setdefault(c.size, c.root) != c.root:
            tr.add(
                Finding(
                    tenant,
                    FindingKind.FORK,
                    f"two checkpoints of size {c.size} differ",
                    tree_size=c.size,
                )
            )
    return out


def _not_valid(at: datetime | None, why: str) -> str:
    if at is None:
        return (
            "checkpoint has no signed time, so it cannot show it was signed inside the "
            f"validity of its keys ({why})"
        )
    return f"checkpoint signed at {_stamp(at)} only by keys outside their validity ({why})"


def _report_untrusted(
    tenant: str,
    note: str,
    unverified: Sequence[NoteSignature],
    published: Sequence[VerifierKey],
    tr: TenantReport,
    where: dict[str, Any],
) -> bool:
    """Report a checkpoint no trusted key signed; False when its signature is forged."""
    names = ", ".join(sorted({s.name for s in unverified})) or "nobody"
    try:
        found = bool(verify_note(note, published, allow_unverified=True).verified)
    except NoteError:
        tr.add(
            Finding(
                tenant,
                FindingKind.BAD_SIGNATURE,
                f"checkpoint signature by {names} does not verify",
                **where,
            )
        )
        return False
    detail = "its key is published only inside the lake" if found else "the key is unknown"
    tr.add(
        Finding(
            tenant,
            FindingKind.UNTRUSTED_KEY,
            f"checkpoint signed by {names}, which is not a trusted key ({detail})",
            **where,
        )
    )
    return True


def _check_order(tenant: str, cps: Sequence[SealedCheckpoint], tr: TenantReport) -> None:
    """A larger tree signs a later time than every smaller one, and never drops the time."""
    latest: tuple[datetime, int] | None = None  # greatest signed time among smaller sizes
    # Only checkpoints a valid trusted key signed: the others are findings already.
    trusted = [c for c in cps if c.trusted]
    for _, group in itertools.groupby(trusted, key=lambda c: c.size):
        same = list(group)
        for c in same:
            if latest is None:
                continue
            when, size = latest
            if c.signed_time is None:
                message = (
                    f"checkpoint of size {c.size} has no signed time, though the one of "
                    f"size {size} before it signs {_stamp(when)}"
                )
            elif c.signed_time <= when:
                message = (
                    f"checkpoint of size {c.size} signs {_stamp(c.signed_time)}, not later than "
                    f"{_stamp(when)} signed at size {size}: its time goes backwards along the log"
                )
            else:
                continue
            tr.add(
                Finding(
                    tenant, FindingKind.BAD_CHAIN, message, tree_size=c.size, batch_id=c.batch_id
                )
            )
        times = [c.signed_time for c in same if c.signed_time is not None]
        if times and (latest is None or max(times) > latest[0]):
            latest = (max(times), same[0].size)


def _follow_announcements(
    note: str,
    unverified: Sequence[NoteSignature],
    published: Sequence[VerifierKey],
    at: datetime | None,
    trusted_now: list[VerifierKey],
    valid_for: dict[str, KeyWindow],
) -> None:
    """A key that cosigns a checkpoint with a valid trusted key is trusted from its time on."""
    text = parse_note(note)[0].encode()
    for sig in unverified:
        for key in published:
            same = key.name == sig.name and key.key_hash == sig.key_hash
            if same and key not in trusted_now and key.verify(text, sig.signature):
                trusted_now.append(key)
                valid_for.setdefault(key.encode(), KeyWindow(not_before=at))
