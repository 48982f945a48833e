"""The lake on storage: layout, metadata, the Delta tables and the tile files.

Layout under the lake root:

    _auditlake/lake.json   name, format, the verifier keys published (not trusted) here
    events/                Delta table, partitioned by tenant, event_date, append-only
    checkpoints/           Delta table, partitioned by tenant, append-only
    tiles/<tenant>/tile/…  C2SP tlog-tiles hash tiles of each tenant's Merkle log

Everything goes through `pyarrow.fs` and delta-rs URIs, so nothing above this module
assumes a local filesystem.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from lake.errors import LakeNotFoundError, StorageError, UsageError
from lake.schema import (
    ALERTS_SCHEMA,
    CHECKPOINTS_PARTITIONS,
    CHECKPOINTS_SCHEMA,
    EVENTS_PARTITIONS,
    EVENTS_SCHEMA,
    is_valid_tenant,
)

FORMAT_VERSION = 1
META_PATH = "_auditlake/lake.json"
LAKE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
SEQ_APP_PREFIX = "auditlake/seq/"
SEAL_APP_PREFIX = "auditlake/seal/"
APPEND_ONLY = {"delta.appendOnly": "true"}


def seq_app_id(tenant: str) -> str:
    """Delta app-transaction id whose version is the tenant's committed log size."""
    return SEQ_APP_PREFIX + tenant


def seal_app_id(tenant: str) -> str:
    """Delta app-transaction id whose version is the tenant's sealed (checkpointed) size."""
    return SEAL_APP_PREFIX + tenant


