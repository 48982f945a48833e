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

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import orjson
import pyarrow as pa

from ingest.durable import write_durably

__all__ = ["CONFLICT", "REFUSED", "Quarantine", "QuarantineKind", "QuarantineRecord", "Quarantined"]

_SUFFIXES = (".arrows", ".raw")
MAX_IDS_LISTED = 1000


class QuarantineKind(StrEnum):
    """Why a part is in the quarantine (the last part of its file name)."""

    REFUSED = "refused"  # the lake refused it: health fails until an operator looks
    CONFLICT = "id-conflict"  # left out for reusing a tenant's id: kept, health stays ok


REFUSED = QuarantineKind.REFUSED
CONFLICT = QuarantineKind.CONFLICT


@dataclass(frozen=True)
class QuarantineRecord:
    """A quarantined part's sidecar (`<part>.json`): why it is there, and what it holds."""

    wal_seq: int
    events: int
    tenants: list[str]
    event_ids: list[str]  # the first MAX_IDS_LISTED
    kind: QuarantineKind
    error: str  # the error's type
    message: str
    quarantined_at: str  # ISO 8601, UTC

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> QuarantineRecord:
        fields = orjson.loads(data)
        return cls(**{**fields, "kind": QuarantineKind(fields["kind"])})


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
        kind: QuarantineKind = REFUSED,
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
        about = QuarantineRecord(
            wal_seq=seq,
            events=events,
            tenants=tenants,
            event_ids=ids,
            kind=kind,
            error=type(error).__name__,
            message=str(error)[:4000],
            quarantined_at=datetime.now(UTC).isoformat(),
        )
        # The sidecar first: a data file never exists without its reason.
        write_durably(path.with_name(path.name + ".json"), about.to_json(), fsync=self._fsync)
        write_durably(path, payload, fsync=self._fsync, sync_directory=True)
        return Quarantined(path=path, events=events, tenants=tenants)

    def files(self, kind: QuarantineKind | None = None) -> int:
        """Quarantined parts (of `kind`, or all) in the directory now; 0 when it is missing."""
        try:
            return sum(
                1
                for p in self.directory.iterdir()
                if p.suffix in _SUFFIXES and (kind is None or p.stem.endswith(f"-{kind}"))
            )
        except FileNotFoundError:
            return 0
