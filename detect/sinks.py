"""Where new alerts go besides the `alerts` Delta table: stdout, a JSONL file, a webhook, syslog.

The `alerts` table is the record; a sink is how an alert reaches someone who is not
polling the lake (an on-call webhook, a SIEM listening on syslog, a file a shipper
tails). Every sink sends the same stable JSON form of an alert (`alert_json`, which is
also what `auditlake alerts list --format json` prints), so a consumer parses one shape
whichever way an alert arrived.

Delivery is at least once: a retried webhook batch or a redialled syslog connection may
repeat alerts, and consumers deduplicate by `alert_id`, which the engine derives
deterministically. Sink errors (`SinkError`) never carry secrets: a webhook is named by
scheme, host and port only, since its userinfo, path (Slack-style tokens), query string
and header values may hold credentials.

`parse_sink` turns the CLI's `--sink` syntax into a sink; see `SINK_FORMS`.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import Message
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final, Protocol, TextIO, runtime_checkable

import orjson
import tenacity

from lake.contract import Alert, UsageError
from lake.spec import parse_retry_after, utc_text

SINK_FORMS: Final = (
    "stdout",
    "jsonl:PATH",
    "webhook:https://HOST/PATH (or webhook:http://...)",
    "syslog:udp://HOST:PORT (default port 514)",
    "syslog:tcp://HOST:PORT (default port 601)",
    "syslog:/PATH/TO/SOCKET (e.g. syslog:/dev/log)",
)

WEBHOOK_BATCH: Final = 100
MAX_RETRY_AFTER_S: Final = 30.0
_USER_AGENT: Final = "auditlake-detect"

SYSLOG_FACILITY_AUTH: Final = 4  # security/authorization messages (RFC 5424 table 1)
SYSLOG_SEVERITY: Final = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
SYSLOG_UNKNOWN_SEVERITY: Final = 4  # an unmapped severity is not played down below warning
SYSLOG_SD_ID: Final = "auditlake@32473"
SYSLOG_APP_NAME: Final = "auditlake"
SYSLOG_DATAGRAM_MAX: Final = 2048  # UDP and unix datagrams: what every receiver accepts
SYSLOG_STREAM_MAX: Final = 8192  # TCP and unix streams (RFC 6587 receivers take at least this)
_BOM: Final = b"\xef\xbb\xbf"


class SinkError(UsageError):
    """A sink could not deliver alerts; names the sink and the reason, never a secret."""


class _Retryable(Exception):
    """An attempt failed in a way a retry can fix (a transport error, 429 or 5xx)."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@runtime_checkable
class Sink(Protocol):
    """Something that takes batches of new and changed alerts."""

    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...


# -- the JSON form -----------------------------------------------------------------------------


def alert_json(alert: Alert) -> dict[str, Any]:
    """The stable JSON form of one alert (`Alert.to_json`)."""
    return alert.to_json()


def _json_line(alert: Alert) -> bytes:
    return orjson.dumps(alert.to_json(), option=orjson.OPT_SORT_KEYS) + b"\n"


# -- stdout and files --------------------------------------------------------------------------


