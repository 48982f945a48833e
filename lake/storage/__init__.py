"""The Lake object on disk: paths, Delta tables, file listings, the cache, optimize."""

from __future__ import annotations

from lake.storage import _paths as paths
from lake.storage._cache import (
    TableFiles,
)
from lake.storage._idindex import (
    narrow,
)
from lake.storage._lake import (
    APPEND_ONLY,
    EVENTS_COLUMNS,
    DataFile,
    Lake,
    check_lake_name,
    check_tenant,
    seal_app_id,
    seq_app_id,
)
from lake.storage._optimize import (
    optimize,
)
from lake.storage._policy import (
    POLICY_PATH,
    Hold,
    Policy,
    TenantRetention,
    load_policy,
    save_policy,
)
from lake.storage._retry import (
    COMMIT_ATTEMPTS,
    retry_on_conflict,
)
from lake.storage._workers import (
    process_context,
)

__all__ = [
    "APPEND_ONLY",
    "COMMIT_ATTEMPTS",
    "EVENTS_COLUMNS",
    "POLICY_PATH",
    "DataFile",
    "Hold",
    "Lake",
    "Policy",
    "TableFiles",
    "TenantRetention",
    "check_lake_name",
    "check_tenant",
    "load_policy",
    "narrow",
    "optimize",
    "paths",
    "process_context",
    "retry_on_conflict",
    "save_policy",
    "seal_app_id",
    "seq_app_id",
]
