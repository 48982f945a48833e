"""`verify_with`: verify on the engine a caller names (the CLI's `--engine`).

One entry point for every engine, so that a caller passes its choice down instead of
branching on engine names itself. `verify_lake` and `verify_lake_ray` stay the calls for
a caller that knows which engine it wants.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lake.log import VerifierKey
from lake.secrets import KeyWindow
from lake.storage import Lake
from lake.verify._engines import Engine, Progress
from lake.verify._ranges import RANGE_EVENTS
from lake.verify._ray import verify_lake_ray
from lake.verify._report import Report
from lake.verify._verify import verify_lake

if TYPE_CHECKING:
    from lake.witness import CosignerKey


def verify_with(
    engine: Engine | str,
    lake: Lake,
    trusted: Sequence[VerifierKey],
    *,
    address: str | None = None,
    workers: int | None = None,
    tenants: Sequence[str] | None = None,
    since: Sequence[str] = (),
    progress: Progress | None = None,
    witness_keys: Sequence[CosignerKey] = (),
    min_witnesses: int = 0,
    windows: Mapping[str, KeyWindow] | None = None,
    range_events: int = RANGE_EVENTS,
) -> Report:
    """`verify_lake` on `engine`; the same report on either.

    Args:
        engine: Where to run; a name ("local", "ray") is parsed too, ValueError if unknown.
        address: With Engine.RAY, the cluster to join (None starts a local instance).
        workers: With Engine.LOCAL, processes to use (default: one per core).
        tenants, since, progress, witness_keys, min_witnesses, windows, range_events:
            as `verify_lake`.
    """
    engine = Engine(engine)
    if engine is Engine.RAY:
        return verify_lake_ray(
            lake, trusted, address=address, tenants=tenants, since=since, progress=progress,
            range_events=range_events, witness_keys=witness_keys,
            min_witnesses=min_witnesses, windows=windows,
        )  # fmt: skip
    return verify_lake(
        lake, trusted, tenants=tenants, since=since, progress=progress,
        workers=workers or os.cpu_count() or 1, witness_keys=witness_keys,
        min_witnesses=min_witnesses, windows=windows, range_events=range_events,
    )  # fmt: skip
