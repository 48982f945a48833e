"""Checkpoints held outside the lake (`--since-checkpoint`): the rollback check.

Removing the newest batches leaves a lake self-consistent (its tiles, checkpoints and
rows all agree), so only a signed checkpoint kept elsewhere can show it: the lake's log
must still reach that checkpoint's size, with the same root there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lake.contract import NoteError
from lake.log import Checkpoint, VerifierKey, parse_note, verify_note
from lake.storage import Lake
from lake.verify._report import Finding, FindingKind, TenantReport


def parse_exported(text: str) -> list[str]:
    """Split a file of one or more exported signed checkpoints into notes.

    NoteError when it holds none: an empty or truncated export must not turn the
    rollback check it was given for into a silent pass.
    """
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
    notes = [n for n in notes if n.strip()]
    if not notes:
        raise NoteError("--since-checkpoint: the file holds no signed checkpoint")
    return notes


def _origin_tenant(lake: Lake, origin: str) -> str | None:
    prefix = lake.origin("")  # every tenant's origin, less the tenant
    return origin[len(prefix) :] if origin.startswith(prefix) else None


def read_exported(
    lake: Lake,
    notes: Sequence[str],
    trusted: Sequence[VerifierKey],
) -> tuple[dict[str, list[Checkpoint]], list[Finding]]:
    """The exported checkpoints a trusted key signed, per tenant, and findings for the rest.

    Raises NoteError for a note that is no checkpoint of this lake: the caller gave the
    wrong file, which is a usage error, not a finding about the lake.
    """
    out: dict[str, list[Checkpoint]] = {}
    findings: list[Finding] = []
    for note in notes:
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
            message = f"exported checkpoint does not verify: {exc}"
            findings.append(
                Finding(tenant, FindingKind.BAD_SIGNATURE, message, tree_size=cp.tree_size)
            )
            continue
        out.setdefault(tenant, []).append(cp)
    return out, findings


class _Roots(Protocol):
    def root(self, size: int) -> bytes: ...


def check_rollback(
    tenant: str,
    exported: Sequence[Checkpoint],
    sealed: int,
    tree: _Roots | None,
    tr: TenantReport,
) -> None:
    """Each exported checkpoint against the lake's log (`tree`: None when it has none)."""
    for cp in exported:
        if cp.tree_size > sealed:
            tr.add(
                Finding(
                    tenant,
                    FindingKind.ROLLBACK,
                    f"an exported checkpoint has {cp.tree_size} events but the lake's log is "
                    f"sealed at {sealed}: newer batches were removed",
                    tree_size=cp.tree_size,
                )
            )
        elif tree is None or tree.root(cp.tree_size) != cp.root_hash:
            tr.add(
                Finding(
                    tenant,
                    FindingKind.ROLLBACK,
                    f"the lake's log at size {cp.tree_size} differs from the exported checkpoint",
                    tree_size=cp.tree_size,
                )
            )
