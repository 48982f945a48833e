"""Export the latest signed checkpoint of each tenant to a folder kept outside the lake.

Layout: `<dest>/<lake name>/<tenant>/<tree size>.txt`, the signed note as it was signed.
A file already there is never overwritten (what is kept outside must not be rewritten by
the lake it guards), and each is written whole (a temporary file, then a rename), so a
cron job that dies mid-way leaves no half checkpoint behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lake.contract import ProofError
from lake.proofs._proof import latest_checkpoint
from lake.secrets import Permission, Principal
from lake.storage import Lake, check_tenant


def export_checkpoints(
    lake: Lake, who: Principal, dest: Path, tenants: Sequence[str] | None = None
) -> list[Path]:
    """Write each tenant's latest checkpoint under `dest`; the files written now.

    `tenants` (each checked) or every tenant of the lake; tenants `who` may not read the
    checkpoints of, and tenants with nothing sealed yet, are passed over.
    """
    wanted = [check_tenant(t) for t in tenants] if tenants else lake.tenants()
    written: list[Path] = []
    for tenant in wanted:
        if not who.may(Permission.READ_CHECKPOINTS, tenant):
            continue
        try:
            cp = latest_checkpoint(lake, tenant)
        except ProofError:
            continue  # nothing sealed yet
        path = dest / lake.name / tenant / f"{int(cp['tree_size'])}.txt"
        if path.exists():
            continue  # already exported: never overwrite what is kept outside
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(cp["note"])
        tmp.replace(path)
        written.append(path)
    return written
