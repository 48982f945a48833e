"""Every path inside a lake, built here and nowhere else.

Paths are relative to the lake root and use `/` (they go to `pyarrow.fs` and delta-rs
URIs, local or object store alike):

    _auditlake/lake.json                 name, format, verifier keys published (not trusted)
    _auditlake/retention.json            retention policy and legal holds
    _auditlake/dek/<tenant>.json         wrapped data keys of an encrypted lake
    _auditlake/cosignatures/<tenant>.json witness cosignatures held for a tenant's checkpoints
    _auditlake/verify/last.json          the last verify run's summary (for `status`)
    _auditlake/detect/state.json         detection watermarks; run.lock beside it
    _auditlake/detect/spool/             alerts a sink has not accepted yet
    events/ checkpoints/ alerts/         Delta tables (partitioned tenant=<t>/…)
    tiles/<tenant>/tile/<level>/<index>  C2SP tlog-tiles hash tiles of a tenant's log
"""

from __future__ import annotations

from typing import Final

META: Final = "_auditlake/lake.json"
RETENTION: Final = "_auditlake/retention.json"
DEK_DIR: Final = "_auditlake/dek"
COSIGNATURES_DIR: Final = "_auditlake/cosignatures"
VERIFY_LOG: Final = "_auditlake/verify/last.json"
DETECT_STATE: Final = "_auditlake/detect/state.json"
DETECT_LOCK: Final = "_auditlake/detect/run.lock"
DETECT_SPOOL: Final = "_auditlake/detect/spool"

EVENTS: Final = "events"
CHECKPOINTS: Final = "checkpoints"
ALERTS: Final = "alerts"


def dek_file(tenant: str) -> str:
    """The wrapped data keys of one tenant of an encrypted lake."""
    return f"{DEK_DIR}/{tenant}.json"


def cosignatures_file(tenant: str) -> str:
    """The witness cosignatures held for one tenant's checkpoints."""
    return f"{COSIGNATURES_DIR}/{tenant}.json"


def spool_file(name: str) -> str:
    """One spooled alert delivery (`name` is a hash: no user text reaches the path)."""
    return f"{DETECT_SPOOL}/{name}.json"


def delta_log(table: str) -> str:
    """The Delta log folder of one of the lake's tables."""
    return f"{table}/_delta_log"


def delta_commit(table: str, version: int) -> str:
    """One commit file of a table's Delta log."""
    return f"{delta_log(table)}/{version:020d}.json"


def table_file(table: str, rel: str) -> str:
    """A data file of a table, from its path relative to the table (as Delta lists it)."""
    return f"{table}/{rel}"


def partition_dir(table: str, tenant: str) -> str:
    """The folder of one tenant's partition of a table."""
    return f"{table}/tenant={tenant}"


def tiles_dir(tenant: str) -> str:
    """The folder of one tenant's hash tiles."""
    return f"tiles/{tenant}"


def tile_file(tenant: str, level: int, index: str, partial: int | None = None) -> str:
    """A C2SP hash tile: `index` is the encoded tile index, `partial` a partial tile's width."""
    suffix = "" if partial is None else f".p/{partial}"
    return f"{tiles_dir(tenant)}/tile/{level}/{index}{suffix}"
