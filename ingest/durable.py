"""Writing files so that a crash or a power cut leaves the old version or the new, never half.

One helper for every file ingest keeps on disk outside the WAL's own segments: the SDK's
spool, the collector's quarantine, the token store, a WAL segment's header. Standard
library only: the SDK imports it, and a service that only sends events must not pay for
pyarrow or the lake.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_directory", "write_all", "write_durably"]


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of `data` to `fd` (`os.write` may write less than it was given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(directory: Path) -> None:
    """Make the creation, rename or deletion of a file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(
    path: Path,
    data: bytes,
    *,
    tmp: Path | None = None,
    fsync: bool = True,
    exclusive: bool = False,
    sync_directory: bool = False,
) -> None:
    """Put `data` at `path` atomically: a temporary file (mode 0600), fsync'd, renamed over.

    Args:
        tmp: the temporary file, in `path`'s directory (default: `path` + ".tmp").
        fsync: wait for stable storage (off: atomic against a process crash only).
        exclusive: refuse a temporary file that exists already (another writer's).
        sync_directory: fsync the directory after the rename too, so the new name survives
            a power cut (with `fsync`).

    Raises:
        OSError: the write, an fsync or the rename failed; `path` is then as it was, and
            the temporary file may be left behind (the caller decides whether to remove it).
    """
    tmp = tmp if tmp is not None else path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(tmp, flags, 0o600)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    if fsync and sync_directory:
        fsync_directory(path.parent)
