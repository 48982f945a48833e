"""The SDK's on-disk spool: one NDJSON file per batch, atomic and durable, oldest first.

Standard library only.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from time import time_ns

from ingest.durable import write_durably

__all__ = ["SPOOL_SUFFIX", "Spool"]

logger = logging.getLogger("ingest.sdk")

SPOOL_SUFFIX = ".ndjson"
# A temp file older than this is a dead writer's, never acknowledged to anyone.
_STALE_TMP_NS = 60 * 10**9


class Spool:
    """One NDJSON file per batch; atomic, durable writes; names sort oldest first.

    The index (names in order, sizes, total) lives in memory so that the hot path and a
    drain of many files never list the directory; `scan` re-reads it on start and flush.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._order: list[str] = []  # sorted names: oldest first
        self._total = 0
        self._reserved = 0  # bytes being written right now
        self._counter = itertools.count()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            # Audit events carry IPs and user agents: the spool is for this user only.
            logger.warning("spool dir %s had mode %o; tightening it to 700", path, mode)
            path.chmod(0o700)
        self.scan(remove_stale=True)

    def scan(self, *, remove_stale: bool = False) -> None:
        """Re-read the directory (another client or an earlier run may have written it)."""
        found: dict[str, int] = {}
        now = time_ns()
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:  # removed under us: start again, empty
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            entries = []
        for entry in entries:
            if entry.name.startswith("."):
                # A temp file of a writer that died mid-write; never renamed, so never
                # acknowledged to anyone: safe to remove once clearly abandoned.
                if remove_stale and entry.name.endswith(".tmp"):
                    try:
                        if now - entry.stat().st_mtime_ns > _STALE_TMP_NS:
                            Path(entry.path).unlink()
                    except FileNotFoundError:
                        pass
                continue
            if entry.name.endswith(SPOOL_SUFFIX) and entry.is_file(follow_symlinks=False):
                try:
                    found[entry.name] = entry.stat().st_size
                except FileNotFoundError:
                    continue
        with self._lock:
            # Keep files written while the directory was being listed.
            for name, size in self._sizes.items():
                if name not in found and (self.path / name).exists():
                    found[name] = size
            self._sizes = found
            self._order = sorted(found)
            self._total = sum(found.values())

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._reserved = 0

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._order)

    @property
    def size(self) -> int:
        with self._lock:
            return self._total

    def oldest(self) -> str | None:
        with self._lock:
            return self._order[0] if self._order else None

    def write(self, lines: Sequence[bytes], name: str | None = None) -> bool:
        """Write a batch durably (or replace file `name`); False when it does not fit or fails."""
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            old = self._sizes.get(name, 0) if name else 0
            if self._total + self._reserved - old + len(data) > self.max_bytes:
                return False
            self._reserved += len(data)
        if name is None:
            name = f"{time_ns():020d}-{os.getpid()}-{next(self._counter):08d}{SPOOL_SUFFIX}"
        tmp = self.path / f".{name}.{threading.get_ident()}.tmp"
        try:
            write_durably(self.path / name, data, tmp=tmp, exclusive=True, sync_directory=True)
        except OSError as exc:
            logger.warning("could not write to the spool %s: %s", self.path, exc)
            with self._lock:
                self._reserved -= len(data)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                logger.warning("could not remove %s", tmp)
            return False
        with self._lock:
            self._reserved -= len(data)
            if name in self._sizes:
                self._total -= self._sizes[name]
            else:
                bisect.insort(self._order, name)  # almost always at the end: O(log n)
            self._sizes[name] = len(data)
            self._total += len(data)
        return True

    def read(self, name: str) -> list[bytes] | None:
        """The events of one file; None when it vanished or cannot be read (set aside)."""
        try:
            data = (self.path / name).read_bytes()
        except FileNotFoundError:
            self._forget(name)  # another client sharing the directory delivered it
            return None
        except OSError as exc:
            logger.error("cannot read spool file %s (%s); setting it aside", name, exc)
            try:
                (self.path / name).replace(self.path / (name + ".unreadable"))
            except OSError as again:
                logger.error("cannot set aside spool file %s: %s", name, again)
            self._forget(name)
            return None
        return [line for line in data.split(b"\n") if line.strip()]

    def delete(self, name: str) -> None:
        """Remove a delivered file. If that fails it is resent later, which is harmless."""
        try:
            (self.path / name).unlink(missing_ok=True)
        except OSError as exc:
            logger.error("cannot delete delivered spool file %s: %s", name, exc)
        self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            size = self._sizes.pop(name, None)
            if size is None:
                return
            self._total -= size
            at = bisect.bisect_left(self._order, name)
            if at < len(self._order) and self._order[at] == name:
                del self._order[at]
