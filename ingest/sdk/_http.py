"""The SDK's HTTP side: one kept-alive connection to the collector and how to read its answers.

Standard library and orjson only.
"""

from __future__ import annotations

import http.client
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from lake.spec import parse_retry_after

__all__ = [
    "EVENTS_PATH",
    "Answer",
    "Connection",
    "TransportError",
    "check_token",
    "error_summary",
]

EVENTS_PATH = "/v1/events"
NDJSON = "application/x-ndjson"
USER_AGENT = "auditlake-sdk/0.1"
MAX_RETRY_AFTER_S = 600.0


class TransportError(Exception):
    """The request got no HTTP answer (connection refused, reset, timeout, ...)."""


class Answer(NamedTuple):
    """The collector's answer to one POST."""

    status: int
    retry_after: float | None  # seconds, from the Retry-After header
    body: bytes


def error_summary(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The collector's error message and per-event errors, from a JSON error body."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace"), []
    if not isinstance(doc, dict):
        return str(doc)[:200], []
    errors = doc.get("errors")
    listed = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return str(doc.get("error", "")), listed


def check_token(token: str) -> str:
    """A bearer token is printable ASCII without spaces; anything else is a setup mistake."""
    if not token or not all(0x21 <= ord(ch) <= 0x7E for ch in token):
        raise ValueError("the collector token must be non-empty printable ASCII without spaces")
    return token


class Connection:
    """POSTs batches of NDJSON lines to the collector's `/v1/events` on one kept-alive socket.

    Used by one thread at a time (the client's sender).
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the collector URL must be http(s)://host[:port], got {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        base = parts.path.rstrip("/")
        self._path = base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def post(self, lines: list[bytes], token: str) -> Answer:
        """One POST; raises `TransportError` when no HTTP answer came."""
        body = b"\n".join(lines) + b"\n"
        headers = {
            "Content-Type": NDJSON,
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
        }
        for attempt in range(2):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.close()
                stale = isinstance(exc, ConnectionError | http.client.BadStatusLine)
                if reused and stale and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: redial once
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                self.close()
            return Answer(
                response.status,
                parse_retry_after(response.getheader("Retry-After"), cap=MAX_RETRY_AFTER_S),
                data,
            )
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the socket, if open; the next `post` dials again."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def forget(self) -> None:
        """In a forked child: drop the parent's socket without touching it."""
        self._conn = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