class StdoutSink:
    """One JSON object per line (sorted keys) on a text stream, stdout by default."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        # None means "sys.stdout at send time", so redirection after construction holds.
        self._stream = stream

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(b"".join(_json_line(a) for a in alerts).decode())
        stream.flush()

    def close(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.flush()  # never closes a stream it did not open


class JsonlSink:
    """Appends one JSON line per alert to a file that other writers may append to too.

    The file is opened with O_APPEND and created mode 0600 (alerts name accounts and IPs);
    each batch is one `write` under an exclusive `flock`, then `fsync`ed, so lines from
    concurrent writers (two cron jobs, a job and a shipper's rotation) never interleave
    and a batch is durable when `send` returns. Parent directories are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.name = f"jsonl:{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd: int | None = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot open: {exc.strerror or exc}") from None

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        if self._fd is None:
            raise SinkError(f"{self.name}: sink is closed")
        data = b"".join(_json_line(a) for a in alerts)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:  # one write in practice; the loop only covers a short write
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise SinkError(f"{self.name}: write failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# -- webhook -----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a POST turned into a GET drops the alerts, and a redirect to
    another host would carry our Authorization header there."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class WebhookSink:
    """POSTs `{"alerts": [...]}` as JSON, at most 100 alerts per request.

    Connection errors, timeouts, 429 and 5xx are retried `retries` times with exponential
    backoff (`backoff`, 2×, 4×, ... capped at 30 s), or after `Retry-After` seconds when
    the server sends it (also capped at 30 s). Other answers outside 2xx, including
    redirects, fail at once. A retry resends the identical body. Userinfo in the URL is
    sent as HTTP Basic auth.

    Args:
        url: an http or https URL.
        headers: extra request headers (e.g. `Authorization`); values are never shown.
        timeout: seconds per attempt (connect, and each socket read).
        retries: attempts after the first.
        backoff: the first delay between attempts, in seconds.
        sleep: how to wait between attempts (tests pass a recorder).

    Raises:
        SinkError: (from `send`) a batch was not accepted; earlier batches of the same
            `send` were delivered and the message says how many alerts that was.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
            host = parts.hostname
        except ValueError:
            raise UsageError("webhook URL has an invalid port") from None
        if scheme not in ("http", "https") or not host:
            raise UsageError("webhook URL must be http:// or https:// with a host")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise UsageError("webhook retries and backoff must be >= 0, timeout > 0")
        shown_host = f"[{host}]" if ":" in host else host
        self.name = f"webhook:{scheme}://{shown_host}" + (f":{port}" if port else "")
        self.identity = url  # tells webhooks on one host apart (detect/delivery.py); never shown
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential(multiplier=backoff, max=MAX_RETRY_AFTER_S)
        netloc = parts.netloc.rpartition("@")[2]
        self._url = urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        self._secrets: set[str] = set()
        self._headers: dict[str, str] = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if parts.username is not None or parts.password is not None:
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
            self._secrets |= {user, password, parts.username or "", parts.password or "", token}
        for key, value in (headers or {}).items():
            if not key or any(c in key for c in "\r\n:") or any(c in value for c in "\r\n"):
                raise UsageError(f"{self.name}: header {key!r} has an invalid name or value")
            self._headers[key] = value
            self._secrets.add(value)
        self._secrets.add(parts.query)
        self._secrets.discard("")
        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, alerts: Sequence[Alert]) -> None:
        bodies = [
            orjson.dumps(
                {"alerts": [a.to_json() for a in alerts[i : i + WEBHOOK_BATCH]]},
                option=orjson.OPT_SORT_KEYS,
            )
            for i in range(0, len(alerts), WEBHOOK_BATCH)
        ]
        for n, body in enumerate(bodies):
            try:
                self._post(body)
            except SinkError as exc:
                if n:
                    done = n * WEBHOOK_BATCH
                    raise SinkError(f"{exc} ({done} of {len(alerts)} alerts delivered)") from None
                raise

    def close(self) -> None:
        """Nothing to release: each request uses its own connection."""

    def _post(self, body: bytes) -> None:
        """One batch: POST, retrying what a retry can fix, until accepted or out of tries."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            retrying(self._accepted, body)
            return
        except _Retryable as exc:
            last = exc.reason
        # Raised outside the handler: nothing chained to it may carry the URL.
        tries = self.retries + 1
        raise SinkError(self._redact(f"{self.name}: {last} (gave up after {tries} attempts)"))

    def _accepted(self, body: bytes) -> None:
        """One attempt; raises _Retryable for what a retry can fix, SinkError otherwise."""
        status, reason, retry_after = self._attempt(body)
        if status is not None and 200 <= status < 300:
            return
        last = f"HTTP {status} {reason}".rstrip() if status is not None else reason
        if status is not None and status != 429 and status < 500:
            raise SinkError(self._redact(f"{self.name}: {last}; not retried"))
        raise _Retryable(last, retry_after)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's Retry-After when it sent one, else exponential backoff."""
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return failure.retry_after
        return float(self._backoff(state))

    def _attempt(self, body: bytes) -> tuple[int | None, str, float | None]:
        """(status, reason, Retry-After seconds); status None for a transport failure."""
        request = urllib.request.Request(self._url, data=body, method="POST")
        for key, value in self._headers.items():
            request.add_header(key, value)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)  # drain a little so the server sees a clean close
                return int(response.status), str(response.reason or ""), None
        except urllib.error.HTTPError as exc:
            try:
                header = exc.headers.get("Retry-After") if exc.headers is not None else None
                return (
                    int(exc.code),
                    str(exc.reason or ""),
                    parse_retry_after(header, cap=MAX_RETRY_AFTER_S),
                )
            finally:
                exc.close()
        except urllib.error.URLError as exc:
            return None, _describe(exc.reason), None
        except (OSError, http.client.HTTPException) as exc:
            # A timeout or reset while reading the answer is not wrapped in URLError.
            return None, _describe(exc), None

    def _redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _describe(reason: object) -> str:
    """A transport failure as text without the URL: the exception type and its errno text."""
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    if isinstance(reason, BaseException):
        text = str(reason)
        return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
    return str(reason)


