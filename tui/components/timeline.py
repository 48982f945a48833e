"""The timeline strip: events per time bucket of the current filter, failures in red.

A column per bucket, three text rows high (eighth-block resolution), failures stacked at
the bottom of each column so a burst of failed logins stands out from ordinary traffic.
Rendered from a `tui.timeline.Timeline` the app computes in a worker; the strip only draws.
"""

from __future__ import annotations

import math
from typing import Final

from rich.text import Text
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget

from tui.display import short_time
from tui.messages import TimelineResized
from tui.timeline import Timeline, step_label

ROWS: Final = 3
BLOCKS: Final = " ▁▂▃▄▅▆▇█"
EVENTS_STYLE: Final = "#4a90d9"
FAILURES_STYLE: Final = "#e05252"


def _cell(total: int, failed: int) -> tuple[str, str]:
    """The character and style of one cell holding `total` eighths, `failed` of them red."""
    if total <= 0:
        return " ", ""
    if failed >= 8:
        return BLOCKS[8], FAILURES_STYLE
    if failed <= 0:
        return BLOCKS[total], EVENTS_STYLE
    if total >= 8:  # the failures end inside this cell, events go on above it
        return BLOCKS[failed], f"{FAILURES_STYLE} on {EVENTS_STYLE}"
    return BLOCKS[total], FAILURES_STYLE if 2 * failed >= total else EVENTS_STYLE


def bars(timeline: Timeline, width: int) -> list[Text]:
    """The `ROWS` lines of the bar chart, top first, `width` cells wide."""
    n = len(timeline.counts)
    lines = [Text() for _ in range(ROWS)]
    if n == 0 or width <= 0:
        return lines
    column = max(1, width // n)
    peak = max(timeline.counts) or 1
    levels = ROWS * 8
    for count, failed in zip(timeline.counts, timeline.failures, strict=True):
        height = math.ceil(count / peak * levels)
        red = min(height, math.ceil(failed / peak * levels))
        for row in range(ROWS):
            base = (ROWS - 1 - row) * 8
            char, style = _cell(min(8, height - base), min(8, red - base))
            lines[row].append(char * column, style=style)
    return lines


class TimelineStrip(Widget):
    """The strip under the results; `timeline` None shows `status` instead.

    Its buckets are counted for a width (`counted_for`, one bucket a cell at most); when
    the strip is resized to another width it asks for them again (`TimelineResized`), so
    a narrower terminal is not cut off and a wider one gets the finer resolution.
    """

    timeline: reactive[Timeline | None] = reactive(None)
    status: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.counted_for = 0

    def on_resize(self, event: Resize) -> None:
        width = self.content_size.width
        if self.counted_for and width > 10 and width != self.counted_for:
            self.post_message(TimelineResized(width))

    def render(self) -> Text:
        width = self.content_size.width
        data = self.timeline
        if data is None or data.start is None or data.end is None:
            message = self.status or "no events to chart"
            return Text(f"timeline: {message}", style="dim")
        head = Text.assemble(
            ("timeline ", "bold"),
            f"{data.total:,} events, ",
            (f"{data.failed:,} failures", f"bold {FAILURES_STYLE}" if data.failed else ""),
            f" · {step_label(data.step)} per column · peak {max(data.counts):,} per column",
        )
        left, right = short_time(data.start), short_time(data.end)
        gap = max(1, width - len(left) - len(right))
        axis = Text(f"{left}{' ' * gap}{right}", style="dim")
        return Text("\n").join([head, *bars(data, width), axis])
