"""How events are gathered into lake commits, for the collector and the consumer alike.

The batch sizes both default to, and the backoff between failed commits (or failed
broker calls): a wait that doubles after each failure, up to a ceiling, and starts again
after a success.
"""

from __future__ import annotations

__all__ = ["BATCH_AGE_S", "BATCH_EVENTS", "Backoff"]

BATCH_EVENTS = 50_000
"""Events that make a batch due at once (sized for one 2-core machine)."""
BATCH_AGE_S = 1.0
"""Seconds after which a batch is due whatever its size."""


class Backoff:
    """Waits that double after each failure, from `first_s` up to `most_s`."""

    def __init__(self, first_s: float = 0.1, most_s: float = 5.0) -> None:
        self.first_s = first_s
        self.most_s = most_s
        self._next = first_s

    def wait_s(self) -> float:
        """The wait after this failure; the one after the next failure is twice as long."""
        wait, self._next = self._next, min(self._next * 2, self.most_s)
        return wait

    def reset(self) -> None:
        """A success: the next failure waits `first_s` again."""
        self._next = self.first_s
