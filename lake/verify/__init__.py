"""verify_lake and its report: range checks, the signature chain, witness checks, engines."""

from __future__ import annotations

from lake.verify._engines import (
    PARALLEL_MIN_EVENTS,
    Engine,
    Progress,
    TaskRunner,
)
from lake.verify._exported import (
    parse_exported,
)
from lake.verify._history import (
    LastVerification,
    VerifyHistory,
    last_reports,
    record_report,
    verify_history,
)
from lake.verify._ranges import (
    RANGE_EVENTS,
    RangeMode,
    RangeResult,
    RangeTask,
)
from lake.verify._ray import (
    EngineError,
    RayRunner,
    ray_session,
    verify_lake_ray,
)
from lake.verify._report import (
    Finding,
    FindingKind,
    Report,
    TenantReport,
)
from lake.verify._run import (
    verify_with,
)
from lake.verify._verify import (
    verify_lake,
)

__all__ = [
    "PARALLEL_MIN_EVENTS",
    "RANGE_EVENTS",
    "Engine",
    "EngineError",
    "Finding",
    "FindingKind",
    "LastVerification",
    "Progress",
    "RangeMode",
    "RangeResult",
    "RangeTask",
    "RayRunner",
    "Report",
    "TaskRunner",
    "TenantReport",
    "VerifyHistory",
    "last_reports",
    "parse_exported",
    "ray_session",
    "record_report",
    "verify_history",
    "verify_lake",
    "verify_lake_ray",
    "verify_with",
]
