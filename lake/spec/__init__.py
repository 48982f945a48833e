"""The wire format of an event, declared once, and the scalar check derived from it.

Standard library only (an import-linter contract and a fresh-interpreter test hold it
to that): a service that only sends events imports this, never pyarrow, numpy or orjson.

    from lake.spec import Issue, check_event, CATEGORIES, OUTCOMES, SEVERITIES

`check_event(event)` lists every issue of one event exactly as the collector's columnar
validator (`lake.contract.validate`) would; `TOP_FIELDS`, `OBJECT_FIELDS` and the
constants are the declaration all validators are derived from.

Two small helpers live here because this is the lowest standard-library-only layer that
the SDK, the collector and the lake all import: `gc_paused` (parse many JSON events
without the cyclic GC) and `parse_retry_after` (the HTTP header the SDK and alert sinks
honour).
"""

from __future__ import annotations

from lake.spec._canonical import canonical_details, canonical_json, inexact_number
from lake.spec._check import check_event
from lake.spec._errors import Issue, LakeError, UsageError, ValidationError
from lake.spec._gc import gc_paused
from lake.spec._retry_after import parse_retry_after
from lake.spec._rules import (
    ACTION_MESSAGE,
    ACTION_PATTERN,
    ACTOR,
    ACTOR_FIELDS,
    ACTOR_TYPES,
    CATEGORIES,
    DEFAULT_SEVERITY,
    DETAILS,
    EMPTY_MESSAGE,
    ID_MESSAGE,
    ID_PATTERN,
    LONG_FRACTION_PATTERN,
    MAX_DETAILS_BYTES,
    MAX_STRING_BYTES,
    MICRO_CUT_PATTERN,
    OBJECT_FIELDS,
    OUTCOMES,
    READ_AUDIT_TENANT,
    REQUIRED_MESSAGE,
    RESERVED_TENANT_MESSAGE,
    SEVERITIES,
    SUBMICRO_MESSAGE,
    SUBMICRO_PATTERN,
    TARGET,
    TARGET_FIELDS,
    TENANT,
    TENANT_MESSAGE,
    TENANT_PATTERN,
    TEXT_FIELDS,
    TIME,
    TIME_PATTERN,
    TIME_SHAPE_MESSAGE,
    TIME_VALUE_MESSAGE,
    TOO_LONG_MESSAGE,
    TOP_FIELDS,
    UNKNOWN_MESSAGE,
    WIRE_FIELDS,
    WIRE_KEYS,
    ObjectField,
    TextField,
    enum_message,
    expected_message,
    is_valid_tenant,
    shorten,
    string_problem,
    type_name,
)
from lake.spec._time import (
    DEFAULT_MAX_FUTURE_SKEW,
    SKEW_ENV,
    UTC_MICROS_FORMAT,
    UTC_SECONDS_FORMAT,
    TimeWindow,
    default_max_future_skew,
    format_duration,
    parse_duration,
    rfc3339_micros,
    time_problem,
    time_window,
    utc_text,
)

__all__ = [
    "ACTION_MESSAGE",
    "ACTION_PATTERN",
    "ACTOR",
    "ACTOR_FIELDS",
    "ACTOR_TYPES",
    "CATEGORIES",
    "DEFAULT_MAX_FUTURE_SKEW",
    "DEFAULT_SEVERITY",
    "DETAILS",
    "EMPTY_MESSAGE",
    "ID_MESSAGE",
    "ID_PATTERN",
    "LONG_FRACTION_PATTERN",
    "MAX_DETAILS_BYTES",
    "MAX_STRING_BYTES",
    "MICRO_CUT_PATTERN",
    "OBJECT_FIELDS",
    "OUTCOMES",
    "READ_AUDIT_TENANT",
    "REQUIRED_MESSAGE",
    "RESERVED_TENANT_MESSAGE",
    "SEVERITIES",
    "SKEW_ENV",
    "SUBMICRO_MESSAGE",
    "SUBMICRO_PATTERN",
    "TARGET",
    "TARGET_FIELDS",
    "TENANT",
    "TENANT_MESSAGE",
    "TENANT_PATTERN",
    "TEXT_FIELDS",
    "TIME",
    "TIME_PATTERN",
    "TIME_SHAPE_MESSAGE",
    "TIME_VALUE_MESSAGE",
    "TOO_LONG_MESSAGE",
    "TOP_FIELDS",
    "UNKNOWN_MESSAGE",
    "UTC_MICROS_FORMAT",
    "UTC_SECONDS_FORMAT",
    "WIRE_FIELDS",
    "WIRE_KEYS",
    "Issue",
    "LakeError",
    "ObjectField",
    "TextField",
    "TimeWindow",
    "UsageError",
    "ValidationError",
    "canonical_details",
    "canonical_json",
    "check_event",
    "default_max_future_skew",
    "enum_message",
    "expected_message",
    "format_duration",
    "gc_paused",
    "inexact_number",
    "is_valid_tenant",
    "parse_duration",
    "parse_retry_after",
    "rfc3339_micros",
    "shorten",
    "string_problem",
    "time_problem",
    "time_window",
    "type_name",
    "utc_text",
]
