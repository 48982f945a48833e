"""The demo's writer: events as JSON Lines, in memory or streamed to a file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson


def to_jsonl_bytes(events: Iterable[dict[str, Any]]) -> bytes:
    """Serialise events as JSON Lines (orjson, key order kept, one object per line)."""
    dumps = orjson.dumps
    return b"".join([dumps(event) + b"\n" for event in events])


def write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    """Write events to `path` as JSON Lines, streaming in batches; return how many."""
    dumps = orjson.dumps
    count = 0
    batch: list[bytes] = []
    with Path(path).open("wb") as fh:
        for event in events:
            batch.append(dumps(event))
            count += 1
            if len(batch) >= 8192:
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")
    return count
