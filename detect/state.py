"""What detection keeps in the lake between runs: each rule's watermark, and the run lock.

`_auditlake/detect/state.json` holds, per rule id, the fingerprint of the rule that ran,
the Delta version of the events table it processed up to, the newest `received_at` it
saw (for people: the lag) and when it ran:

    {"rules": {"auth.brute_force": {"fingerprint": "…", "version": 12,
               "received_at": "2026-11-02T10:05:00+00:00", "ran_at": "…"}}}

It is read and written through `DetectState` only. The lock is a file beside it that a
run holds with `flock` for its whole length (local lakes; see `run_lock`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson

from lake.contract import StorageError, UsageError
from lake.storage import Lake, paths

STATE_PATH: Final = paths.DETECT_STATE
LOCK_PATH: Final = paths.DETECT_LOCK


class RunBusy(UsageError):
    """Another detection run holds the lock."""


@dataclass(frozen=True)
class RuleState:
    """One rule's watermark: what the last run of this rule (as fingerprinted) covered."""

    fingerprint: str | None = None
    version: int | None = None  # the events table's Delta version it processed up to
    received_at: datetime | None = None  # the newest arrival it saw
    ran_at: datetime | None = None

    def start(self, fingerprint: str) -> int:
        """The version a rule with this fingerprint resumes after (-1: from the start)."""
        if self.fingerprint != fingerprint or self.version is None:
            return -1
        return self.version

    @classmethod
    def from_json(cls, doc: Any) -> RuleState:
        """Raises ValueError or TypeError when `doc` is not a rule's entry."""
        if not isinstance(doc, Mapping):
            raise TypeError("not an object")
        version = doc.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise TypeError("version is not an integer")
        fingerprint = doc.get("fingerprint")
        return cls(
            fingerprint=None if fingerprint is None else str(fingerprint),
            version=version,
            received_at=_time(doc.get("received_at")),
            ran_at=_time(doc.get("ran_at")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "version": self.version,
            "received_at": None if self.received_at is None else self.received_at.isoformat(),
            "ran_at": None if self.ran_at is None else self.ran_at.isoformat(),
        }


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass
class DetectState:
    """Every rule's watermark, by rule id."""

    rules: dict[str, RuleState] = field(default_factory=dict)

    @classmethod
    def load(cls, lake: Lake) -> DetectState:
        """The lake's detection state (empty before the first run).

        Raises:
            StorageError: the file is not JSON, or not the shape above.
        """
        try:
            doc = orjson.loads(lake.read_bytes(STATE_PATH))
        except FileNotFoundError:
            return cls()
        except orjson.JSONDecodeError:
            raise StorageError(f"{STATE_PATH} in the lake is not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), dict):
            raise StorageError(f"{STATE_PATH} in the lake is malformed")
        try:
            return cls({str(k): RuleState.from_json(v) for k, v in doc["rules"].items()})
        except (TypeError, ValueError):
            raise StorageError(f"{STATE_PATH} in the lake is malformed") from None

    def save(self, lake: Lake) -> None:
        doc = {"rules": {k: v.to_json() for k, v in self.rules.items()}}
        lake.write_bytes(STATE_PATH, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


@contextmanager
def run_lock(lake: Lake) -> Iterator[None]:
    """Hold the lake's detection lock, or raise RunBusy at once."""
    if not lake.is_local:
        yield  # object stores: no file locks; the alerts commit fences runs (write_alerts)
        return
    path = Path(lake.full_path(LOCK_PATH))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(
                "another `auditlake detect run` is running on this lake; this one did nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
