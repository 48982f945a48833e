"""Connection limits for the collector: a cap on open connections and a header deadline.

Without them, a client that opens connections and never sends a request holds a file
descriptor each, forever: about 21k of them exhaust the process's descriptors, `accept`
then fails with EMFILE (asyncio logs a traceback each time) and even `/v1/health` can no
longer get in. So:

- a connection must send its request's headers within `header_timeout_s` of opening (or
  of its previous answer, on a kept-alive connection), else it is closed; the rest of a
  body that was answered without being read (a 401, a 413) gets no more time than that;
- at most `max_connections` are open. At the limit a new connection does not wait: the
  oldest connection that has not yet sent a request is closed to make room (a half-open
  connection is the flood's, a real client sends its headers at once), and only when
  every open connection is mid-request is the new one closed instead;
- the limit stays below the process's descriptor limit (raised to the hard limit when
  that is allowed), so `accept` does not run out;
- when `accept` still fails for lack of resources, one line is logged per interval,
  with the count, instead of a traceback per attempt.

This hooks into uvicorn's h11 protocol (the one it uses without httptools): a subclass
that tells `ConnectionGuard` when a connection opens, starts a request, finishes its
answer and closes.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # uvicorn imports click: the core loads it only inside `serve`
    from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "ConnectionGuard",
    "RateLimitedLog",
    "descriptor_budget",
    "guarded_protocol",
    "server_options",
]

MAX_CONNECTIONS = 1000
"""Open connections a server allows by default (kept below the descriptor limit)."""
HEADER_TIMEOUT_S = 10.0
"""How long a connection may take to send a request's headers, by default."""
BODY_TIMEOUT_S = 10.0
"""How long a request may take to send its body, by default (408 beyond)."""
FD_RESERVE = 128
"""Descriptors kept for the WAL, the lake's files, worker pipes and the listening socket."""
MIN_CONNECTIONS = 16

_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class RateLimitedLog:
    """Logs an event at most once per `interval_s`, with how many were held back."""

    def __init__(self, log: Callable[..., None], interval_s: float = 10.0) -> None:
        self._log = log
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, event: str, **fields: Any) -> None:
        now = time.monotonic()
        last = self._last.get(event)
        if last is not None and now - last < self._interval:
            self._held[event] = self._held.get(event, 0) + 1
            return
        self._last[event] = now
        held = self._held.pop(event, 0)
        self._log(event=event, **fields, **({"similar_since_last_line": held} if held else {}))


class ConnectionGuard:
    """The collector's open connections, and those still waiting for a request."""

    def __init__(
        self,
        max_connections: int,
        header_timeout_s: float,
        log: RateLimitedLog,
        count: Callable[[str], None],
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self._log = log
        self._count = count
        self._open: set[H11Protocol] = set()
        # Connections that have not sent a request's headers, oldest first, with the timer
        # that closes them at the deadline.
        self._waiting: OrderedDict[H11Protocol, asyncio.TimerHandle] = OrderedDict()

    def opened(self, conn: H11Protocol) -> None:
        self._open.add(conn)
        self.waiting(conn)
        if len(self._open) <= self.max_connections:
            return
        # Make room: the oldest connection without a request; when that is this new one,
        # every other connection is mid-request and this one goes.
        self._close(next(iter(self._waiting)))
        self._count("auditlake_connections_refused_total")
        self._log("connection_limit", max_connections=self.max_connections)

    def waiting(self, conn: H11Protocol) -> None:
        """`conn` is waiting for a request's headers: start its deadline."""
        self.started(conn)
        timer = conn.loop.call_later(self.header_timeout_s, self._expire, conn)
        self._waiting[conn] = timer

    def started(self, conn: H11Protocol) -> None:
        """`conn` sent a request's headers."""
        timer = self._waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def closed(self, conn: H11Protocol) -> None:
        self.started(conn)
        self._open.discard(conn)

    def _expire(self, conn: H11Protocol) -> None:
        if conn in self._waiting:
            self._close(conn)
            self._count("auditlake_connections_timed_out_total")
            self._log("header_timeout", header_timeout_s=self.header_timeout_s)

    def _close(self, conn: H11Protocol) -> None:
        self.closed(conn)
        if not conn.transport.is_closing():
            conn.transport.close()

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's handler: out-of-descriptor `accept` failures, one line a while."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            self._log("accept_failed", error=exc.strerror, open_connections=len(self._open))
            return
        loop.default_exception_handler(context)


def guarded_protocol(guard: ConnectionGuard) -> type[H11Protocol]:
    """uvicorn's h11 protocol, reporting each connection's life to `guard`."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            guard.opened(self)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # Only a request still being answered holds its slot: the rest of a body the
            # answer did not wait for (a 401, a 413, a GET with a Content-Length) leaves
            # h11 out of IDLE too, and trickled a byte at a time it would hold a slot with
            # no deadline at all, past the limit, and lock health out.
            if self.cycle is not None and not self.cycle.response_complete:
                guard.started(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                guard.waiting(self)

        def connection_lost(self, exc: Exception | None) -> None:
            guard.closed(self)
            super().connection_lost(exc)

    return GuardedH11Protocol


def server_options(guard: ConnectionGuard) -> dict[str, Any]:
    """The uvicorn settings of every server here (collector, witness): the h11 protocol
    reporting to `guard`, warnings only, no access log, 5 s keep-alive."""
    return {
        "http": guarded_protocol(guard),
        "log_level": "warning",
        "access_log": False,
        "timeout_keep_alive": 5,
    }


def descriptor_budget(max_connections: int) -> int:
    """How many connections may be open: `max_connections`, within the descriptor limit.

    Raises the soft limit on open files towards `max_connections` plus a reserve (up to
    the hard limit), then keeps the reserve free of connections.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, max_connections + FD_RESERVE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):  # not allowed here: live within the soft limit
            pass
    return max(MIN_CONNECTIONS, min(max_connections, soft - FD_RESERVE))
