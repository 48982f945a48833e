"""Alert sinks against real receivers on 127.0.0.1: an HTTP server, UDP/TCP/unix syslog
listeners, and two processes appending to one JSONL file."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from detect.sinks import (
    JsonlSink,
    Sink,
    SinkError,
    StdoutSink,
    SyslogSink,
    WebhookSink,
    alert_json,
    parse_sink,
)
from lake.contract import Alert, UsageError

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def make_row(n: int = 0, **changes: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "tenant": "acme",
        "alert_id": f"{n:032x}",
        "rule_id": "auth.brute_force",
        "severity": "high",
        "title": f"5 failed logins for alice ({n})",
        "group": '{"actor_id":"alice"}',
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=5),
        "event_count": 5,
        "event_ids": [f"e{n}-{i}" for i in range(5)],
    }
    alert.update(changes)
    return alert


def make_alert(n: int = 0, **changes: Any) -> Alert:
    return Alert.from_row(make_row(n, **changes))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not sit between the sink and the test server."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- alert_json and stdout ---------------------------------------------------------------------


def test_alert_json_is_the_stable_form() -> None:
    plus2 = timezone(timedelta(hours=2))
    alert = make_row(first_seen=datetime(2026, 11, 2, 12, 0, 0, 5, tzinfo=plus2), extra=1)
    doc = alert_json(Alert.from_row(alert))
    assert doc == {
        "tenant": "acme",
        "alert_id": "0" * 32,
        "rule_id": "auth.brute_force",
        "severity": "high",
        "title": "5 failed logins for alice (0)",
        "group": {"actor_id": "alice"},
        "first_seen": "2026-11-02T10:00:00.000005Z",
        "last_seen": "2026-11-02T10:05:00.000000Z",
        "event_count": 5,
        "event_ids": [f"e0-{i}" for i in range(5)],
    }
    assert alert_json(Alert.from_row(make_row(group=None, event_ids=None)))["group"] == {}
    assert doc == Alert.from_row(alert).to_json()
    with pytest.raises(UsageError, match="missing 'rule_id'"):
        Alert.from_row({k: v for k, v in make_row().items() if k != "rule_id"})
    with pytest.raises(UsageError, match="first_seen"):
        Alert.from_row(make_row(first_seen="yesterday"))


def test_stdout_sink_writes_one_sorted_json_line_per_alert(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = StdoutSink()
    sink.send([make_alert(1), make_alert(2)])
    sink.send([])
    sink.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for n, line in enumerate(lines, start=1):
        doc = json.loads(line)
        assert doc == alert_json(make_alert(n))
        assert list(doc) == sorted(doc)
        assert line == orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


# -- jsonl -------------------------------------------------------------------------------------

WRITER = """
import sys
from datetime import UTC, datetime
from detect.sinks import JsonlSink
from lake.contract import Alert

path, who, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = datetime(2026, 11, 2, tzinfo=UTC)
sink = JsonlSink(path)
alerts = [
    Alert("acme", f"{who}-{i}", "r", "low", who * 3000, "{}", t, t, 1, (str(i),))
    for i in range(count)
]
for i in range(0, count, batch):
    sink.send(alerts[i : i + batch])
