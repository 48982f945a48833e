"""The stored contracts as code: stored columns, leaf field order.

Everything that several modules (and outside verifiers) must agree on about what is
stored lives here; what an event may say on the wire (fields, allowed values, limits)
is declared in `lake.spec`, which code that only sends events imports without pyarrow.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

UTC_US: Final = pa.timestamp("us", tz="UTC")

# Stored columns of the `events` table, in this order.
EVENTS_SCHEMA: Final = pa.schema(
    [
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("time", UTC_US, nullable=False),
        pa.field("received_at", UTC_US, nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("actor_id", pa.string(), nullable=False),
        pa.field("actor_type", pa.string()),
        pa.field("actor_ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("target_type", pa.string()),
        pa.field("target_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("details", pa.string()),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("leaf_hash", pa.binary(32), nullable=False),
    ]
)
EVENTS_PARTITIONS: Final = ["tenant", "event_date"]

# Leaf bytes, format 1: these 16 stored columns, in this order (the format-1 contract).
LEAF_FORMAT: Final = 0x01
LEAF_FIELDS: Final = (
    "tenant",
    "event_id",
    "time",
    "received_at",
    "category",
    "action",
    "outcome",
    "severity",
    "actor_id",
    "actor_type",
    "actor_ip",
    "user_agent",
    "target_type",
    "target_id",
    "source",
    "details",
)

CHECKPOINTS_SCHEMA: Final = pa.schema(
    [
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("tree_size", pa.int64(), nullable=False),
        pa.field("root_hash", pa.binary(32), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("note", pa.string(), nullable=False),
        pa.field("key_name", pa.string(), nullable=False),
        pa.field("sealed_at", UTC_US, nullable=False),
    ]
)
CHECKPOINTS_PARTITIONS: Final = ["tenant"]

# The alerts table written by detection (#5), partitioned by tenant; the columns
# are the `alerts list` keys of the contract (`group` holds the grouping keys as canonical JSON).
ALERTS_SCHEMA: Final = pa.schema(
    [
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("group", pa.string()),
        pa.field("first_seen", UTC_US),
        pa.field("last_seen", UTC_US),
        pa.field("event_count", pa.int64()),
        pa.field("event_ids", pa.list_(pa.string())),
    ]
)
ALERTS_PARTITIONS: Final = ["tenant"]
