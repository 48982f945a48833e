"""Helpers for tests in every directory (tests/ is on sys.path: `pythonpath` in pyproject)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lake.contract._wire as wire
from lake.contract import validate

# -- the console script ------------------------------------------------------------------

AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
TIMEOUT = 120
# Environment variables that change what auditlake (or rich, for its output) does.
_DROP = ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES")


def clean_env(home: Path, lake: Path) -> dict[str, str]:
    """os.environ without any AUDITLAKE_* setting of the user's, plus our home and lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_") and k not in _DROP}
    env["AUDITLAKE_HOME"] = str(home)
    env["AUDITLAKE_LAKE"] = str(lake)
    return env


@dataclass(frozen=True)
class Result:
    """What one run of the command left behind."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document (fails the test if it is anything else)."""
        return json.loads(self.stdout)

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def assert_usage_error(self, *needles: str) -> None:
        """Exit 2, nothing on stdout, a one-line `auditlake: ...` reason naming `needles`."""
        assert self.returncode == 2, self
        assert self.stdout == "", self
        assert len(self.stderr_lines) == 1, self
        assert self.stderr.startswith("auditlake: "), self
        for needle in needles:
            assert needle in self.stderr, (needle, self)


def run_cli(
    args: Iterable[object],
    *,
    env: dict[str, str],
    cwd: Path,
    input: bytes | str | None = None,
) -> Result:
    """Run the installed console script; a traceback is never an acceptable answer."""
    assert AUDITLAKE, "the auditlake console script is not installed beside this Python"
    argv = tuple(str(a) for a in args)
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [AUDITLAKE, *argv],
        input=data,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    result = Result(argv, proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    assert "Traceback" not in result.stderr, result.stderr
    return result


def minimal_event(**overrides: Any) -> dict[str, Any]:
    """A wire event with only the required fields, with overrides (a value of ... removes
    the field)."""
    event: dict[str, Any] = {
        "tenant": "acme",
        "time": "2024-03-01T12:00:00Z",
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": "u1"},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def login_event(event_id: str, time: str, tenant: str = "acme", **more: Any) -> dict[str, Any]:
    """A wire event: `event_id`'s successful user.login of ann@example.com at `time` on
    `tenant`, with `more` fields set or replaced."""
    base: dict[str, Any] = {
        "tenant": tenant,
        "id": event_id,
        "time": time,
        "category": "authentication",
        "action": "user.login",
        "outcome": "success",
        "actor": {"id": "ann@example.com", "ip": "203.0.113.9", "user_agent": "curl/8"},
        "details": {"attempt": 1},
    }
    return base | more


def far_dated(tenant: str, time_us: int, actor: str) -> pa.Table:
    """One validated login failure of `actor` on `tenant`, moved to `time_us` (microseconds
    since the epoch) and its date partition: what a lake written before times were checked
    at the edge may hold (append takes it through its table entry)."""
    event = {"tenant": tenant, "time": "2026-11-02T10:00:00Z", "category": "authentication",
             "action": "login", "outcome": "failure", "actor": {"id": actor}}  # fmt: skip
    table = validate([event], namespace=actor.encode()).table
    i = table.schema.get_field_index("time")
    times = pa.array([time_us], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = table.set_column(i, table.schema.field(i), times)
    j = table.schema.get_field_index("event_date")
    days = pa.array([time_us // 86_400_000_000], pa.int32()).cast(pa.date32())
    return table.set_column(j, table.schema.field(j), days)


def login(
    tenant: str, actor: str, at: datetime, outcome: str, ip: str = "192.0.2.1"
) -> dict[str, Any]:
    """One login event on the wire: `actor` from `ip` on `tenant` at `at`."""
    return {
        "tenant": tenant,
        "time": at.isoformat(),
        "category": "authentication",
        "action": "login",
        "outcome": outcome,
        "actor": {"id": actor, "ip": ip},
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mounted(*args: str, target: Path) -> Iterator[Path]:
    """`mount ARGS TARGET` for the duration (lazily unmounted after), or skip the test where
    mounting is not allowed: a real full disk or read-only mount needs root (chmod does not
    stop root from writing), and CI runs as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small or read-only filesystem")
    try:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot mount here: {exc} {detail.decode(errors='replace').strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, timeout=30)


def small_disk(target: Path, size: str = "4m") -> AbstractContextManager[Path]:
    """A tmpfs of `size` at `target` (created), for tests of a full disk."""
    target.mkdir(parents=True, exist_ok=True)
    return mounted("-t", "tmpfs", "-o", f"size={size}", "tmpfs", target=target)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no space left; the file (unlink it to free)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


@contextmanager
def blocks_of(rows: int) -> Iterator[None]:
    """Validate in blocks of `rows` lines, so small inputs span several blocks."""
    saved = wire.FAST_ROWS
    wire.FAST_ROWS = rows
    try:
        yield
    finally:
        wire.FAST_ROWS = saved


# moto's S3 server in a process of its own (in the test's process, a delta-rs call that
# keeps the GIL, e.g. `alter.set_table_properties`, would starve it). Given a file, it
# records the If-None-Match header of every PutObject there as a JSON line.
_MOTO = """
import json, sys, threading, time
from moto.server import ThreadedMotoServer
if len(sys.argv) > 1:
    from moto.s3.responses import S3Response
    log, original, lock = open(sys.argv[1], "a"), S3Response.put_object, threading.Lock()
    def spy(self):
        with lock:
            log.write(json.dumps([self.path, self.headers.get("If-None-Match")]) + "\\n")
            log.flush()
        return original(self)
    S3Response.put_object = spy
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
while True:
    time.sleep(3600)
"""


@contextmanager
def moto_s3(put_log: Path | None = None) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the block; yields its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO, *([str(put_log)] if put_log else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