sink.close()
"""


def test_jsonl_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "alerts.jsonl"
    count = 400
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), who, str(count), "7"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for who in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2 * count
    ids = [orjson.loads(line)["alert_id"] for line in lines]
    assert sorted(ids) == sorted(f"{w}-{i}" for w in "ab" for i in range(count))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_jsonl_appends_and_refuses_after_close(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    for n in range(2):
        sink = JsonlSink(path)
        sink.send([make_alert(n)])
        sink.close()
    assert [json.loads(x)["alert_id"] for x in path.read_text().splitlines()] == [
        "0" * 32,
        f"{1:032x}",
    ]
    with pytest.raises(SinkError, match="closed"):
        sink.send([make_alert()])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match=r"jsonl:.*cannot open"):
        JsonlSink(blocker / "alerts.jsonl")


# -- webhook -----------------------------------------------------------------------------------


class Recorder(ThreadingHTTPServer):
    """Records each POST; answers from `script` (status, headers), then 200."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers.items()), body))
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_webhook_retries_503_then_delivers_the_same_body(server: Recorder) -> None:
    server.script = [(503, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
    slept: list[float] = []
    sink = WebhookSink(server.url + "/hook", sleep=slept.append)
    assert sink.name == f"webhook:{server.url}"
    sink.send([make_alert(1), make_alert(2)])
    assert len(server.requests) == 3
    assert len({body for _, _, body in server.requests}) == 1
    path, headers, body = server.requests[0]
    assert path == "/hook"
    assert headers["Content-Type"] == "application/json"
    assert orjson.loads(body) == {"alerts": [alert_json(make_alert(1)), alert_json(make_alert(2))]}
    assert slept == [0.0, 0.0]


def test_webhook_backoff_is_exponential_and_retry_after_capped(server: Recorder) -> None:
    server.script = [(500, {}), (429, {"Retry-After": "3600"}), (502, {}), (500, {})]
    slept: list[float] = []
    sink = WebhookSink(server.url, retries=3, backoff=0.25, sleep=slept.append)
    with pytest.raises(SinkError, match=r"HTTP 500 .*gave up after 4 attempts"):
        sink.send([make_alert()])
    assert len(server.requests) == 4
    assert slept == [0.25, 30.0, 1.0]


@pytest.mark.parametrize("status", [400, 302])
def test_webhook_does_not_retry_client_errors_or_follow_redirects(
    server: Recorder, status: int
) -> None:
    server.script = [(status, {"Location": server.url + "/elsewhere"})]
    slept: list[float] = []
    with pytest.raises(SinkError, match=rf"HTTP {status} .*not retried"):
        WebhookSink(server.url, sleep=slept.append).send([make_alert()])
    assert len(server.requests) == 1
    assert slept == []


def test_webhook_batches_of_at_most_100(server: Recorder) -> None:
    alerts = [make_alert(n) for n in range(250)]
    WebhookSink(server.url).send(alerts)
    batches = [orjson.loads(body)["alerts"] for _, _, body in server.requests]
    assert [len(b) for b in batches] == [100, 100, 50]
    assert [a["alert_id"] for b in batches for a in b] == [a.alert_id for a in alerts]


def test_webhook_reports_partial_delivery(server: Recorder) -> None:
    server.script = [(200, {}), (404, {})]
    with pytest.raises(SinkError, match=r"HTTP 404.*\(100 of 250 alerts delivered\)"):
        WebhookSink(server.url).send([make_alert(n) for n in range(250)])


@pytest.mark.parametrize("status", [403, 500])
def test_webhook_error_never_shows_secrets(server: Recorder, status: int) -> None:
    server.script = [(status, {})] * 3
    port = server.server_address[1]
    url = f"http://user:secret@127.0.0.1:{port}/hooks/T0KEN?token=abc"
    sink = WebhookSink(url, headers={"X-Api-Key": "hunter2"}, retries=2, sleep=lambda s: None)
    with pytest.raises(SinkError) as info:
        sink.send([make_alert()])
    message = str(info.value)
    assert f"HTTP {status}" in message
    assert "127.0.0.1" in message
    for secret in ("secret", "abc", "token", "hunter2", "user", "T0KEN"):
        assert secret not in message
        assert secret not in sink.name
    # Nor does anything chained to it (urllib's HTTPError carries the full URL).
    assert info.value.__cause__ is None and info.value.__context__ is None
    path, headers, _ = server.requests[0]
    assert path == "/hooks/T0KEN?token=abc"
    assert headers["X-Api-Key"] == "hunter2"
    assert base64.b64decode(headers["Authorization"].removeprefix("Basic ")) == b"user:secret"


def test_webhook_gives_up_on_a_server_that_never_answers() -> None:
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        port = hang.getsockname()[1]
        slept: list[float] = []
        sink = WebhookSink(
            f"http://127.0.0.1:{port}/?token=abc", timeout=0.2, retries=2, sleep=slept.append
        )
        with pytest.raises(SinkError, match=r"timed out \(gave up after 3 attempts\)") as info:
            sink.send([make_alert()])
    assert slept == [0.5, 1.0]
    assert "abc" not in str(info.value)


def test_webhook_connection_refused_is_a_sink_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError, match="ConnectionRefusedError"):
        WebhookSink(f"http://127.0.0.1:{port}", retries=1, sleep=lambda s: None).send(
            [make_alert()]
        )


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "https://", "file:///etc/passwd", "http://h:99999/"]
)
def test_webhook_refuses_other_urls(url: str) -> None:
    with pytest.raises(UsageError, match="webhook URL"):
        WebhookSink(url)


