"""The write-ahead log's bytes on disk: segment and record headers, CRCs, reading records.

A segment is `<first seq, 20 digits>.wal`: a header (magic `AUDITWAL`, format version,
reserved, first seq), then records, each a header (magic, payload length, seq, CRC-32 of
the payload, length and seq) and its payload. ingest/wal.py is the log that writes,
recovers and trims them.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["MAX_PAYLOAD_BYTES", "WalCorruptError", "WalError"]


class WalError(Exception):
    """The write-ahead log cannot do what was asked (closed, failed, payload too large)."""


class WalCorruptError(WalError):
    """The log on disk is damaged somewhere other than a torn tail; nothing was dropped."""


MAX_PAYLOAD_BYTES = 256 * 2**20
"""Largest payload one record may hold (256 MiB)."""

SEGMENT = struct.Struct("<8sIIQ")  # magic, format version, reserved (0), first seq
SEGMENT_MAGIC = b"AUDITWAL"
VERSION = 1
RECORD = struct.Struct("<2sIQI")  # magic, payload length, seq, CRC-32
RECORD_MAGIC = b"\xa7\x1d"
CRC_TAIL = struct.Struct("<IQ")  # length and seq, as the CRC covers them after the payload
NAME = re.compile(r"^(\d{20})\.wal$")
IOV_MAX = 1024  # Linux's limit on buffers per pwritev call


def segment_path(directory: Path, first_seq: int) -> Path:
    """Where the segment whose first record is `first_seq` lives."""
    return directory / f"{first_seq:020d}.wal"


def payload_crc(payload: bytes) -> int:
    """Checks the size and starts the CRC outside the lock (zlib releases the GIL)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WalError(
            f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} byte "
            "(256 MiB) limit of one write-ahead log record"
        )
    return zlib.crc32(payload)


def segment_header(first_seq: int) -> bytes:
    """The header of a segment whose first record is `first_seq`."""
    return SEGMENT.pack(SEGMENT_MAGIC, VERSION, 0, first_seq)


def record_header(length: int, seq: int, started_crc: int) -> bytes:
    """The header of record `seq`, `started_crc` being its payload's (`payload_crc`)."""
    return RECORD.pack(
        RECORD_MAGIC, length, seq, zlib.crc32(CRC_TAIL.pack(length, seq), started_crc)
    )


def record_crc(payload: bytes | memoryview, length: int, seq: int) -> int:
    return zlib.crc32(CRC_TAIL.pack(length, seq), zlib.crc32(payload))


def check_record(mm: mmap.mmap, offset: int, size: int, seq: int) -> tuple[str | None, bool, int]:
    """(problem or None, whether a torn write could explain it, end offset of the record)."""
    if size - offset < RECORD.size:
        return "incomplete record header", True, size
    magic, length, found_seq, crc = RECORD.unpack_from(mm, offset)
    if magic != RECORD_MAGIC:
        return "bad record magic", True, size
    if length > MAX_PAYLOAD_BYTES:
        return f"record length {length} over the limit", True, size
    start, end = offset + RECORD.size, offset + RECORD.size + length
    if end > size:
        return f"incomplete payload ({size - start} of {length} bytes)", True, size
    with memoryview(mm) as view, view[start:end] as payload:
        if record_crc(payload, length, found_seq) != crc:
            return f"CRC mismatch in record seq {found_seq}", True, end
    if found_seq != seq:
        # A CRC-valid record in the wrong place is no torn write.
        return f"record seq {found_seq} where {seq} was expected", False, end
    return None, False, end


def valid_record_after(mm: mmap.mmap, offset: int, size: int, seq: int) -> bool:
    """Whether a CRC-valid record that could follow seq `seq` starts after `offset`."""
    highest = seq + (size - offset) // RECORD.size
    pos = offset
    while (pos := mm.find(RECORD_MAGIC, pos + 1, size)) >= 0:
        if size - pos < RECORD.size:
            return False
        _, _, found_seq, _ = RECORD.unpack_from(mm, pos)
        if seq <= found_seq <= highest:
            problem, _, _ = check_record(mm, pos, size, found_seq)
            if problem is None:
                return True
    return False


def replay(
    segments: list[tuple[Path, int, int]], after: int, limit: int
) -> Iterator[tuple[int, bytes]]:
    for i, (path, first_seq, size) in enumerate(segments):
        if first_seq > limit:
            return
        if i + 1 < len(segments) and segments[i + 1][1] - 1 <= after:
            continue  # every record here is <= after
        try:
            f = path.open("rb")
        except FileNotFoundError:
            continue  # trimmed since replay() was called
        with f:
            offset, seq = SEGMENT.size, first_seq
            f.seek(offset)
            while offset < size and seq <= limit:
                header = f.read(RECORD.size)
                if len(header) < RECORD.size:
                    raise WalCorruptError(f"{path}: record at offset {offset} is gone")
                magic, length, found_seq, crc = RECORD.unpack(header)
                end = offset + RECORD.size + length
                if magic != RECORD_MAGIC or found_seq != seq or end > size:
                    raise WalCorruptError(f"{path}: record header at offset {offset} changed")
                if seq <= after:
                    f.seek(length, os.SEEK_CUR)
                else:
                    payload = f.read(length)
                    if len(payload) != length or record_crc(payload, length, seq) != crc:
                        raise WalCorruptError(f"{path}: CRC mismatch at offset {offset}")
                    yield seq, payload
                offset, seq = end, seq + 1


def pwrite_all(fd: int, chunks: Sequence[bytes], offset: int) -> None:
    """Write all of `chunks` at `offset`, resuming after short writes."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    i = 0
    while i < len(views):
        written = os.pwritev(fd, views[i : i + IOV_MAX], offset)
        if written <= 0:
            raise OSError(errno.EIO, "pwritev wrote nothing")
        offset += written
        while written:
            if written >= len(views[i]):
                written -= len(views[i])
                i += 1
            else:
                views[i] = views[i][written:]
                written = 0
