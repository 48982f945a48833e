"""Which event times the edge accepts, and the duration syntax that configures it.

An event's `time` drives partitioning, detection's scan ranges and every reader's date
arithmetic. One event dated 0001-01-01 or 9999-12-31 (or one whose offset pushes UTC past
year 9999) once blinded detection for every tenant and stopped the collector, so the edge
refuses what no audit source can honestly send: anything before the Unix epoch, and
anything further ahead of this machine's clock than a bounded skew (24 hours by default:
clocks drift and time zones are mistyped, but not by more than a day).

The skew is configurable where events come in: a keyword of `lake.contract.validate` (and
its siblings), `auditlake ingest --max-future-skew`, `auditlake serve`, and the
environment variable AUDITLAKE_MAX_FUTURE_SKEW, all as durations such as `24h`, `90m`,
`1h30m` or `0s` (`parse_duration`). Whatever the skew, nothing past 9999-12-31 UTC is
accepted: it cannot be a date anywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lake.contract._errors import UsageError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a calendar date can name (timestamps past it overflow Python and DuckDB).
LAST_REPRESENTABLE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
DEFAULT_MAX_FUTURE_SKEW = timedelta(hours=24)
SKEW_ENV = "AUDITLAKE_MAX_FUTURE_SKEW"

_EPOCH = EARLIEST
_US = timedelta(microseconds=1)
_DURATION_RE = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_UNITS = (("h", 3600), ("m", 60), ("s", 1))  # written out; `d` is read too

EARLY_MESSAGE = "{value!r} is before 1970-01-01T00:00:00Z, the earliest time accepted"
LATE_MESSAGE = (
    "{value!r} is more than {skew} ahead of this machine's clock (the maximum future "
    "skew; set it with --max-future-skew or AUDITLAKE_MAX_FUTURE_SKEW)"
)
BEYOND_MESSAGE = "{value!r} is after 9999-12-31T23:59:59.999999Z in UTC, the last date there is"


def parse_duration(text: str) -> timedelta:
    """A duration such as `24h`, `90m`, `1h30m`, `2d` or `0s` (whole units, no spaces).

    Raises UsageError naming the text when it is not one.
    """
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise UsageError(
            f"{text!r} is not a duration; write whole days, hours, minutes or seconds "
            "such as 24h, 90m, 1h30m or 0s"
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise UsageError(f"{text!r} is too long a duration") from None


def format_duration(skew: timedelta) -> str:
    """`skew` as `parse_duration` reads it: 24h, 1h30m, 0s (sub-second parts dropped)."""
    left = int(skew.total_seconds())
    parts = []
    for unit, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def default_max_future_skew() -> timedelta:
    """AUDITLAKE_MAX_FUTURE_SKEW when set (UsageError if malformed), else 24 hours."""
    raw = os.environ.get(SKEW_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FUTURE_SKEW
    try:
        return parse_duration(raw)
    except UsageError as exc:
        raise UsageError(f"{SKEW_ENV}: {exc}") from None


@dataclass(frozen=True)
class TimeWindow:
    """The accepted event times, as UTC microseconds since the epoch (bounds included).

    Fixed once per input (so every chunk of a file, in whichever process, is judged
    against the same clock reading), and picklable for worker processes.
    """

    earliest_us: int
    latest_us: int
    skew: timedelta
    # Whether `latest_us` is the calendar's end rather than now + skew (message choice).
    calendar_bound: bool = False

    def late_message(self, value: str) -> str:
        if self.calendar_bound:
            return BEYOND_MESSAGE.format(value=value)
        return LATE_MESSAGE.format(value=value, skew=format_duration(self.skew))

    def problem(self, micros: int, value: str) -> str | None:
        """Why an instant (UTC microseconds) is refused, or None."""
        if micros < self.earliest_us:
            return EARLY_MESSAGE.format(value=value)
        if micros > self.latest_us:
            return self.late_message(value)
        return None


def time_window(
    max_future_skew: timedelta | None = None, now: datetime | None = None
) -> TimeWindow:
    """The window for events arriving now: 1970 up to `now` + the skew.

    The skew defaults to `default_max_future_skew()`; the window never reaches past
    9999-12-31 UTC whatever the skew.
    """
    skew = default_max_future_skew() if max_future_skew is None else max_future_skew
    if skew < timedelta(0):
        raise UsageError("the maximum future skew cannot be negative")
    moment = datetime.now(UTC) if now is None else now
    try:
        latest = moment + skew
        calendar_bound = latest > LAST_REPRESENTABLE
    except OverflowError:
        calendar_bound = True
    if calendar_bound:
        latest = LAST_REPRESENTABLE
    return TimeWindow(0, (latest - _EPOCH) // _US, skew, calendar_bound)
