"""Retrying a commit that lost a race: the one backoff every Delta writer of a lake uses.

Every writer (append, seal, key rotation, retention, optimize) commits against the
snapshot it read, with delta-rs's own retries off, so that a concurrent writer's commit
makes ours fail (`CommitFailedError`) instead of being merged blindly. The answer is always
the same: read a fresh snapshot and do the work again, after an exponential pause with
jitter so that writers that collided do not collide again in step.

tenacity (the engine under stamina) rather than stamina itself: stamina logs a WARNING per
retry through the standard library's logging, which a CLI that configures no logging
prints to stderr, and turning that off is a process-wide setting; it also stops retrying
after 45 s unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import tenacity
from deltalake.exceptions import CommitFailedError

from lake.contract import ConcurrentAppendError

__all__ = ["COMMIT_ATTEMPTS", "retry_on_conflict"]

COMMIT_ATTEMPTS: Final = 40
"""Attempts before a writer gives up on a tenant other writers keep advancing."""
FIRST_PAUSE_S: Final = 0.02  # doubling from here, plus up to as much again of jitter...
MAX_PAUSE_S: Final = 1.0  # ...and never longer than this

T = TypeVar("T")


def retry_on_conflict(
    attempt: Callable[[], T], give_up: str, *, attempts: int = COMMIT_ATTEMPTS
) -> T:
    """`attempt()`, called again after a pause each time it raises `CommitFailedError`.

    `attempt` must read its snapshot afresh each time (what it read before is stale).
    Any other exception passes through at once.

    Raises:
        ConcurrentAppendError: `give_up`, when `attempts` calls all lost their race.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(
            multiplier=FIRST_PAUSE_S, max=MAX_PAUSE_S, jitter=FIRST_PAUSE_S
        ),
        retry=tenacity.retry_if_exception_type(CommitFailedError),
        reraise=True,
    )
    try:
        return retrying(attempt)
    except CommitFailedError:
        raise ConcurrentAppendError(give_up) from None
