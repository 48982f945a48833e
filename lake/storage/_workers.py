"""Process pools for the CPU-bound steps that hold the GIL (leaf and tree hashing, validation).

Workers come from a fork server rather than "spawn": a spawned worker imports pyarrow and our
modules afresh and re-runs the calling program's main module (the CLI's costs ≈0.5 s of CPU
per worker, a fifth of verifying 1M events on 2 cores). The fork server imports them once,
while the caller is still reading the Delta log, and forks ready workers from a process that
never started a thread. Where the platform has no fork server, "spawn" as before.

Like "spawn", this runs the main module once more (as `__mp_main__`), so a calling script
needs the usual `if __name__ == "__main__":` guard. Workers see the environment and module
state of the moment the server started (the process's first pool): what they need must
travel in their task's arguments, as it already must for "spawn".
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os


def process_context(*preload: str) -> multiprocessing.context.BaseContext:
    """A start method for a ProcessPoolExecutor whose workers have `preload` imported.

    Starts the fork server now (it imports in the background), so call it as soon as the
    caller knows it will want a pool. The first caller's modules stay preloaded for the
    process's life; later callers' modules are imported by each worker (still correct).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", *preload])
    # Python 3.11's fork server ignores the sys.path it is handed and, started with -c,
    # puts the working directory first: a `lake/` folder there (a lake, say) would shadow
    # our `lake` package in every worker. PYTHONSAFEPATH (-P) keeps it off sys.path.
    saved = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = saved
    return ctx
