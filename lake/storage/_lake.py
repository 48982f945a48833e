"""The lake on storage: layout, metadata, the Delta tables and the tile files.

Layout under the lake root:

    _auditlake/lake.json   name, format, the verifier keys published (not trusted) here
    events/                Delta table, partitioned by tenant, event_date, append-only
    checkpoints/           Delta table, partitioned by tenant, append-only
    tiles/<tenant>/tile/…  C2SP tlog-tiles hash tiles of each tenant's Merkle log

Everything goes through `pyarrow.fs` and delta-rs URIs, so nothing above this module
assumes a local filesystem. The root is a local path or an object-store URI (`s3://`,
`gs://`, `az://`, `abfs[s]://`): delta-rs and pyarrow read their usual environment
(`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...), and `storage_options`
(delta-rs names) override it for every table and for the byte-level filesystem alike.

Concurrent writers on S3: the per-tenant sequencer needs the next Delta log entry to be
written only if absent. delta-rs 1.6.6 writes every commit with `If-None-Match: *`
(S3 conditional writes, no DynamoDB lock needed); options that ask for commits without
that guard are refused (`check_storage_options`), as are credentials inside the URI,
which would end up in logs and process lists.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import ColumnProperties, DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from lake.contract import (
    ALERTS_PARTITIONS,
    ALERTS_SCHEMA,
    CHECKPOINTS_PARTITIONS,
    CHECKPOINTS_SCHEMA,
    EVENTS_PARTITIONS,
    EVENTS_SCHEMA,
    LakeNotFoundError,
    StorageError,
    UsageError,
    is_valid_tenant,
)
from lake.spec import utc_text
from lake.storage import _paths as paths
from lake.storage._location import (
    check_storage_options,
    lake_location,
    remote_filesystem,
    storage_message,
)

FORMAT_VERSION = 1
LAKE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
SEQ_APP_PREFIX = "auditlake/seq/"
SEAL_APP_PREFIX = "auditlake/seal/"
APPEND_ONLY = {"delta.appendOnly": "true"}
# No dictionary for the events columns whose every value is unique (a dictionary there only
# adds bytes): 132 -> ~110 B/event at 10M events (benchmarks/query.py). Appends and
# optimize write with these.
EVENTS_COLUMNS: Final = {
    "event_id": ColumnProperties(dictionary_enabled=False),
    "leaf_hash": ColumnProperties(dictionary_enabled=False),
    "details": ColumnProperties(dictionary_enabled=False),
}
# On an object store every Delta log entry read is a request, and delta-rs 1.6.6 replays
# the log from the last Delta checkpoint on every app-transaction lookup (the sequencer:
# three per tenant per append). A Delta checkpoint every 5 commits instead of 100 cut an
# append of 20 tenants at version 26 from 3,124 requests to 429 (moto; 10: 974, 3: slower).
REMOTE_CHECKPOINT_INTERVAL = 5
# Remote Parquet files up to this size are read with one GET and parsed in memory:
# pq.read_table(path, filesystem=S3) made 3 HEADs and 2 GETs per file (verify: 5x the
# requests). Larger files (after optimize) keep column pruning through ranged reads.
WHOLE_READ_BYTES = 64 * 1024 * 1024


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
    size: int | None = None  # bytes, as the Delta log records it
    # The file's least and greatest event_id as its Delta statistics record them (filled
    # by `data_files(ids=True)`); None when unknown. A truncated maximum is rounded up by
    # the writer, so [min_id, max_id] always holds every id of the file.
    min_id: str | None = None
    max_id: str | None = None


class Lake:
    """An opened lake: its name, storage and tables. Cheap to create; holds no locks."""

    def __init__(
        self, root: str, meta: dict[str, Any], storage_options: Mapping[str, str] | None = None
    ) -> None:
        self.root = root
        self.meta = meta
        self.name: str = meta["name"]
        self.storage_options: dict[str, str] = dict(storage_options or {})
        self.fs: pafs.FileSystem
        self.base: str
        if "://" in root:
            check_storage_options(root, self.storage_options)
            try:
                self.fs, self.base = remote_filesystem(root, self.storage_options)
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise StorageError(f"cannot reach {root}: {self._message(exc)}") from None
        else:
            self.fs, self.base = pafs.LocalFileSystem(), root

    @property
    def is_local(self) -> bool:
        """True for a lake on a local filesystem (paths under `base` are real files)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def _message(self, exc: BaseException) -> str:
        return storage_message(exc, self.storage_options)

    # -- creation and opening -------------------------------------------------------------

    @staticmethod
    def _normalise(path: str | os.PathLike[str]) -> str:
        return lake_location(path)

    @classmethod
    def check_new(
        cls, path: str | os.PathLike[str], *, storage_options: Mapping[str, str] | None = None
    ) -> str:
        """Refuse, before anything is created, a location that holds a lake or is unusable."""
        root = cls._normalise(path)
        probe = cls(root, {"name": "?"}, storage_options)
        try:
            exists = probe._exists(paths.META)
            bucket = probe.base.split("/", 1)[0]
            if not probe.is_local and probe.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise StorageError(f"cannot reach {root}: bucket or container {bucket!r} not found")
        except OSError as exc:
            raise StorageError(f"cannot reach {root}: {probe._message(exc)}") from None
        if exists:
            raise UsageError(f"{root} already holds a lake; use it, or choose another --lake")
        return root

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        name: str,
        verifier_key: str,
        *,
        extra: dict[str, Any] | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> Lake:
        """Create a new, empty lake at `path` (which must not already hold one)."""
        check_lake_name(name)
        root = cls.check_new(path, storage_options=storage_options)
        lake = cls(root, {"name": name}, storage_options)
        now = utc_text(datetime.now(UTC))
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "created_at": now,
            "published_keys": [verifier_key],
            **(extra or {}),
        }
        config = dict(APPEND_ONLY)
        if not lake.is_local:
            config["delta.checkpointInterval"] = str(REMOTE_CHECKPOINT_INTERVAL)
        events_config = dict(config)
        encryption = (extra or {}).get("encryption") or {}
        if encryption.get("enabled"):
            # Statistics of encrypted columns would be bytes of their values in the Delta
            # log (and the read audit's query text, kept in the clear, is in `details`).
            hidden = set(encryption.get("fields") or ()) | set(EVENTS_PARTITIONS)
            events_config["delta.dataSkippingStatsColumns"] = ",".join(
                c for c in EVENTS_SCHEMA.names if c not in hidden
            )
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
                    configuration=events_config if uri == lake.events_uri else config,
                    name=table_name,
                    description=description,
                    storage_options=lake._options(),
                )
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot create a lake at {root}: {lake._message(exc)}") from None
        lake.write_bytes(paths.META, json.dumps(meta, indent=2).encode() + b"\n")
        lake.meta = meta
        return lake

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, storage_options: Mapping[str, str] | None = None
    ) -> Lake:
        """Open an existing lake, or say plainly that there is none.

        Args:
            path: a local directory or an object-store URI (`s3://bucket/prefix`, ...).
            storage_options: delta-rs storage options (endpoint, region, credentials,
                allow_http, ...) overriding the environment; used for every table and
                file of the lake.
        """
        root = cls._normalise(path)
        probe = cls(root, {"name": "?"}, storage_options)
        try:
            raw = probe.read_bytes(paths.META)
        except FileNotFoundError:
            raise LakeNotFoundError(
                f"no lake at {root} (run `auditlake init`, or point --lake / AUDITLAKE_LAKE at one)"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the lake at {root}: {probe._message(exc)}") from None
        try:
            meta = json.loads(raw)
        except ValueError:
            raise StorageError(f"{root}/{paths.META} is not valid JSON") from None
        if not isinstance(meta, dict):
            raise StorageError(f"{root}/{paths.META} is not a JSON object")
        if meta.get("format") != FORMAT_VERSION:
            raise StorageError(f"{root} uses lake format {meta.get('format')!r}; expected 1")
        # A damaged description is a one-line error, not a traceback in whoever reads it.
        keys = meta.get("published_keys", [])
        for field, bad in (
            ("name", not isinstance(meta.get("name"), str)),
            ("published_keys", not isinstance(keys, list) or any(type(k) is not str for k in keys)),
            ("encryption", not isinstance(meta.get("encryption", {}), dict)),
        ):
            if bad:
                raise StorageError(f"{root}/{paths.META}: {field} is missing or malformed")
        probe.meta, probe.name = meta, meta["name"]  # its filesystem is the one to keep
        return probe

    # -- raw bytes ----------------------------------------------------------------------------

    def full_path(self, rel: str) -> str:
        """A path inside the lake (from `lake.storage.paths`) as `self.fs` names it."""
        return f"{self.base.rstrip('/')}/{rel}"

    def _exists(self, rel: str) -> bool:
        return bool(self.fs.get_file_info(self.full_path(rel)).type != pafs.FileType.NotFound)

    def read_bytes(self, rel: str) -> bytes:
        """Read a file under the lake root; FileNotFoundError when absent."""
        if not self.is_local:
            # No separate existence check: a missing object raises FileNotFoundError here
            # (2 requests instead of 3).
            with self.fs.open_input_stream(self.full_path(rel)) as fh:
                return bytes(fh.read())
        info = self.fs.get_file_info(self.full_path(rel))
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(rel)
        if info.type == pafs.FileType.Unknown:  # a FIFO or a device: reading it may never end
            raise OSError(f"{rel} is not a regular file")
        with self.fs.open_input_stream(self.full_path(rel)) as fh:
            return bytes(fh.read())

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a file atomically under the lake root.

        Locally a temp file then a rename. On object stores one PUT is already atomic
        (readers see the old object or the new one, never a part), while a "move" is a
        copy plus a delete: twice the requests, and a crash leaves the temp object behind.
        """
        full = self.full_path(rel)
        if not self.is_local:
            with self.fs.open_output_stream(full) as fh:
                fh.write(data)
            return
        parent = full.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        # Local disk: plain os calls are ~5x cheaper than pyarrow.fs per small file,
        # which matters for tiles (thousands per million events).
        Path(parent).mkdir(parents=True, exist_ok=True)
        try:
            Path(tmp).write_bytes(data)
            Path(tmp).replace(full)
        except BaseException:  # e.g. ENOSPC: no empty temp file left behind
            Path(tmp).unlink(missing_ok=True)
            raise

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

    def _options(self) -> dict[str, str] | None:
        return self.storage_options or None

    def delta_table(self, uri: str, version: int | None = None) -> DeltaTable:
        """Open one of the lake's Delta tables with the lake's storage options.

        Every DeltaTable of the lake is opened here (or in the helpers below), so an
        object-store lake's endpoint and credentials reach each one. Errors pass through.
        """
        return DeltaTable(uri, version=version, storage_options=self._options())

    def events_table(self, version: int | None = None) -> DeltaTable:
        try:
            return self.delta_table(self.events_uri, version)
        except TableNotFoundError:
            raise StorageError(f"the events table of {self.root} is missing") from None
        except OSError as exc:
            raise StorageError(f"cannot read the events table: {self._message(exc)}") from None

    def checkpoints_table(self) -> DeltaTable:
        try:
            return self.delta_table(self.checkpoints_uri)
        except TableNotFoundError:
            raise StorageError(f"the checkpoints table of {self.root} is missing") from None
        except OSError as exc:
            raise StorageError(f"cannot read the checkpoints table: {self._message(exc)}") from None

    def alerts_table(self) -> DeltaTable | None:
        """The alerts table, or None before detection first wrote one."""
        try:
            return self.delta_table(self.alerts_uri)
        except TableNotFoundError:
            return None

    def create_alerts_table(self) -> DeltaTable:
        """Create the alerts table; fails (DeltaError) if another writer created it first."""
        return DeltaTable.create(
            self.alerts_uri,
            schema=ALERTS_SCHEMA,
            partition_by=list(ALERTS_PARTITIONS),
            storage_options=self._options(),
        )

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
        self.write_bytes(paths.META, json.dumps(self.meta, indent=2).encode() + b"\n")

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
        ids: bool = False,
    ) -> list[DataFile]:
        """Files of the events table, pruned by tenant, date and seq statistics.

        `ids` also fills each file's event_id range (`min_id`, `max_id`).
        """
        actions = pa.table(table.get_add_actions(flatten=True))
        # Only the columns we use: converting every stats column to Python cost ~10x more.
        wanted = ["path", "partition.tenant", "partition.event_date", "num_records", "size_bytes"]
        stats = ["min.seq", "max.seq"] + (["min.event_id", "max.event_id"] if ids else [])
        wanted += [c for c in stats if c in actions.column_names]
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
                    row["path"],
                    tenant,
                    day,
                    row.get("num_records"),
                    row.get("min.seq"),
                    max_seq,
                    row.get("size_bytes"),
                    row.get("min.event_id"),
                    row.get("max.event_id"),
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
        table = _as_contract(
            self._read_parquet(paths.table_file(paths.EVENTS, f.path), f.size, wanted, filters)
        )
        n = table.num_rows
        if columns is None or "tenant" in columns:
            table = table.append_column("tenant", pa.repeat(pa.scalar(f.tenant, pa.string()), n))
        if columns is None or "event_date" in columns:
            day = pa.scalar(f.event_date, pa.date32())
            table = table.append_column("event_date", pa.repeat(day, n))
        return table

    def _read_parquet(
        self,
        rel: str,
        size: int | None,
        columns: list[str] | None,
        filters: list[tuple[str, str, Any]] | None = None,
    ) -> pa.Table:
        """One Parquet file of the lake; small remote files in a single request."""
        if self.is_local or size is None or size > WHOLE_READ_BYTES:
            if filters is None:
                return _read_columns(self.full_path(rel), columns, self.fs)
            return pq.read_table(
                self.full_path(rel), columns=columns, filters=filters, filesystem=self.fs
            )
        with self.fs.open_input_stream(self.full_path(rel)) as fh:
            data = fh.read()
        if filters is None:
            return _read_columns(pa.BufferReader(data), columns)
        return pq.read_table(pa.BufferReader(data), columns=columns, filters=filters)

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

    def read_alerts(
        self, tenants: set[str] | None = None, table: DeltaTable | None = None
    ) -> pa.Table:
        """Rows of the alerts table (ALERTS_SCHEMA); empty before detection first ran.

        `table` reads that snapshot of the alerts table instead of the newest.
        """
        if table is None:
            table = self.alerts_table()
        if table is None:
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
            part = self._read_parquet(
                f"{rel}/{row['path']}",
                row.get("size_bytes"),
                [n for n in schema.names if n != "tenant"],
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


def _read_columns(
    source: str | pa.NativeFile, columns: list[str] | None, fs: pafs.FileSystem | None = None
) -> pa.Table:
    """Some columns of one Parquet file, all of it, through `pq.ParquetFile`.

    About 30 % cheaper than `pq.read_table` on the lake's small files (no dataset discovery:
    0.71 against 0.99 s for the 611 files of a 1M-event lake). Unlike `read_table` it skips
    a requested column the file lacks, so that is checked here and fails as `read_table`
    would (pinned in tests/lake/test_tamper.py).
    """
    with pq.ParquetFile(source, filesystem=fs) as pf:
        table = pf.read(columns=columns)
    if columns is not None and table.num_columns != len(columns):
        missing = sorted(set(columns) - set(table.column_names))
        raise pa.ArrowInvalid(f"the file has no column {', '.join(missing)}")
    return table


def _as_contract(table: pa.Table) -> pa.Table:
    """`table` with the contract's types, every column nullable, data copied only if needed.

    Other Delta writers (e.g. delta-rs DELETE/OPTIMIZE) may store string_view or large
    types, and Delta stores `leaf_hash` as plain binary: such columns are cast, so files
    always concatenate. Columns whose type already matches are only relabelled nullable.
    """
    fields = [EVENTS_SCHEMA.field(n).with_nullable(True) for n in table.column_names]
    schema = pa.schema(fields)
    if table.schema.equals(schema):
        return table
    columns = [
        c if c.type == f.type else c.cast(f.type)
        for c, f in zip(table.columns, fields, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=schema)
