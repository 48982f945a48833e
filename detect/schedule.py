"""The crontab schedule for `auditlake detect schedule --every D`, or a refusal.

Cron has no "every N minutes" from a start time: a step `*/N` counts within its field and
starts again at the next hour (minutes) or day (hours). `*/120` in the minute field
therefore runs at minute 0 of every hour, `*/7` runs at :00, :07, ... :56 and again at
:00 (a 4-minute gap), and there are no seconds at all. So an interval is printed only
when one line runs exactly that often, and refused otherwise with what cron can do:

    minutes dividing 60     */m * * * *      (1m: * * * * *)
    hours dividing 24       0 */h * * *      (1h: 0 * * * *)
    one day                 0 0 * * *
    one week                0 0 * * 0

A systemd timer (`OnUnitActiveSec`) has no such limits; `detect schedule` prints one beside.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from detect.model import format_duration
from lake.contract import UsageError

_MINUTE: Final = 60
_HOUR: Final = 3600
_DAY: Final = 86400
_WEEK: Final = 7 * _DAY
EXPRESSIBLE: Final = (
    "a number of minutes dividing 60 (1m 2m 3m 4m 5m 6m 10m 12m 15m 20m 30m), "
    "of hours dividing 24 (1h 2h 3h 4h 6h 8h 12h), 1d or 7d"
)


class ScheduleError(UsageError):
    """An interval that no single crontab line runs at exactly."""


def cron_spec(every: timedelta) -> str:
    """The five crontab time fields that run every `every`, exactly.

    Raises:
        ScheduleError: cron cannot express the interval; the message says what it can.
    """
    seconds = int(every.total_seconds())
    if seconds == _WEEK:
        return "0 0 * * 0"
    if seconds == _DAY:
        return "0 0 * * *"
    if seconds > 0 and seconds % _HOUR == 0 and _DAY % seconds == 0:
        hours = seconds // _HOUR
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if seconds > 0 and seconds % _MINUTE == 0 and _HOUR % seconds == 0:
        minutes = seconds // _MINUTE
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    raise ScheduleError(
        f"--every {format_duration(every)}: no crontab line runs exactly that often; "
        f"choose {EXPRESSIBLE}"
    )
