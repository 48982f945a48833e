"""Red-team checks of the collector's connection limits (#17 A9), against a real process.

The header deadline and the connection cap protected against connections that never send
their headers. A connection that sends its headers with a large Content-Length gets its
answer at once (401 without a token, or any GET), and the body it still owes kept h11 out
of its idle state: such a connection was counted as mid-request, had no deadline (a byte
now and then kept uvicorn's keep-alive timer from firing) and was never chosen to make
room, so a few of them past the cap locked every client out, health included.

And a compressed body (Content-Encoding: gzip) is refused as such (415), not read as JSON
that does not parse.
"""

from __future__ import annotations

import contextlib
import gzip
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from ingest_testkit import ndjson, wait_for
from test_collector_edges import (
    closed_by_server,
    events,
    half_open,
    health,
    launch,
    request,
)

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server

OWED_BODY = (
    b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
    b"a"  # the first byte of a body that never ends
)


def answered(sock: socket.socket) -> None:
    """Wait for the end of the answer's headers on `sock`."""
    seen = b""
    while b"\r\n\r\n" not in seen:
        chunk = sock.recv(4096)
        assert chunk, "closed before answering"
        seen += chunk


def test_answered_connections_that_still_owe_a_body_do_not_lock_health_out(
    server: Server,
) -> None:
    server.stop()
    launch(server, "--max-connections", "16", "--header-timeout", "600")
    flood: list[socket.socket] = []
    try:
        for _ in range(24):  # one after the other, each answered: none is mid-request
            (sock,) = half_open(server, 1)
            flood.append(sock)
            sock.sendall(OWED_BODY)
            answered(sock)
        for sock in flood:
            with contextlib.suppress(OSError):  # those closed to make room
                sock.sendall(b"a")  # still sending: uvicorn's keep-alive timer is reset
        status, body = health(server)
        assert (status, body["status"]) == (200, "ok")
    finally:
        for sock in flood:
            sock.close()
    assert server.stop() == 0


def test_a_body_trickled_after_its_answer_gets_the_header_deadline(server: Server) -> None:
    server.restart("--header-timeout", "0.5")
    (sock,) = half_open(server, 1)
    with sock:
        sock.sendall(OWED_BODY)
        answered(sock)
        sock.settimeout(0.1)
        closed = False
        for _ in range(300):  # 30 s of a byte every 0.1 s: past uvicorn's 5 s keep-alive
            try:
                sock.sendall(b"a")
                closed = closed_by_server(sock)
            except TimeoutError:
                continue
            except OSError:  # reset or broken pipe: closed by the server
                closed = True
            if closed:
                break
        assert closed


def test_a_compressed_body_is_415_not_bad_json(server: Server) -> None:
    body = gzip.compress(ndjson(events("northwind", 3, seed=31)))
    req = urllib.request.Request(
        server.url + "/v1/events",
        data=body,
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {server.token}",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 415
    assert "send the body uncompressed" in orjson.loads(refused.value.read())["error"]
    plain = ndjson(events("northwind", 3, seed=31))
    assert request(server, "/v1/events", plain, server.token)[0] == 202  # the same, unpacked


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found |= {int(c) for c in text}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_validation_workers_die_with_a_killed_collector(server: Server) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    wait_for(lambda: len(children(pid)) >= 2)  # workers start with the server
    workers = children(pid)

    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    # Each held ~150 MB and both ends of its own queue's pipes: orphaned for good before.
    wait_for(lambda: not any(alive(w) for w in workers))