def test_webhook_refuses_header_injection() -> None:
    with pytest.raises(UsageError, match="X-Key") as info:
        WebhookSink("https://example.com", headers={"X-Key": "s3cr3t\r\nEvil: 1"})
    assert "s3cr3t" not in str(info.value)


# -- syslog ------------------------------------------------------------------------------------

RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>\S+)"
    rb" auditlake - (?P<msgid>\S+) (?P<sd>\[auditlake@32473(?: \w+=\"(?:[^\"\\\]]|\\.)*\")*\])"
    rb"(?: (?P<msg>.*))?$",
    re.DOTALL,
)


def parse_syslog(message: bytes) -> dict[str, Any]:
    m = RFC5424.match(message)
    assert m, message
    params = {
        k.decode(): re.sub(rb"\\(.)", rb"\1", v).decode()
        for k, v in re.findall(rb' (\w+)="((?:[^"\\\]]|\\.)*)"', m["sd"])
    }
    return {**{k: v for k, v in m.groupdict().items()}, "params": params}


@pytest.fixture
def udp_server() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        yield s


def test_syslog_udp_rfc5424_shape_and_escaping(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    sink = SyslogSink(f"udp://127.0.0.1:{port}", hostname="det-1")
    tricky = 'a"b\\c]d'
    sink.send(
        [
            make_alert(1, severity="critical", alert_id=tricky, title="Brute force on alice"),
            make_alert(2, severity="info", title="line one\nline two"),
        ]
    )
    sink.close()
    first = parse_syslog(udp_server.recv(65536))
    second = parse_syslog(udp_server.recv(65536))
    assert int(first["pri"]) == 4 * 8 + 2
    assert int(second["pri"]) == 4 * 8 + 6
    assert first["host"] == b"det-1"
    assert first["msgid"] == b"auth.brute_force"
    assert b'alert_id="a\\"b\\\\c\\]d"' in first["sd"]
    assert first["params"] == {"tenant": "acme", "alert_id": tricky, "event_count": "5"}
    assert first["msg"] == b"Brute force on alice"
    assert second["msg"] == b"line one line two"
    sent = datetime.strptime(first["ts"].decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - sent) < timedelta(minutes=1)


def test_syslog_severity_mapping(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    sink = SyslogSink(f"udp://127.0.0.1:{port}")
    levels = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
    sink.send([make_alert(severity=s) for s in levels])
    sink.close()
    got = [int(parse_syslog(udp_server.recv(65536))["pri"]) for _ in levels]
    assert got == [32 + v for v in levels.values()]


def test_syslog_udp_message_is_bounded(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    sink = SyslogSink(f"udp://127.0.0.1:{port}")
    sink.send([make_alert(title="x" * 5000), make_alert(title="é" * 3000)])
    sink.close()
    ascii_msg, utf8_msg = udp_server.recv(65536), udp_server.recv(65536)
    assert len(ascii_msg) == 2048
    assert len(utf8_msg) <= 2048
    parsed = parse_syslog(utf8_msg)
    assert parsed["msg"].startswith(b"\xef\xbb\xbf\xc3\xa9")
    assert set(parsed["msg"][3:].decode()) == {"é"}  # cut at a character boundary


def test_syslog_tcp_octet_counting() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(5)
        port = listener.getsockname()[1]
        received = bytearray()

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        sink = SyslogSink(f"tcp://127.0.0.1:{port}")
        sink.send([make_alert(1, title="naïve ünïcode"), make_alert(2)])
        sink.send([make_alert(3, severity="low")])
        sink.close()
        thread.join(5)
    frames = []
    data = bytes(received)
    while data:
        length, _, rest = data.partition(b" ")
        assert length.isdigit(), data[:40]
        frames.append(rest[: int(length)])
        data = rest[int(length) :]
    assert len(frames) == 3
    parsed = [parse_syslog(f) for f in frames]
    assert parsed[0]["msg"] == "\ufeffnaïve ünïcode".encode()
    assert [p["params"]["alert_id"] for p in parsed] == [f"{n:032x}" for n in (1, 2, 3)]
    assert int(parsed[2]["pri"]) == 37


def test_syslog_unix_datagram_socket() -> None:
    # AF_UNIX paths are limited to ~108 bytes; pytest's tmp_path can be longer.
    directory = Path(os.environ.get("TMPDIR", "/tmp"))
    path = directory / f"auditlake-test-{os.getpid()}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        try:
            s.settimeout(5)
            sink = parse_sink(f"syslog:{path}")
            sink.send([make_alert()])
            sink.close()
            assert parse_syslog(s.recv(65536))["msgid"] == b"auth.brute_force"
        finally:
            path.unlink()


def test_syslog_unreachable_is_a_sink_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError, match=rf"syslog:tcp://127.0.0.1:{port}: ConnectionRefused"):
        SyslogSink(f"tcp://127.0.0.1:{port}", timeout=1).send([make_alert()])
    with pytest.raises(SinkError, match="syslog:/nonexistent/log"):
        SyslogSink("/nonexistent/log").send([make_alert()])


# -- parse_sink --------------------------------------------------------------------------------


def test_parse_sink_forms(tmp_path: Path) -> None:
    forms: dict[str, tuple[type, str]] = {
        "stdout": (StdoutSink, "stdout"),
        f"jsonl:{tmp_path}/a/alerts.jsonl": (JsonlSink, f"jsonl:{tmp_path}/a/alerts.jsonl"),
        "webhook:https://hooks.example.com/x?k=v": (
            WebhookSink,
            "webhook:https://hooks.example.com",
        ),
        "webhook:http://127.0.0.1:8080/x": (WebhookSink, "webhook:http://127.0.0.1:8080"),
        "syslog:udp://127.0.0.1:514": (SyslogSink, "syslog:udp://127.0.0.1:514"),
        "syslog:tcp://siem.example.com:601": (SyslogSink, "syslog:tcp://siem.example.com:601"),
        "syslog:/dev/log": (SyslogSink, "syslog:/dev/log"),
    }
    for spec, (kind, name) in forms.items():
        sink = parse_sink(spec)
        assert isinstance(sink, kind) and isinstance(sink, Sink), spec
        assert sink.name == name
        sink.close()
    assert (tmp_path / "a" / "alerts.jsonl").exists()
    assert parse_sink("syslog:udp://[::1]")._target == ("::1", 514)  # type: ignore[attr-defined]
    assert parse_sink("syslog:tcp://h")._target == ("h", 601)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "stderr",
        "file:/tmp/x",
        "jsonl:",
        "webhook:",
        "webhook:ftp://example.com",
        "webhook:example.com/hook",
        "syslog:",
        "syslog:http://host:514",
        "syslog:udp://",
        "syslog:relative/log",
        "syslog:udp://host:notaport",
    ],
)
def test_parse_sink_errors_list_the_forms(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_sink(spec)
    message = str(info.value)
    for form in ("stdout", "jsonl:PATH", "webhook:https://", "syslog:udp://", "/dev/log"):
        assert form in message


def test_parse_sink_error_does_not_echo_a_url() -> None:
    with pytest.raises(UsageError) as info:
        parse_sink("webhok:https://u:hunter2@example.com/?token=abc")
    assert "hunter2" not in str(info.value) and "abc" not in str(info.value)
