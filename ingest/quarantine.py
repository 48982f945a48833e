"""The collector's quarantine: acknowledged records the lake refuses, kept on disk.

An event the collector acknowledged (202) is in the write-ahead log, and the WAL is only
trimmed after a lake commit. A record that can never be committed (an older collector
let through an event the lake now refuses, or a payload that no longer decodes) would
block every later record, for every tenant, forever. So the batcher isolates such
records and moves them here before trimming: the rest commits, and nothing acknowledged
is lost. Health reports failing while this directory holds anything, so an operator
looks: the events can be read with pyarrow (`pa.ipc.open_stream`), corrected and sent
again, and the files removed.

Events under an id that another event of their tenant already uses (lake/write/_unique.py) are
left out of the lake by design, not by failure: they are kept here too, as kind
`id-conflict`, and counted, but do not turn health failing. Every other part is kind
`refused`.

Each quarantined part is two files in `<wal dir>/quarantine` (mode 0700), written to a
temporary name, fsync'd and renamed, then the directory fsync'd, before the WAL is
trimmed past it:

- `<wal seq>-<n>-<kind>.arrows`: the events as an Arrow IPC stream, exactly as the WAL
  held them (receipt times included); `.raw` instead for a payload that did not decode;
- `<same name>.json`: why (the error's type and message), the WAL sequence number, how
  many events, their tenants and ids.

Logs name the file, the count, the tenants and the error's type, never event contents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa

__all__ = ["CONFLICT", "REFUSED", "Quarantine", "Quarantined"]

_SUFFIXES = (".arrows", ".raw")
REFUSED = "refused"
CONFLICT = "id-conflict"
MAX_IDS_LISTED = 1000


@dataclass(frozen=True)
class Quarantined:
    """What one `Quarantine.put` kept: its file, and what the log may say about it."""

    path: Path
    events: int
    tenants: list[str]


class Quarantine:
    """A directory of records the lake would not take (see the module docstring)."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self._fsync = fsync

    def put(
        self,
        seq: int,
        payload: bytes,
        error: BaseException,
        table: pa.Table | None = None,
        *,
        kind: str = REFUSED,
    ) -> Quarantined:
        """Keep `payload` (the IPC of `table`, or raw bytes when it did not decode) durably."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        suffix = ".arrows" if table is not None else ".raw"
        n = 0
        while (path := self.directory / f"{seq:020d}-{n}-{kind}{suffix}").exists():
            n += 1
        tenants: list[str] = []
        ids: list[str] = []
        if table is not None and {"tenant", "event_id"} <= set(table.column_names):
            tenants = sorted({str(t) for t in table.column("tenant").unique().to_pylist()})
            ids = [str(i) for i in table.column("event_id").slice(0, MAX_IDS_LISTED).to_pylist()]
        events = table.num_rows if table is not None else 0
        about = {
            "wal_seq": seq,
            "events": events,
            "tenants": tenants,
            "event_ids": ids,
            "kind": kind,
            "error": type(error).__name__,
            "message": str(error)[:4000],
            "quarantined_at": datetime.now(UTC).isoformat(),
        }
        # The sidecar first: a data file never exists without its reason.
        about_json = orjson.dumps(about, option=orjson.OPT_INDENT_2)
        self._write(path.with_name(path.name + ".json"), about_json)
        self._write(path, payload)
        if self._fsync:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return Quarantined(path=path, events=events, tenants=tenants)

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        tmp.rename(path)

    def files(self, kind: str | None = None) -> int:
        """Quarantined parts (of `kind`, or all) in the directory now; 0 when it is missing."""
        try:
            return sum(
                1
                for p in self.directory.iterdir()
                if p.suffix in _SUFFIXES and (kind is None or p.stem.endswith(f"-{kind}"))
            )
        except FileNotFoundError:
            return 0
