"""Everything that changes a lake: append and seal, unique ids, key rotation, retention, holds."""

from __future__ import annotations

from lake.write._append import (
    MAX_MICROS,
    MIN_MICROS,
    TIME_RANGE,
    AppendResult,
    append,
    source_app_id,
    source_position,
    stamp_received,
)
from lake.write._retention import (
    apply,
    record_action,
    removed_ranges,
    set_hold,
    set_policy,
    status,
)
from lake.write._rotation import (
    rotate,
)
from lake.write._seal import (
    seal,
)
from lake.write._shred import (
    require_encrypted,
    shred,
)
from lake.write._unique import (
    ID_TAKEN,
    candidate_files,
    event_keys,
    first_occurrence,
    repeated_ids,
    same_rows,
)

__all__ = [
    "ID_TAKEN",
    "MAX_MICROS",
    "MIN_MICROS",
    "TIME_RANGE",
    "AppendResult",
    "append",
    "apply",
    "candidate_files",
    "event_keys",
    "first_occurrence",
    "record_action",
    "removed_ranges",
    "repeated_ids",
    "require_encrypted",
    "rotate",
    "same_rows",
    "seal",
    "set_hold",
    "set_policy",
    "shred",
    "source_app_id",
    "source_position",
    "stamp_received",
    "status",
]
