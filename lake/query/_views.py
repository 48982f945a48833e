"""The SQL of the principal's views: which files each view covers (`Layout`) and the
`read_parquet` select over tenant-partitioned files, in the contract's column order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from lake.query._sandbox import sql_literal
from lake.secrets import ALERT_FIELDS, decrypted_select

__all__ = ["HIVE", "HIVE_TENANT", "Layout", "view_sql"]

# `read_parquet` options for the events table's partition directories (tenant=…/event_date=…),
# and for the tables partitioned by tenant only (checkpoints, alerts). Every reader of the
# events files (search, SQL views, detection) names the partition types with these.
HIVE: Final = "hive_partitioning=true, hive_types={'tenant': 'VARCHAR', 'event_date': 'DATE'}"
HIVE_TENANT: Final = "hive_partitioning=true, hive_types={'tenant': 'VARCHAR'}"

_SQL_TYPES: Final = {
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.int64(): "BIGINT",
    pa.binary(32): "BLOB",
    pa.binary(): "BLOB",
}


def _select_list(schema: pa.Schema) -> str:
    return ", ".join(f'"{name}"' for name in schema.names)


def view_sql(schema: pa.Schema, files: Sequence[str], decrypt: bool = False) -> str:
    """A view over tenant-partitioned Parquet files, in the contract's column order."""
    if not files:
        return _empty_select(schema)
    listing = ", ".join(map(sql_literal, files))
    hive = HIVE if "event_date" in schema.names else HIVE_TENANT
    if not decrypt:
        cols = _select_list(schema)
    elif "alert_id" in schema.names:  # alerts quote sealed fields in their title and group
        cols = decrypted_select(schema.names, fields=ALERT_FIELDS, id_column="alert_id")
    else:
        cols = decrypted_select(schema.names)
    return f"SELECT {cols} FROM read_parquet([{listing}], {hive})"


@dataclass(frozen=True)
class Layout:
    events: tuple[str, ...]
    audit: tuple[str, ...]
    checkpoints: tuple[str, ...]
    alerts: tuple[str, ...]
    tenants: tuple[str, ...]
    # An auditor without a grant on the read-audit tenant: its files (read once, while
    # building, never allowed afterwards) and the tenants whose reads the auditor sees.
    scoped_audit: tuple[str, ...] = ()
    audited: tuple[str, ...] = ()


def _empty_select(schema: pa.Schema) -> str:
    cols = ", ".join(
        f'CAST(NULL AS {_SQL_TYPES.get(f.type, "VARCHAR")}) AS "{f.name}"' for f in schema
    )
    return f"SELECT {cols} WHERE false"
