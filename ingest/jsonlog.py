"""The collector's and consumer's log: one JSON object a line on stderr."""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

__all__ = ["log"]


def log(**fields: Any) -> None:
    """One JSON line on stderr. Callers never pass event contents or tokens."""
    fields["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(orjson.dumps(fields).decode() + "\n")
