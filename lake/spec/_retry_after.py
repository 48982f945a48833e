"""The HTTP `Retry-After` header as a number of seconds (RFC 9110, section 10.2.3)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["parse_retry_after"]


def parse_retry_after(value: str | None, *, cap: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), in [0, cap].

    None when there is no value or it is neither form; a date in the past is 0. An
    infinite delay is `cap`, a negative infinite or NaN one no hint at all (None).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return cap if seconds > 0 else None
    return min(max(seconds, 0.0), cap)
