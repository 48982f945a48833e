"""The timeline of a filter: events and failures per time bucket, for the sparkline.

Why here and not in `lake/`: it is one read-only query shaped for one widget. The SQL text
is constant apart from the filter's own WHERE fragment (`SearchFilter.to_sql`, built from
fixed column names); every value, the bucket width included, travels as a parameter.
The bucket width is chosen so the whole span fits the widget's width, from a fixed list of
human steps (1 min … 30 days), and empty buckets are filled in so a quiet hour shows as
a gap instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from tui.display import utc

STEPS: Final = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
)
SPAN_SQL: Final = (
    "SELECT min(time), max(time), count(*), count(*) FILTER (WHERE outcome = 'failure') "
    "FROM events WHERE {where}"
)
BUCKET_SQL: Final = (
    "SELECT time_bucket(?::INTERVAL, time) AS t, count(*) AS n, "
    "count(*) FILTER (WHERE outcome = 'failure') AS failures "
    "FROM events WHERE {where} GROUP BY 1 ORDER BY 1"
)


@dataclass(frozen=True)
class Timeline:
    """Counts per bucket from `start`, one bucket per `step`; empty when nothing matched."""

    step: timedelta
    start: datetime | None
    counts: tuple[int, ...]
    failures: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def failed(self) -> int:
        return sum(self.failures)

    @property
    def end(self) -> datetime | None:
        """The end (exclusive) of the last bucket."""
        return None if self.start is None else self.start + self.step * len(self.counts)


def step_label(step: timedelta) -> str:
    """'5m', '3h', '1d', '7d'."""
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def choose_step(first: datetime, last: datetime, max_buckets: int) -> timedelta:
    """The finest step of `STEPS` whose buckets from `first` to `last` number at most
    `max_buckets` (the coarsest step when none does)."""
    span = utc(last) - utc(first)
    for step in STEPS:
        # +2: the first and last bucket may each be cut by the bucket origin.
        if span // step + 2 <= max_buckets:
            return step
    return STEPS[-1]


def fill(rows: Sequence[tuple[datetime, int, int]], step: timedelta) -> Timeline:
    """A timeline from (bucket start, count, failures) rows sorted by time, with the empty
    buckets between them added."""
    if not rows:
        return Timeline(step, None, (), ())
    start = utc(rows[0][0])
    size = (utc(rows[-1][0]) - start) // step + 1
    counts = [0] * size
    failures = [0] * size
    for moment, n, failed in rows:
        i = (utc(moment) - start) // step
        counts[i] += int(n)
        failures[i] += int(failed)
    return Timeline(step, start, tuple(counts), tuple(failures))
