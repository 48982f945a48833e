"""The event contract: stored schema, leaf bytes, wire validation and the error types.

The wire format itself is declared in `lake.spec` (standard library only); the names
re-exported from there (`check_event`, `CATEGORIES`, `Issue`, …) are the same objects.
"""

from __future__ import annotations

from lake.contract._alert import ALERT_COLUMNS, Alert
from lake.contract._errors import (
    ConcurrentAppendError,
    ConfigError,
    Issue,
    LakeError,
    LakeNotFoundError,
    NoteError,
    ProofError,
    SigningKeyError,
    StorageError,
    UsageError,
    ValidationError,
)
from lake.contract._leaf import (
    decode_leaf,
    encode_leaf,
    hash_leaves,
    hashes_to_bytes,
    leaf_hash_of,
    leaf_hashes_array,
    leaf_inputs,
)
from lake.contract._schema import (
    ALERTS_PARTITIONS,
    ALERTS_SCHEMA,
    CHECKPOINTS_PARTITIONS,
    CHECKPOINTS_SCHEMA,
    EVENTS_PARTITIONS,
    EVENTS_SCHEMA,
    LEAF_FIELDS,
    UTC_US,
)
from lake.contract._wire import (
    Rejected,
    Scanned,
    Validated,
    scan_jsonl,
    validate,
    validate_jsonl,
)
from lake.contract._wire_exact import OUTPUT_SCHEMA, finish
from lake.contract._wire_ids import assign_ids, assign_missing_ids
from lake.contract._wire_json import (
    colons_match,
    repeated_key,
)
from lake.contract._wire_parse import parse_json_array, parse_json_array_issues, parse_jsonl
from lake.spec import (
    ACTOR_FIELDS,
    ACTOR_TYPES,
    CATEGORIES,
    OUTCOMES,
    READ_AUDIT_TENANT,
    RESERVED_TENANT_MESSAGE,
    SEVERITIES,
    TARGET_FIELDS,
    TENANT_PATTERN,
    WIRE_FIELDS,
    TimeWindow,
    check_event,
    is_valid_tenant,
    parse_duration,
    time_window,
)

__all__ = [
    "ACTOR_FIELDS",
    "ACTOR_TYPES",
    "ALERTS_PARTITIONS",
    "ALERTS_SCHEMA",
    "ALERT_COLUMNS",
    "CATEGORIES",
    "CHECKPOINTS_PARTITIONS",
    "CHECKPOINTS_SCHEMA",
    "EVENTS_PARTITIONS",
    "EVENTS_SCHEMA",
    "LEAF_FIELDS",
    "OUTCOMES",
    "OUTPUT_SCHEMA",
    "READ_AUDIT_TENANT",
    "RESERVED_TENANT_MESSAGE",
    "SEVERITIES",
    "TARGET_FIELDS",
    "TENANT_PATTERN",
    "UTC_US",
    "WIRE_FIELDS",
    "Alert",
    "ConcurrentAppendError",
    "ConfigError",
    "Issue",
    "LakeError",
    "LakeNotFoundError",
    "NoteError",
    "ProofError",
    "Rejected",
    "Scanned",
    "SigningKeyError",
    "StorageError",
    "TimeWindow",
    "UsageError",
    "Validated",
    "ValidationError",
    "assign_ids",
    "assign_missing_ids",
    "check_event",
    "colons_match",
    "decode_leaf",
    "encode_leaf",
    "finish",
    "hash_leaves",
    "hashes_to_bytes",
    "is_valid_tenant",
    "leaf_hash_of",
    "leaf_hashes_array",
    "leaf_inputs",
    "parse_duration",
    "parse_json_array",
    "parse_json_array_issues",
    "parse_jsonl",
    "repeated_key",
    "scan_jsonl",
    "time_window",
    "validate",
    "validate_jsonl",
]
