"""Verify on Ray: the range tasks of `lake.verify._ranges`, spread over a cluster's workers.

`verify_lake_ray` is `verify_lake` with another engine, nothing more: the same plan
(tasks per tenant and per aligned `seq` range, sized by `range_events`, so one large
tenant spreads over many workers), the same task code on the workers, and the same
driver code combining the subtree roots into every checkpoint's root and merging the
findings. The report is therefore the one the single-machine path gives on the same
lake; the test suite checks it on tampered lakes.

Ray is imported only here and only when used (it is the optional `scale` extra). Without
an address a local Ray instance is started for the run, sized to this machine's cores,
and stopped afterwards; with one (`host:port` as printed by `ray start --head`, or
`auto`) the run joins that cluster. Every worker
must be able to import auditlake and to read the lake at the same path or URI (a shared
filesystem or object storage). If Ray is already initialised in this process (a
notebook, a test session), that connection is used and left open.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lake.contract import LakeError, UsageError
from lake.log import VerifierKey
from lake.secrets import KeyWindow
from lake.storage import Lake
from lake.verify._engines import Progress
from lake.verify._ranges import RANGE_EVENTS, RangeResult, RangeTask, run_task
from lake.verify._report import Report
from lake.verify._verify import verify_lake

if TYPE_CHECKING:
    from lake.witness import CosignerKey

# How long an unreachable address may take to fail, instead of Ray's minute of retries.
CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = "pip install 'auditlake[scale]'"
_CODE_ROOT = str(Path(__file__).resolve().parents[1])


class EngineError(LakeError):
    """A distributed task failed for a reason other than the lake (a worker died, ...)."""


def import_ray() -> Any:
    """The `ray` module, or a one-line UsageError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs the 'ray' package ({INSTALL_HINT})") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail at once, with the reason, when nothing listens at a host:port address."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        if address in ("auto", "local"):
            return
        raise UsageError(f"--address {address!r}: expected HOST:PORT (as `ray start` prints)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot reach a Ray cluster at {address} ({reason})") from None


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to (or start) Ray for the duration of the block; yields the `ray` module.

    Args:
        address: A cluster to join; None starts a local instance with `num_cpus` CPUs
            (default: this machine's cores) that ends with the block.
        num_cpus: CPUs of the local instance (ignored when joining a cluster).
    """
    ray = import_ray()
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address is None:
        # "local" rather than None: None would join whatever cluster RAY_ADDRESS or the
        # last `ray start` on this machine names, which is not what the caller asked for.
        options.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1)
    else:
        options["address"] = address
    # Ray puts the driver's working directory on every worker's sys.path, ahead of the
    # installed packages: a directory named `lake` there (a lake called "lake") would
    # shadow this package on the workers. Start Ray from the directory holding it instead.
    here = Path.cwd()
    os.chdir(_CODE_ROOT)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UsageError(f"cannot connect to {where}: {_first_line(exc)}") from None
    finally:
        os.chdir(here)
    try:
        yield ray
    finally:
        ray.shutdown()


class RayRunner:
    """A `TaskRunner` (`lake.verify._engines`) whose tasks are Ray tasks (one CPU each)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self.remote = ray.remote(num_cpus=1)(run_task)

    def submit(self, task: RangeTask) -> Any:
        return self.remote.remote(task)

    def wait(self, handles: list[Any]) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1)
        more, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        return list({*done, *more})

    def result(self, handle: Any) -> RangeResult:
        try:
            out = self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, LakeError):
                raise exc.cause from None
            raise EngineError(f"a verify task failed on Ray: {_first_line(exc.cause)}") from None
        except self.ray.exceptions.RayError as exc:
            raise EngineError(f"a verify task failed on Ray: {_first_line(exc)}") from None
        assert isinstance(out, RangeResult)
        return out


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def verify_lake_ray(
    lake: Lake,
    trusted: Sequence[VerifierKey],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    tenants: Sequence[str] | None = None,
    since: Sequence[str] = (),
    progress: Progress | None = None,
    range_events: int = RANGE_EVENTS,
    witness_keys: Sequence[CosignerKey] = (),
    min_witnesses: int = 0,
    windows: Mapping[str, KeyWindow] | None = None,
) -> Report:
    """`verify_lake` with its range tasks on Ray; the same report on the same lake.

    Args:
        lake: The lake; every Ray worker must reach its root.
        trusted: Trusted verifier keys, as for `verify_lake`.
        address: Ray cluster to join; None starts a local instance for this call.
        num_cpus: CPUs of that local instance (default: this machine's cores).
        tenants, since, progress, witness_keys, min_witnesses, windows: as `verify_lake`.
        range_events: Events per task (rounded down to a power of two, at least 256).

    Raises:
        UsageError: Ray is not installed, or the cluster cannot be reached.
    """
    with ray_session(address, num_cpus=num_cpus) as ray:
        return verify_lake(
            lake,
            trusted,
            tenants=tenants,
            since=since,
            progress=progress,
            witness_keys=witness_keys,
            min_witnesses=min_witnesses,
            windows=windows,
            range_events=range_events,
            runner=RayRunner(ray),
        )
