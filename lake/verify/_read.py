"""Reading a damaged lake for `verify`: every part that cannot be read is a finding.

Verify exists for lakes that someone may have damaged, so a missing file or a Delta
commit that does not parse is what it must *report*, never die of. Each reader here
returns what it could read and names the rest: the kind (`unreadable_table` when a
table's Delta log cannot be loaded at all, `unreadable_file` for one file), the tenant
where the path tells it, and the path relative to the lake's root, so an operator knows
which file to restore.
"""

from __future__ import annotations

import re
from typing import Final

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lake.contract import CHECKPOINTS_SCHEMA, LakeError
from lake.storage import DataFile, Lake, paths
from lake.verify._report import Finding, FindingKind

READ_ERRORS: Final = (OSError, pa.ArrowException, DeltaError, LakeError)
"""What reading a damaged lake raises (FileNotFoundError is an OSError)."""
_COMMIT = re.compile(r"([0-9]{20})\.json")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "is missing"
    text = str(exc).strip().splitlines()
    return f"is unreadable ({text[0] if text else type(exc).__name__})"


def _damaged_commit(lake: Lake, table: str) -> str | None:
    """The first commit file of `table`'s Delta log that is missing or does not parse."""
    log = paths.delta_log(table)
    try:
        infos = lake.fs.get_file_info(pafs.FileSelector(lake.full_path(log)))
    except (OSError, pa.ArrowException):
        return None
    versions = sorted(
        int(m.group(1))
        for info in infos
        if (m := _COMMIT.fullmatch(info.base_name)) and info.type == pafs.FileType.File
    )
    for expected, version in enumerate(versions, start=versions[0] if versions else 0):
        rel = paths.delta_commit(table, expected)
        if version != expected:
            return rel  # a gap: this commit was removed
        try:
            for line in lake.read_bytes(rel).splitlines():
                if line.strip() and not isinstance(orjson.loads(line), dict):
                    return rel
        except (OSError, orjson.JSONDecodeError):
            return rel
    return None


def open_table(lake: Lake, table: str, findings: list[Finding]) -> DeltaTable | None:
    """The lake's `table` (`paths.EVENTS` or `paths.CHECKPOINTS`), or None with a finding why."""
    try:
        return lake.events_table() if table == paths.EVENTS else lake.checkpoints_table()
    except READ_ERRORS as exc:
        culprit = _damaged_commit(lake, table)
        where = culprit or paths.delta_log(table)
        what = f"commit {culprit}" if culprit else f"its Delta log ({_reason(exc)})"
        findings.append(
            Finding(
                "",
                FindingKind.UNREADABLE_TABLE,
                f"the {table} table cannot be read: {what} is damaged or missing",
                file=where,
            )
        )
        return None


def data_files(lake: Lake, table: DeltaTable, findings: list[Finding]) -> list[DataFile]:
    """The events table's data files (with id statistics), or none with a finding."""
    try:
        return lake.data_files(table, ids=True)
    except READ_ERRORS as exc:
        findings.append(
            Finding(
                "",
                FindingKind.UNREADABLE_TABLE,
                f"the events table's file list cannot be read ({_reason(exc)})",
                file=paths.delta_log(paths.EVENTS),
            )
        )
        return []


def read_checkpoints(lake: Lake, table: DeltaTable) -> tuple[pa.Table, list[Finding]]:
    """Every checkpoint row that can be read, and a finding for each file that cannot.

    Like `Lake.read_checkpoints` (rows sorted by tenant and tree size), but file by file
    so one lost file costs only its own rows.
    """
    findings: list[Finding] = []
    try:
        actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    except READ_ERRORS as exc:
        why = _reason(exc)
        message = f"the checkpoints table's file list cannot be read ({why})"
        return CHECKPOINTS_SCHEMA.empty_table(), [
            Finding(
                "", FindingKind.UNREADABLE_TABLE, message, file=paths.delta_log(paths.CHECKPOINTS)
            )
        ]
    columns = [n for n in CHECKPOINTS_SCHEMA.names if n != "tenant"]
    parts = []
    for action in actions:
        tenant = str(action["partition.tenant"])
        rel = paths.table_file(paths.CHECKPOINTS, action["path"])
        try:
            with pq.ParquetFile(pa.BufferReader(lake.read_bytes(rel))) as pf:
                part = pf.read(columns=columns)
            part = part.append_column("tenant", pa.array([tenant] * part.num_rows))
            parts.append(part.select(CHECKPOINTS_SCHEMA.names).cast(CHECKPOINTS_SCHEMA))
        except (*READ_ERRORS, KeyError, ValueError) as exc:
            message = f"checkpoints file {rel} {_reason(exc)}; the checkpoints in it are lost"
            findings.append(Finding(tenant, FindingKind.UNREADABLE_FILE, message, file=rel))
    if not parts:
        return CHECKPOINTS_SCHEMA.empty_table(), findings
    out = pa.concat_tables(parts).sort_by([("tenant", "ascending"), ("tree_size", "ascending")])
    return out, findings