# -- syslog ------------------------------------------------------------------------------------


def _sd_escape(value: str) -> str:
    """An RFC 5424 PARAM-VALUE: `"`, `\\` and `]` escaped with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printusascii(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII, at most `limit` chars, `-` if empty."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return clean or "-"


def _truncate_utf8(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes of UTF-8 text, cut at a character boundary."""
    if len(data) <= limit:
        return data
    return data[: max(limit, 0)].decode("utf-8", "ignore").encode()


def syslog_message(
    alert: Alert,
    *,
    hostname: str,
    now: datetime | None = None,
    max_bytes: int = SYSLOG_DATAGRAM_MAX,
) -> bytes:
    """One alert as an RFC 5424 message (no transport framing), at most `max_bytes` long.

    `<PRI>1 TIMESTAMP HOSTNAME auditlake - MSGID [auditlake@32473 ...] MSG`: facility
    auth, severity from the alert's, MSGID the rule id (cut to RFC 5424's 32 chars),
    TIMESTAMP the time of sending, MSG the title (control characters become spaces, a BOM
    marks non-ASCII text, and it is truncated to fit `max_bytes`).
    """
    doc = alert_json(alert)
    severity = SYSLOG_SEVERITY.get(doc["severity"], SYSLOG_UNKNOWN_SEVERITY)
    pri = SYSLOG_FACILITY_AUTH * 8 + severity
    stamp = utc_text(now or datetime.now(UTC))
    params = [("tenant", doc["tenant"]), ("alert_id", doc["alert_id"])]
    if doc["event_count"] is not None:
        params.append(("event_count", str(doc["event_count"])))
    sd = "[" + SYSLOG_SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params) + "]"
    head = (
        f"<{pri}>1 {stamp} {_printusascii(hostname, 255)} {SYSLOG_APP_NAME} - "
        f"{_printusascii(doc['rule_id'], 32)} {sd}"
    ).encode()
    title = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in doc["title"])
    msg = title.encode()
    if not msg:
        return head[:max_bytes]
    prefix = b" " + (b"" if msg.isascii() else _BOM)
    room = max_bytes - len(head) - len(prefix)
    if room <= 0:
        return head[:max_bytes]
    return head + prefix + _truncate_utf8(msg, room)


class SyslogTransport(StrEnum):
    UDP = "udp"
    TCP = "tcp"  # RFC 6587 octet counting
    UNIX = "unix"  # a local socket path, datagram or stream


