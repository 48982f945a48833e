"""Direct mode: the SDK's helpers appending straight into a lake, with no collector.

For batch jobs that run next to the lake. Imported only when `DirectWriter` or
`write_direct` is first used, since it loads the lake (pyarrow, deltalake, the keys).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ingest.sdk._events import EventHelpers, InvalidEventError, prepare
from lake.contract import validate
from lake.log import NoteSigner
from lake.secrets import KeyStore, config_home
from lake.storage import Lake
from lake.write import AppendResult, append

__all__ = ["DirectWriter", "write_direct"]

# Namespace for validating a buffer: ids are always set by `log`, so the validator never
# assigns one from it.
_BUFFER_NAMESPACE = b"auditlake-sdk"


def write_direct(
    lake_path: str | os.PathLike[str],
    events: Iterable[Mapping[str, Any]],
    signer: NoteSigner | None = None,
) -> AppendResult:
    """Validate wire events and append them to a lake as one signed batch, no collector.

    Events without an id get one derived from the input (as `auditlake ingest` does), so
    running the same job twice stores each event once. All or nothing: any invalid event
    raises `InvalidEventError` naming every event, field and reason, and nothing is written.
    `signer` defaults to the active key of the config home (`AUDITLAKE_HOME`).
    """
    records = [dict(e) for e in events]
    try:
        text = orjson.dumps(
            records, default=repr, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
    except TypeError:  # e.g. integers beyond 64 bits, which the validator names below
        text = repr(records).encode()
    result = validate(records, namespace=hashlib.sha256(text).digest())
    if result.rejected:
        raise InvalidEventError(result.issues)
    lake = Lake.open(lake_path)
    return append(lake, result.table, signer or KeyStore(config_home()).active())


class DirectWriter(EventHelpers):
    """The typed helpers of the client, appending straight to a lake (batch jobs).

    Events are validated at `log` time (invalid ones raise `InvalidEventError`), buffered,
    and appended as one signed batch per `batch_size` events, on `flush()` and on
    `close()`. Unlike `AuditClient`, lake errors raise from `flush` (the buffer is kept,
    so a retried `flush` resends the same ids and the lake stores them once). Ids are
    fresh UUIDv7s: for a job that may be re-run, pass `event_id` (or use `write_direct`,
    whose ids derive from the input) so that a re-run does not store events twice.

    Args:
        lake_path: the lake to append to.
        signer: the signing key; defaults to the active key of the config home.
        batch_size: events per appended batch.
        source: `source` of every event that names none.
    """

    def __init__(
        self,
        lake_path: str | os.PathLike[str],
        signer: NoteSigner | None = None,
        *,
        batch_size: int = 50_000,
        source: str | None = None,
    ) -> None:
        self.lake = Lake.open(lake_path)
        self.signer = signer or KeyStore(config_home()).active()
        self.batch_size = batch_size
        self.results: list[AppendResult] = []
        self._source = source
        self._lines: list[bytes] = []

    def log(self, event: Mapping[str, Any]) -> str:
        """Validate and buffer one wire event; returns its id."""
        event_id, line = prepare(event, self._source)
        self._lines.append(line)
        if len(self._lines) >= self.batch_size:
            self.flush()
        return event_id

    def flush(self) -> AppendResult | None:
        """Append the buffered events as one batch; None when there were none."""
        if not self._lines:
            return None
        records = [orjson.loads(line) for line in self._lines]
        result = validate(records, namespace=_BUFFER_NAMESPACE)
        if result.rejected:  # only a duplicate id within the buffer gets here
            raise InvalidEventError(result.issues)
        appended = append(self.lake, result.table, self.signer)
        self._lines.clear()
        self.results.append(appended)
        return appended

    def close(self) -> None:
        """Append what is buffered (see `flush`)."""
        self.flush()
