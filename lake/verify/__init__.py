"""verify_lake and its report: range checks, the signature chain, witness checks, engines."""

from __future__ import annotations

from lake.verify._ray import (
    EngineError,
    RayRunner,
    ray_session,
    verify_lake_ray,
)
from lake.verify._report import (
    Finding,
)
from lake.verify._verify import (
    RANGE_EVENTS,
    RangeTask,
    Report,
    last_reports,
    parse_exported,
    record_report,
    verify_lake,
)

__all__ = [
    "RANGE_EVENTS",
    "EngineError",
    "Finding",
    "RangeTask",
    "RayRunner",
    "Report",
    "last_reports",
    "parse_exported",
    "ray_session",
    "record_report",
    "verify_lake",
    "verify_lake_ray",
]
