"""Witness cosignatures: enough trusted witnesses on the latest checkpoint, none conflicting.

A witness cosigns a tree head only if it is consistent with every head it cosigned
before, so a valid cosignature of a tree head the lake does not hold means the log
showed that witness a history it no longer shows: another root at a size the lake has
(a fork) or a size beyond its own (newer batches removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from lake.contract import NoteError
from lake.log import parse_note
from lake.storage import Lake
from lake.verify._report import Finding, FindingKind, TenantReport

if TYPE_CHECKING:
    from lake.witness import CosignerKey


def check_witnesses(
    lake: Lake, tr: TenantReport, cps: pa.Table, keys: Sequence[CosignerKey], needed: int
) -> None:
    """Cosignatures by trusted witnesses: enough on the latest checkpoint, none conflicting.

    A valid cosignature of a tree head the lake does not hold (another root at a size it
    has: a fork; a size beyond its own: a rollback) means the log showed a witness a
    history it no longer shows.
    """
    from lake.witness import CosignatureStore  # only when witnesses are asked for

    bodies: dict[int, str] = {}
    for row in cps.to_pylist():
        try:
            bodies[int(row["tree_size"])] = parse_note(row["note"])[0]
        except NoteError:
            continue
    sealed = max(bodies, default=0)
    stored = CosignatureStore.load(lake, tr.tenant)
    have: set[str] = set()
    for size, entry in sorted(stored.sizes.items()):
        for key in keys:
            line = entry.lines.get(key.name)
            if line is None:
                continue
            if key.verify(entry.body, line) is None:
                tr.add(
                    Finding(
                        tr.tenant,
                        FindingKind.BAD_COSIGNATURE,
                        f"the stored cosignature of witness {key.name} does not verify",
                        tree_size=size,
                    )
                )
                continue
            lake_body = bodies.get(size)
            if lake_body == entry.body:
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
                    tr.tenant, FindingKind.WITNESS_CONFLICT, f"witness {key.name} cosigned {what}",
                    tree_size=size,
                )
            )  # fmt: skip
    if needed and len(have) < needed:
        tr.add(
            Finding(
                tr.tenant,
                FindingKind.UNWITNESSED,
                f"the latest checkpoint (size {sealed}) has {len(have)} valid witness "
                f"cosignature(s); {needed} required",
                tree_size=sealed,
            )
        )
