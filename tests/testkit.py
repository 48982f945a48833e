"""Helpers for tests in every directory (tests/ is on sys.path: `pythonpath` in pyproject)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lake.wire as wire


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
