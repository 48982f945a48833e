"""The collector's and consumer's log: one JSON object a line on stderr."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from lake.spec import utc_text

__all__ = ["log"]


def log(**fields: Any) -> None:
    """One JSON line on stderr. Callers never pass event contents or tokens."""
    fields["ts"] = utc_text(datetime.now(UTC), micros=False)
    sys.stderr.write(orjson.dumps(fields).decode() + "\n")