def check_lake_name(name: str) -> str:
    """Validate a lake name (it goes into every checkpoint origin)."""
    if not re.fullmatch(LAKE_NAME_PATTERN, name):
        raise UsageError(
            f"invalid lake name {name!r}: lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return name


def check_tenant(tenant: str) -> str:
    """Validate a tenant id before it reaches a path, a filter or SQL."""
    if not isinstance(tenant, str) or not is_valid_tenant(tenant):
        raise UsageError(
            f"invalid tenant id {tenant!r}: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return tenant


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of the events table with its partition values and seq range."""

    path: str  # relative to the events table root
    tenant: str
    event_date: date
    num_records: int | None
    min_seq: int | None
    max_seq: int | None


class Lake:
    """An opened lake: its name, storage and tables. Cheap to create; holds no locks."""

    def __init__(self, root: str, meta: dict[str, Any]) -> None:
        self.root = root
        self.meta = meta
        self.name: str = meta["name"]
        self.fs: pafs.FileSystem
        self.base: str
        if "://" in root:
            self.fs, self.base = pafs.FileSystem.from_uri(root)
        else:
            self.fs, self.base = pafs.LocalFileSystem(), root

    # -- creation and opening -------------------------------------------------------------

    @staticmethod
    def _normalise(path: str | os.PathLike[str]) -> str:
        text = os.fspath(path)
        return text if "://" in text else str(Path(text).expanduser().resolve())

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        name: str,
        verifier_key: str,
        *,
        extra: dict[str, Any] | None = None,
    ) -> Lake:
        """Create a new, empty lake at `path` (which must not already hold one)."""
        check_lake_name(name)
        root = cls._normalise(path)
        lake = cls(root, {"name": name})
        if lake._exists(META_PATH):
            raise UsageError(f"{root} already holds a lake; use it, or choose another --lake")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "created_at": now,
            "published_keys": [verifier_key],
            **(extra or {}),
        }
        tables = [
            (lake.events_uri, EVENTS_SCHEMA, EVENTS_PARTITIONS, "events",
             "auditlake events: one row per audit event, sealed per tenant"),
            (lake.checkpoints_uri, CHECKPOINTS_SCHEMA, CHECKPOINTS_PARTITIONS, "checkpoints",
             "auditlake signed checkpoints (C2SP tlog-checkpoint)"),
        ]  # fmt: skip
        try:
            for uri, schema, partitions, table_name, description in tables:
                DeltaTable.create(
                    uri,
                    schema=schema,
                    partition_by=partitions,
                    configuration=APPEND_ONLY,
                    name=table_name,
                    description=description,
                )
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot create a lake at {root}: {exc}") from None
        lake.write_bytes(META_PATH, json.dumps(meta, indent=2).encode() + b"\n")
        lake.meta = meta
        return lake

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Lake:
        """Open an existing lake, or say plainly that there is none."""
        root = cls._normalise(path)
        probe = cls(root, {"name": "?"})
        try:
            raw = probe.read_bytes(META_PATH)
        except FileNotFoundError:
            raise LakeNotFoundError(
                f"no lake at {root} (run `auditlake init`, or point --lake / AUDITLAKE_LAKE at one)"
            ) from None
        try:
            meta = json.loads(raw)
        except ValueError:
            raise StorageError(f"{root}/{META_PATH} is not valid JSON") from None
        if meta.get("format") != FORMAT_VERSION:
            raise StorageError(f"{root} uses lake format {meta.get('format')!r}; expected 1")
        return cls(root, meta)

    # -- raw bytes ----------------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        return f"{self.base.rstrip('/')}/{rel}"

    def _exists(self, rel: str) -> bool:
        return bool(self.fs.get_file_info(self._full(rel)).type != pafs.FileType.NotFound)

    def read_bytes(self, rel: str) -> bytes:
        """Read a file under the lake root; FileNotFoundError when absent."""
        info = self.fs.get_file_info(self._full(rel))
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(rel)
        with self.fs.open_input_stream(self._full(rel)) as fh:
            return bytes(fh.read())

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a file atomically (temp file then rename) under the lake root."""
        full = self._full(rel)
        parent = full.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        if isinstance(self.fs, pafs.LocalFileSystem):
            # Local disk: plain os calls are ~5x cheaper than pyarrow.fs per small file,
            # which matters for tiles (thousands per million events).
            Path(parent).mkdir(parents=True, exist_ok=True)
            Path(tmp).write_bytes(data)
            Path(tmp).replace(full)
            return
        self.fs.create_dir(parent, recursive=True)
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, full)

    # -- tables ---------------------------------------------------------------------------

    @property
    def events_uri(self) -> str:
        return f"{self.root.rstrip('/')}/events"

    @property
    def checkpoints_uri(self) -> str:
        return f"{self.root.rstrip('/')}/checkpoints"

    @property
    def alerts_uri(self) -> str:
        return f"{self.root.rstrip('/')}/alerts"

    def events_table(self) -> DeltaTable:
        try:
            return DeltaTable(self.events_uri)
        except TableNotFoundError:
            raise StorageError(f"the events table of {self.root} is missing") from None

    def checkpoints_table(self) -> DeltaTable:
        try:
            return DeltaTable(self.checkpoints_uri)
        except TableNotFoundError:
            raise StorageError(f"the checkpoints table of {self.root} is missing") from None

    def origin(self, tenant: str) -> str:
        """The checkpoint origin line of a tenant's log."""
        return f"auditlake/{self.name}/{tenant}"

    @property
    def published_keys(self) -> list[str]:
        keys = self.meta.get("published_keys", [])
        return [k for k in keys if isinstance(k, str)]

    def publish_key(self, verifier_key: str) -> None:
        """Record a verifier key in the lake (for convenience only: it is never trusted)."""
        if verifier_key in self.published_keys:
            return
        self.meta["published_keys"] = [*self.published_keys, verifier_key]
        self.write_bytes(META_PATH, json.dumps(self.meta, indent=2).encode() + b"\n")

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def tree_size(table: DeltaTable, tenant: str) -> int:
        """Committed size of the tenant's log in this snapshot of the events table."""
        return int(table.transaction_version(seq_app_id(tenant)) or 0)

    @staticmethod
    def sealed_size(table: DeltaTable, tenant: str) -> int:
        """Sealed size of the tenant's log in this snapshot of the checkpoints table."""
        return int(table.transaction_version(seal_app_id(tenant)) or 0)

    def tenants(self, table: DeltaTable | None = None) -> list[str]:
        """Tenants that have events, sorted."""
        table = table or self.events_table()
        return sorted({p["tenant"] for p in table.partitions()})

    def data_files(
        self,
        table: DeltaTable,
        *,
        tenants: set[str] | None = None,
        dates: set[date] | None = None,
        min_seq: int | None = None,
    ) -> list[DataFile]:
        """Files of the events table, pruned by tenant, date and seq statistics."""
        actions = pa.table(table.get_add_actions(flatten=True))
        # Only the columns we use: converting every stats column to Python cost ~10x more.
        wanted = ["path", "partition.tenant", "partition.event_date", "num_records"]
        wanted += [c for c in ("min.seq", "max.seq") if c in actions.column_names]
        rows = actions.select(wanted).to_pylist()
        out = []
        for row in rows:
            tenant = row["partition.tenant"]
            day = row["partition.event_date"]
            if tenants is not None and tenant not in tenants:
                continue
            if dates is not None and day not in dates:
                continue
            max_seq = row.get("max.seq")
            if min_seq is not None and max_seq is not None and max_seq < min_seq:
                continue
            out.append(
                DataFile(
                    row["path"], tenant, day, row.get("num_records"), row.get("min.seq"), max_seq
                )
            )
        return out

    def read_file(
        self,
        f: DataFile,
        columns: list[str] | None = None,
        filters: list[tuple[str, str, Any]] | None = None,
    ) -> pa.Table:
        """Read one events data file (rows matching `filters`) and restore its partition columns."""
        wanted = [c for c in columns if c not in ("tenant", "event_date")] if columns else None
        table = pq.read_table(
            self._full(f"events/{f.path}"), columns=wanted, filters=filters, filesystem=self.fs
        )
        # Other Delta writers (e.g. delta-rs DELETE/OPTIMIZE) may store string_view or large
        # types; normalise to the contract's types so files always concatenate.
        target = pa.schema([EVENTS_SCHEMA.field(n).with_nullable(True) for n in table.column_names])
        if table.schema != target:
            table = table.cast(target)
        n = table.num_rows
        if columns is None or "tenant" in columns:
            table = table.append_column("tenant", pa.array([f.tenant] * n, pa.string()))
        if columns is None or "event_date" in columns:
            table = table.append_column("event_date", pa.array([f.event_date] * n, pa.date32()))
        return table

    def read_checkpoints(self, tenants: set[str] | None = None) -> pa.Table:
        """Rows of the checkpoints table, sorted by tenant and tree size.

        Read file by file rather than through `DeltaTable.to_pyarrow_table()`: that path
        leaves Arrow scanner threads alive into interpreter shutdown, which aborts the
        process (delta-rs#2184, polars#24169) and would break our exit codes.
        """
        out = self._read_by_tenant(
            self.checkpoints_table(), "checkpoints", CHECKPOINTS_SCHEMA, tenants
        )
        return out.sort_by([("tenant", "ascending"), ("tree_size", "ascending")])

    def read_alerts(self, tenants: set[str] | None = None) -> pa.Table:
        """Rows of the alerts table (ALERTS_SCHEMA); empty before detection first ran."""
        try:
            table = DeltaTable(self.alerts_uri)
        except TableNotFoundError:
            return ALERTS_SCHEMA.empty_table()
        return self._read_by_tenant(table, "alerts", ALERTS_SCHEMA, tenants).cast(ALERTS_SCHEMA)

    def _read_by_tenant(
        self, table: DeltaTable, rel: str, schema: pa.Schema, tenants: set[str] | None
    ) -> pa.Table:
        """A small tenant-partitioned table, file by file, with its tenant column restored."""
        parts = []
        for row in pa.table(table.get_add_actions(flatten=True)).to_pylist():
            tenant = row["partition.tenant"]
            if tenants is not None and tenant not in tenants:
                continue
            part = pq.read_table(
                self._full(f"{rel}/{row['path']}"),
                columns=[n for n in schema.names if n != "tenant"],
                filesystem=self.fs,
            )
            parts.append(part.append_column("tenant", pa.array([tenant] * part.num_rows)))
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts, promote_options="permissive").select(schema.names)

    def read_rows(self, files: list[DataFile], columns: list[str] | None = None) -> pa.Table:
        """Read several data files into one table (errors propagate to the caller)."""
        parts = [self.read_file(f, columns) for f in files]
        if not parts:
            fields = [EVENTS_SCHEMA.field(c) for c in (columns or EVENTS_SCHEMA.names)]
            return pa.schema(fields).empty_table()
        return pa.concat_tables(parts, promote_options="permissive")
