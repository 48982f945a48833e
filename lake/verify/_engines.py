"""Where range tasks run: in this process, a local process pool, or elsewhere (Ray).

`drive` runs every tenant's rounds of range tasks (`lake.verify._tenant`) on a
`TaskRunner` and feeds each round's results back; the report does not depend on the
runner. A local pool pays an interpreter start and imports per worker, so it is used
only from PARALLEL_MIN_EVENTS events on; the Ray runner is in `lake.verify._ray`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from enum import StrEnum
from multiprocessing.context import BaseContext
from typing import Any, Protocol

from lake.storage import process_context
from lake.verify._ranges import RangeResult, RangeTask, run_task


class Engine(StrEnum):
    """Where a long check runs (`--engine`): the same results on either."""

    LOCAL = "local"  # this machine: a process per core
    RAY = "ray"  # tasks on a Ray cluster (the `scale` extra); every worker must reach the lake


# Below this many events a process pool costs more (interpreter start, imports) than it saves.
PARALLEL_MIN_EVENTS = 300_000

Progress = Callable[[int, int], None]
"""Called with (events checked, events in all) as the check goes."""
Steps = Generator[list[RangeTask], list[RangeResult], None]
"""One tenant's check: yields rounds of tasks, is sent each round's results."""


class TaskRunner(Protocol):
    """Where range tasks run: in this process, a process pool, a Ray cluster..."""

    def submit(self, task: RangeTask) -> Any:
        """Start a task; returns a handle."""

    def wait(self, handles: list[Any]) -> list[Any]:
        """Block until at least one of the handles is done; return the done ones."""

    def result(self, handle: Any) -> RangeResult:
        """The result of a done task (its exception, if it raised)."""


class _Done:
    __slots__ = ("result",)

    def __init__(self, result: RangeResult) -> None:
        self.result = result


class InlineRunner:
    """Runs each task at once, in this process."""

    def submit(self, task: RangeTask) -> Any:
        return _Done(run_task(task))

    def wait(self, handles: list[Any]) -> list[Any]:
        return handles

    def result(self, handle: Any) -> RangeResult:
        assert isinstance(handle, _Done)
        return handle.result


class PoolRunner:
    """Runs tasks in a `concurrent.futures` executor (a process pool)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(self, task: RangeTask) -> Any:
        return self.pool.submit(run_task, task)

    def wait(self, handles: list[Any]) -> list[Any]:
        return list(wait_futures(handles, return_when=FIRST_COMPLETED).done)

    def result(self, handle: Any) -> RangeResult:
        assert isinstance(handle, Future)
        out = handle.result()
        assert isinstance(out, RangeResult)
        return out


def drive(
    steps: Mapping[str, Steps],
    runner: TaskRunner,
    events_of: Mapping[str, int],
    total: int,
    progress: Progress | None,
) -> None:
    """Run every tenant's steps to the end, each round of tasks as soon as it is asked for.

    Tenants move independently: one tenant's second round (if it needs one) starts while
    the others' first rounds still run.
    """
    waiting: dict[Any, tuple[str, int]] = {}
    batches: dict[str, list[RangeResult | None]] = {}
    counted = dict.fromkeys(steps, 0)
    done = 0

    def advance(tenant: str, results: list[RangeResult] | None) -> None:
        nonlocal done
        try:
            tasks = steps[tenant].send(results)  # type: ignore[arg-type]
        except StopIteration:
            done += events_of.get(tenant, 0) - counted[tenant]
            counted[tenant] = events_of.get(tenant, 0)
            if progress:
                progress(min(done, total), total)
            return
        batches[tenant] = [None] * len(tasks)
        for i, task in enumerate(tasks):
            waiting[runner.submit(task)] = (tenant, i)

    for tenant in steps:
        advance(tenant, None)
        while tenant in batches and not batches[tenant]:  # a round of no tasks
            del batches[tenant]
            advance(tenant, [])
    while waiting:
        for handle in runner.wait(list(waiting)):
            tenant, i = waiting.pop(handle)
            result = runner.result(handle)
            batch = batches[tenant]
            batch[i] = result
            step = min(result.rows, events_of.get(tenant, 0) - counted[tenant])
            if step > 0 and progress:
                counted[tenant] += step
                done += step
                progress(min(done, total), total)
            if all(r is not None for r in batch):
                del batches[tenant]
                advance(tenant, [r for r in batch if r is not None])
                while tenant in batches and not batches[tenant]:
                    del batches[tenant]
                    advance(tenant, [])


def pool_context(runner: TaskRunner | None, workers: int, total: int) -> BaseContext | None:
    """The process context of a local pool when one pays off for `total` events, else None.

    Call it early: it starts the workers' fork server, which imports while the caller
    reads the log and checks the signatures.
    """
    if runner is None and workers > 1 and total >= PARALLEL_MIN_EVENTS:
        return process_context("lake.verify")
    return None


def run_steps(
    steps: Mapping[str, Steps],
    runner: TaskRunner | None,
    context: BaseContext | None,
    workers: int,
    events_of: Mapping[str, int],
    progress: Progress | None,
) -> None:
    """Drive the steps on `runner`, else on a pool of `workers` processes in `context`,
    else in this process."""
    total = sum(events_of.values())
    if runner is not None:
        drive(steps, runner, events_of, total, progress)
    elif context is not None:
        # One process per core: leaf and tree hashing hold the GIL.
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            drive(steps, PoolRunner(pool), events_of, total, progress)
    else:
        drive(steps, InlineRunner(), events_of, total, progress)
