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

from lake.spec._errors import UsageError
from lake.spec._rules import (
    MICRO_CUT_PATTERN,
    SUBMICRO_MESSAGE,
    SUBMICRO_PATTERN,
    TIME_PATTERN,
    TIME_SHAPE_MESSAGE,
    TIME_VALUE_MESSAGE,
    shorten,
)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a calendar date can name (timestamps past it overflow Python and DuckDB).
LAST_REPRESENTABLE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
DEFAULT_MAX_FUTURE_SKEW = timedelta(hours=24)
SKEW_ENV = "AUDITLAKE_MAX_FUTURE_SKEW"
# How auditlake writes a moment as text: RFC 3339 in UTC with a `Z`, with or without
# microseconds (checkpoint time lines, proofs, exports and config files all use these).
UTC_MICROS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
UTC_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

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


def utc_text(moment: datetime, *, micros: bool = True) -> str:
    """`moment` (timezone-aware) as RFC 3339 UTC text: `2026-12-08T05:07:27.123456Z`,
    or to the second with `micros=False`."""
    return moment.astimezone(UTC).strftime(UTC_MICROS_FORMAT if micros else UTC_SECONDS_FORMAT)


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


_TIME_RE = re.compile(TIME_PATTERN)
_SUBMICRO_RE = re.compile(SUBMICRO_PATTERN)
_MICRO_CUT_RE = re.compile(MICRO_CUT_PATTERN)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def time_problem(value: str, window: TimeWindow) -> str | None:
    """Why one wire `time` is refused (shape, sub-microsecond digits, no such instant,
    outside `window`), or None: the scalar form of the columnar time checks."""
    if not _TIME_RE.fullmatch(value):
        return TIME_SHAPE_MESSAGE.format(value=shorten(value))
    if _SUBMICRO_RE.search(value):
        return SUBMICRO_MESSAGE
    micros = rfc3339_micros(_MICRO_CUT_RE.sub(r"\1", value))
    if micros is None:
        return TIME_VALUE_MESSAGE.format(value=shorten(value))
    return window.problem(micros, shorten(value))


def rfc3339_micros(text: str) -> int | None:
    """UTC microseconds since the epoch of a TIME_PATTERN value with at most six fraction
    digits, or None when it names no instant; what Arrow's cast to timestamp[us, UTC]
    accepts (years 0000-9999, proleptic Gregorian, hours < 24, no leap second, offsets
    below 24:00), which a property test holds it to."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    rest = text[19:]
    fraction = 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        fraction = int(digits.ljust(6, "0"))
        rest = rest[end:]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (leap and month == 2):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if rest not in ("Z", "z"):
        off_hours, off_minutes = int(rest[1:3]), int(rest[4:6])
        if off_hours > 23 or off_minutes > 59:
            return None
        offset = (off_hours * 60 + off_minutes) * (1 if rest[0] == "+" else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset * 60) * 1_000_000 + fraction


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
