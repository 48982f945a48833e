"""A write-ahead log: why the collector may answer 202 before the lake commit.

The collector acknowledges a request only once its events are in this log on stable
storage; it commits them to the lake later, in batches, and trims the log only after that
commit. So a crash (kill -9, or power loss after an fsync) between the 202 and the commit
loses nothing: on restart the log is replayed. Payloads are opaque bytes (the collector
stores one request's Arrow IPC stream per record).

Layout. A directory (mode 0700) holding a `LOCK` file (an advisory lock keeps a second
process out) and segment files named by the sequence number of their first record,
`00000000000000001234.wal`. A segment starts with a 24-byte header (magic, format
version, first seq: the same number as the name) followed by records, all little-endian::

    magic (2 bytes) | payload length (uint32) | seq (uint64) | CRC-32 (uint32) | payload

The CRC (zlib's; no CRC32C library is installed, and a dependency is not worth it here)
covers the payload, then the length and seq, so a record copied to another place in the
log does not verify. Sequence numbers start at 1 and run consecutively across segments.

Durability argument:

1. `append` returns only after an fsync of the active segment that started after the
   record was written (group commit: one fsync covers every record written before it,
   so concurrent appenders share it; one of them leads, the others wait).
2. A segment is written as `<name>.tmp`, its header fsync'd, then renamed and the
   directory fsync'd: a segment name on disk always has a complete header.
3. Before a new segment is created the current one is fsync'd, so every segment but the
   last is complete. Damage in one of them, or a missing segment (a gap in the
   numbering), is corruption: `WalCorruptError`, never skipped.
4. Only the last segment can end in a record that was being written when the process or
   the machine died: a torn tail. Opening truncates it when nothing valid follows the
   first bad record (a partial header or payload, zeros, or a CRC mismatch in the final
   record). By (1) such a record was never acknowledged. If a CRC-valid record does
   follow a bad one, the bad one may have been acknowledged, so that is corruption too.
   (The price: an acknowledged final record that rots on disk afterwards is taken for a
   torn write. Telling the two apart would need another fsync'd write per group.)
5. Trim deletes whole segments, oldest first, and never the active one: a crash
   mid-trim leaves a shorter, still contiguous log, and the active segment's name keeps
   the numbering from going backwards after a restart, even when every record is trimmed.
   When a trim covers every record of the active segment, a new (empty, durable) segment
   named by the next seq becomes active first and the old one is deleted with the rest,
   so a clean restart replays nothing.
6. A failed write or fsync makes this instance unusable (every later call raises
   `WalError`): after a failed fsync the kernel may have dropped the dirty pages, so
   nothing since the last good fsync can be vouched for. Reopening recovers as in (4).

With `fsync=False` records survive a process crash (they are in the page cache) but not
a power loss. Memory stays bounded: opening scans segments through `mmap`, replay streams
one record at a time. Payloads are never logged.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.closing import Closing
from ingest.durable import fsync_directory
from ingest.wal_records import (
    MAX_PAYLOAD_BYTES,
    NAME,
    RECORD,
    SEGMENT,
    SEGMENT_MAGIC,
    VERSION,
    WalCorruptError,
    WalError,
    check_record,
    payload_crc,
    pwrite_all,
    record_header,
    replay,
    segment_header,
    segment_path,
    valid_record_after,
)

__all__ = ["MAX_PAYLOAD_BYTES", "WalCorruptError", "WalError", "WalStats", "WriteAheadLog"]

_TMP_SUFFIX = ".tmp"
_LOCK_NAME = "LOCK"
_FIRST_SEQ = 1


@dataclass(frozen=True)
class WalStats:
    """What the log holds on disk now, and how often it has fsync'd since it was opened.

    `records` and `bytes` count everything in the remaining segments (trim deletes whole
    segments, so records at or below the last trim can still be counted until their
    segment goes); `oldest_seq` is the first of them, None when there are none.
    """

    records: int
    bytes: int
    segments: int
    fsyncs: int
    oldest_seq: int | None
    next_seq: int


@dataclass
class _Segment:
    first_seq: int
    path: Path
    records: int
    size: int

    @property
    def next_seq(self) -> int:
        return self.first_seq + self.records


class WriteAheadLog(Closing):
    """A durable, numbered, append-only log of opaque payloads, safe to share between threads.

    Args:
        directory: Where the segments live; created (mode 0700) when missing.
        segment_bytes: A new segment starts when a record would take the current one past
            this size (a single larger record still gets a segment of its own).
        fsync: Wait for stable storage before `append` returns. Off: records survive a
            process crash but not a power loss (for tests and benchmarks).
        group_window_s: How long the thread that leads an fsync waits for more records
            to join it. 0 still groups the appends that arrive during an fsync.

    Raises:
        WalError: The directory cannot be used, or another process has it open.
        WalCorruptError: A record or segment is damaged other than as a torn tail.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 2**20,
        fsync: bool = True,
        group_window_s: float = 0.0,
    ) -> None:
        if segment_bytes < SEGMENT.size + RECORD.size:
            raise WalError(f"segment_bytes must be at least {SEGMENT.size + RECORD.size}")
        if group_window_s < 0:
            raise WalError("group_window_s must not be negative")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._window = group_window_s
        # Lock order: _trim_lock, then _lock, then _cond; never the other way round.
        self._lock = threading.Lock()  # writes, the segment list, seq assignment
        self._cond = threading.Condition(threading.Lock())  # durable seq, fsync leadership
        self._trim_lock = threading.Lock()
        self._fsyncs = 0
        self._syncing = False
        self._failed: str | None = None
        self._closed = False
        self._lock_fd = self._lock_directory()
        try:
            self._segments = self._recover()
            active = self._segments[-1]
            self._fd = os.open(active.path, os.O_WRONLY | os.O_CLOEXEC)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._next_seq = active.next_seq
        self._durable_seq = self._next_seq - 1

    @property
    def directory(self) -> Path:
        """The directory holding the segments."""
        return self._dir

    # -- writing --------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Make one payload durable and return its sequence number.

        Raises:
            WalError: The payload is over 256 MiB, the log is closed, or a write or fsync
                failed (the record is then not acknowledged, though it may survive).
        """
        return self.append_many([payload])[0]

    def append_many(self, payloads: Sequence[bytes]) -> list[int]:
        """Make several payloads durable together (one write, one fsync wait); their seqs.

        The records get consecutive sequence numbers and may span a segment boundary.
        """
        crcs = [payload_crc(payload) for payload in payloads]
        with self._lock:
            self._check_usable()
            first = self._next_seq
            try:
                self._write_locked(payloads, crcs)
            except (OSError, WalError) as exc:
                # Part of a record may be on disk: nothing more may be written after it.
                raise WalError(self._fail(f"write to {self._dir} failed: {exc}")) from exc
            last = self._next_seq - 1
            if not self._fsync:
                with self._cond:
                    self._durable_seq = last
        if self._fsync and payloads:
            self._wait_durable(last)
        return list(range(first, last + 1))

    def _write_locked(self, payloads: Sequence[bytes], crcs: list[int]) -> None:
        chunks: list[bytes] = []
        batch_bytes = batch_records = 0
        seq = self._next_seq
        for payload, started_crc in zip(payloads, crcs, strict=True):
            length = len(payload)
            record_bytes = RECORD.size + length
            active = self._segments[-1]
            if (active.records or batch_records) and (
                active.size + batch_bytes + record_bytes > self._segment_bytes
            ):
                self._flush_locked(chunks, batch_bytes, batch_records)
                chunks, batch_bytes, batch_records = [], 0, 0
                self._rotate_locked()
            chunks += (record_header(length, seq, started_crc), payload)
            batch_bytes += record_bytes
            batch_records += 1
            seq += 1
        self._flush_locked(chunks, batch_bytes, batch_records)

    def _flush_locked(self, chunks: list[bytes], nbytes: int, nrecords: int) -> None:
        if not nrecords:
            return
        active = self._segments[-1]
        pwrite_all(self._fd, chunks, active.size)
        active.size += nbytes
        active.records += nrecords
        self._next_seq += nrecords

    def _rotate_locked(self) -> None:
        """Seal the active segment (fsync'd first: see the module docstring, point 3)."""
        old = self._segments[-1]
        if self._fsync:
            os.fsync(self._fd)
            self._count_fsyncs(1)
        os.close(self._fd)
        self._fd = -1
        with self._cond:
            self._durable_seq = max(self._durable_seq, old.next_seq - 1)
            self._cond.notify_all()
        segment, self._fd = self._create_segment(self._next_seq)
        self._segments.append(segment)

    def _wait_durable(self, seq: int) -> None:
        """Return once `seq` is fsync'd: wait for the current leader, or become it."""
        while True:
            with self._cond:
                while True:
                    if self._durable_seq >= seq:
                        return
                    if self._failed is not None:
                        raise WalError(self._failed)
                    if not self._syncing:
                        self._syncing = True
                        break
                    self._cond.wait()
            self._lead_fsync()

    def _lead_fsync(self) -> None:
        if self._window:
            time.sleep(self._window)  # let more writers join this fsync
        fd, upto = -1, 0
        error: OSError | None = None
        try:
            with self._lock:
                if not self._closed and self._failed is None:
                    # A duplicate, so a rotation or close may close the original meanwhile.
                    fd = os.dup(self._fd)
                    upto = self._next_seq - 1
            if fd >= 0:
                os.fsync(fd)
        except OSError as exc:
            error = exc
        finally:
            if fd >= 0:
                os.close(fd)
            with self._cond:
                self._syncing = False
                if error is not None:
                    self._fail_locked(f"fsync of {self._dir} failed: {error}")
                elif fd >= 0:
                    self._fsyncs += 1
                    self._durable_seq = max(self._durable_seq, upto)
                self._cond.notify_all()

    # -- reading and trimming -------------------------------------------------------------

    def replay(self, after: int = -1) -> Iterator[tuple[int, bytes]]:
        """Every durable record with seq > `after`, in order, as (seq, payload), streamed.

        The records are those durable when this is called. Each is checked against its
        CRC again as it is read. A segment trimmed while the iterator runs is skipped.

        Raises:
            WalError: The log is closed.
            WalCorruptError: (while iterating) a record changed on disk since it was written.
        """
        with self._lock:
            self._check_open()
            segments = [(s.path, s.first_seq, s.size) for s in self._segments]
            with self._cond:
                limit = self._durable_seq
        return replay(segments, after, limit)

    def trim(self, upto: int) -> None:
        """Delete the segments whose records all have seq <= `upto` (never the active one).

        Oldest first, so a crash part-way leaves a contiguous log. Records <= `upto` that
        share a segment with later ones stay until that segment is trimmed too.
        """
        with self._trim_lock:
            with self._lock:
                self._check_usable()
                doomed: list[_Segment] = []
                while len(self._segments) > 1 and self._segments[0].next_seq - 1 <= upto:
                    doomed.append(self._segments.pop(0))
                doomed += self._retire_active_locked(upto)
            # Unlinking a large file can take a while: appends need not wait for it.
            try:
                for segment in doomed:
                    segment.path.unlink()
                if doomed and self._fsync:
                    fsync_directory(self._dir)
                    self._count_fsyncs(1)
            except OSError as exc:
                raise WalError(f"trim of {self._dir} failed: {exc}") from exc

    def _retire_active_locked(self, upto: int) -> list[_Segment]:
        """When every record of the active segment is <= `upto`, start the next segment and
        return the old one to delete (point 5): a clean restart then replays nothing.

        The new segment is made durable before the old one is closed. When it cannot be
        created (e.g. no space left), the old one stays active and its records stay until
        a later trim; only a segment left half-created makes the log unusable.
        """
        active = self._segments[-1]
        if not active.records or active.next_seq - 1 > upto:
            return []
        try:
            segment, fd = self._create_segment(self._next_seq)
        except (OSError, WalError) as exc:
            if segment_path(self._dir, self._next_seq).exists():
                raise WalError(self._fail(f"new segment in {self._dir} failed: {exc}")) from exc
            return []
        try:
            if self._fsync:
                os.fsync(self._fd)  # appenders waiting on these records may count on it
                self._count_fsyncs(1)
        except OSError as exc:
            os.close(fd)
            raise WalError(self._fail(f"fsync of {self._dir} failed: {exc}")) from exc
        os.close(self._fd)
        self._fd = fd
        self._segments[-1] = segment
        with self._cond:
            self._durable_seq = max(self._durable_seq, active.next_seq - 1)
            self._cond.notify_all()
        return [active]

    def stats(self) -> WalStats:
        """Records, bytes and segments on disk, fsyncs since opening, the next seq."""
        with self._lock:
            records = sum(s.records for s in self._segments)
            size = sum(s.size for s in self._segments)
            with self._cond:
                fsyncs = self._fsyncs
            return WalStats(
                records=records,
                bytes=size,
                segments=len(self._segments),
                fsyncs=fsyncs,
                oldest_seq=self._segments[0].first_seq if records else None,
                next_seq=self._next_seq,
            )

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Fsync and close; later appends raise `WalError`. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            fd, self._fd = self._fd, -1
            error: OSError | None = None
            try:
                if self._fsync and self._failed is None and fd >= 0:
                    os.fsync(fd)
                    self._count_fsyncs(1)
            except OSError as exc:
                error = exc
            finally:
                if fd >= 0:
                    os.close(fd)
                os.close(self._lock_fd)  # releases the directory lock
            with self._cond:
                if error is not None:
                    self._fail_locked(f"fsync of {self._dir} failed on close: {error}")
                elif self._failed is None:
                    self._durable_seq = self._next_seq - 1
                self._cond.notify_all()
        if error is not None:
            raise WalError(f"fsync of {self._dir} failed on close: {error}") from error

    def __repr__(self) -> str:
        return f"WriteAheadLog({str(self._dir)!r})"

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WalError(f"write-ahead log {self._dir} is closed")

    def _check_usable(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise WalError(self._failed)

    def _fail(self, message: str) -> str:
        with self._cond:
            return self._fail_locked(message)

    def _fail_locked(self, message: str) -> str:
        if self._failed is None:
            self._failed = f"{message}; this log is unusable until reopened"
        self._cond.notify_all()
        return self._failed

    def _count_fsyncs(self, n: int) -> None:
        with self._cond:
            self._fsyncs += n

    def _lock_directory(self) -> int:
        try:
            created = not self._dir.exists()
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if created and self._fsync:
                fsync_directory(self._dir.parent)
                self._count_fsyncs(1)
            fd = os.open(self._dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise WalError(f"cannot open write-ahead log {self._dir}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise WalError(f"write-ahead log {self._dir} is in use by another process") from exc
        return fd

    def _recover(self) -> list[_Segment]:
        """Scan every segment, truncate a torn tail of the last, check the numbering."""
        try:
            found: list[tuple[int, Path]] = []
            leftovers = False
            for path in self._dir.iterdir():
                if path.name.endswith(_TMP_SUFFIX) and NAME.match(path.name[: -len(_TMP_SUFFIX)]):
                    path.unlink()  # a segment whose creation a crash interrupted
                    leftovers = True
                elif match := NAME.match(path.name):
                    found.append((int(match[1]), path))
            if leftovers and self._fsync:
                fsync_directory(self._dir)
                self._count_fsyncs(1)
            found.sort()
            if not found:
                segment, fd = self._create_segment(_FIRST_SEQ)
                os.close(fd)
                return [segment]
            segments: list[_Segment] = []
            for i, (first_seq, path) in enumerate(found):
                segment = self._scan(path, first_seq, last=i == len(found) - 1)
                if segments and segment.first_seq != segments[-1].next_seq:
                    prev = segments[-1]
                    raise WalCorruptError(
                        f"{self._dir}: {path.name} follows {prev.path.name}, which ends "
                        f"at seq {prev.next_seq - 1}: a segment is missing or damaged"
                    )
                segments.append(segment)
            return segments
        except OSError as exc:
            raise WalError(f"cannot recover write-ahead log {self._dir}: {exc}") from exc

    def _scan(self, path: Path, first_seq: int, *, last: bool) -> _Segment:
        with path.open("r+b" if last else "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < SEGMENT.size:
                raise WalCorruptError(f"{path}: segment header is incomplete ({size} bytes)")
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
                magic, version, _, header_seq = SEGMENT.unpack_from(mm, 0)
                if magic != SEGMENT_MAGIC or version != VERSION or header_seq != first_seq:
                    raise WalCorruptError(
                        f"{path}: bad segment header (magic {magic!r}, version {version}, "
                        f"first seq {header_seq})"
                    )
                offset, seq = SEGMENT.size, first_seq
                while offset < size:
                    problem, maybe_torn, end = check_record(mm, offset, size, seq)
                    if problem is None:
                        offset, seq = end, seq + 1
                        continue
                    if last and maybe_torn and not valid_record_after(mm, offset, size, seq):
                        break
                    raise WalCorruptError(f"{path}: {problem} at offset {offset}")
            if offset < size:  # the torn tail: never acknowledged, see the module docstring
                os.ftruncate(f.fileno(), offset)
                if self._fsync:
                    os.fsync(f.fileno())
                    self._count_fsyncs(1)
        return _Segment(first_seq=first_seq, path=path, records=seq - first_seq, size=offset)

    def _create_segment(self, first_seq: int) -> tuple[_Segment, int]:
        """A new empty segment, durable under its final name; its fd, open for writing."""
        path = segment_path(self._dir, first_seq)
        if path.exists():
            raise WalCorruptError(f"{path} already exists: cannot start a segment there")
        tmp = path.with_name(path.name + _TMP_SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            pwrite_all(fd, [segment_header(first_seq)], 0)
            if self._fsync:
                os.fsync(fd)
            tmp.rename(path)
            if self._fsync:
                fsync_directory(self._dir)
                self._count_fsyncs(2)
        except BaseException:
            os.close(fd)
            raise
        return _Segment(first_seq=first_seq, path=path, records=0, size=SEGMENT.size), fd