class SyslogSink:
    """RFC 5424 messages to a syslog receiver: UDP, TCP (RFC 6587 octet counting) or a
    unix socket such as /dev/log.

    Messages are bounded: 2048 bytes on datagram transports (UDP, unix datagram), 8192 on
    streams; the title is what gets truncated. A TCP connection is kept open between
    batches and redialled once if the receiver dropped it (the batch is then resent whole:
    at least once).

    Args:
        address: `udp://HOST[:PORT]` (514), `tcp://HOST[:PORT]` (601), or an absolute path.
        timeout: seconds for connecting and for each send on TCP and unix sockets.
        hostname: the HOSTNAME field; the machine's name by default.
    """

    def __init__(self, address: str, *, timeout: float = 10.0, hostname: str | None = None) -> None:
        self.address = address
        self.name = f"syslog:{address}"
        self.timeout = timeout
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self._sock: socket.socket | None = None
        self._stream = False  # a unix socket path turned out to be SOCK_STREAM
        self._target: Any = None
        if address.startswith("/"):
            self.transport = SyslogTransport.UNIX
            self._target = address
            self.max_bytes = SYSLOG_DATAGRAM_MAX
            return
        parts = urllib.parse.urlsplit(address)
        defaults = {SyslogTransport.UDP: 514, SyslogTransport.TCP: 601}
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"{self.name}: invalid port") from None
        if parts.scheme not in defaults or not parts.hostname or parts.path not in ("", "/"):
            raise UsageError(
                f"{self.name}: expected udp://HOST:PORT, tcp://HOST:PORT or a socket path"
            )
        self.transport = SyslogTransport(parts.scheme)
        self._target = (parts.hostname, port or defaults[self.transport])
        datagram = self.transport == SyslogTransport.UDP
        self.max_bytes = SYSLOG_DATAGRAM_MAX if datagram else SYSLOG_STREAM_MAX

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        now = datetime.now(UTC)
        messages = [
            syslog_message(a, hostname=self.hostname, now=now, max_bytes=self.max_bytes)
            for a in alerts
        ]
        try:
            if self.transport == SyslogTransport.UDP:
                self._send_udp(messages)
            elif self.transport == SyslogTransport.TCP:
                frames = b"".join(b"%d %s" % (len(m), m) for m in messages)
                self._send_stream(frames)
            else:
                self._send_unix(messages)
        except OSError as exc:
            self._drop()
            raise SinkError(f"{self.name}: {_describe(exc)}") from None

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()

    def _send_udp(self, messages: Sequence[bytes]) -> None:
        if self._sock is None:
            host, port = self._target
            family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(family, kind, proto)
            self._target = addr  # resolved once: one receiver for the sink's lifetime
        for message in messages:
            self._sock.sendto(message, self._target)

    def _send_stream(self, frames: bytes) -> None:
        for attempt in range(2):
            fresh = self._sock is None
            if self._sock is None:
                self._sock = socket.create_connection(self._target, timeout=self.timeout)
            try:
                self._sock.sendall(frames)
                return
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self._drop()
                if fresh or attempt:
                    raise

    def _send_unix(self, messages: Sequence[bytes]) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._target)
                self._stream = False
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:
                    raise
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(self._target)
                except OSError:
                    sock.close()
                    raise
                self._stream = True
            self._sock = sock
        if self._stream:
            # Local stream sockets (syslog-ng's unix-stream) take NUL-terminated messages.
            self._sock.sendall(b"".join(m + b"\0" for m in messages))
        else:
            for message in messages:
                self._sock.send(message)


# -- the CLI syntax ----------------------------------------------------------------------------


def parse_sink(spec: str) -> Sink:
    """A sink from the CLI's `--sink` syntax (see SINK_FORMS).

    Raises:
        UsageError: the spec is none of the forms; the message lists them.
    """
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    forms = ", ".join(SINK_FORMS)
    if text.lower() == "stdout":
        return StdoutSink()
    if sep and rest:
        if kind == "jsonl":
            return JsonlSink(rest)  # SinkError if it cannot be opened: a usage error too
        try:
            if kind == "webhook":
                return WebhookSink(rest)
            if kind == "syslog":
                return SyslogSink(rest)
        except UsageError as exc:
            raise UsageError(f"{exc}; sinks are: {forms}") from None
    # Only the part before the first colon is echoed: the rest may be a URL with a secret.
    raise UsageError(f"unknown or incomplete sink {kind or '(empty)'!r}; sinks are: {forms}")
