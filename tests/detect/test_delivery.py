"""Each sink on its own: a dead webhook neither silences the JSONL sink nor stops the run,
and what it missed reaches it once it is back (detect/delivery.py).

Real parts only: a port on 127.0.0.1 nobody listens on (bound, then closed), a real HTTP
server started later on that same port, a real lake and a real JSONL file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from detect_testkit import failures
from testkit import free_port

from detect.delivery import SPOOL_DIR
from detect.model import Rule, load_rules
from detect.runner import run
from detect.sinks import JsonlSink, Sink, WebhookSink
from lake.contract import validate
from lake.log import generate_signer
from lake.storage import Lake
from lake.write import append

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def attempts(actor: str, start: datetime, n: int) -> list[dict[str, Any]]:
    return failures("acme", actor, start, n, timedelta(seconds=30), "203.0.113.9")


class Hook(ThreadingHTTPServer):
    """Takes every POST with 200 and keeps the alerts it carried."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _HookHandler)
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.alerts += json.loads(body)["alerts"]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def hook_on(port: int) -> Iterator[Hook]:
    srv = Hook(port)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def brute_force_only() -> list[Rule]:
    return [r for r in load_rules() if r.id == "auth.brute_force"]


def test_a_dead_webhook_neither_silences_jsonl_nor_loses_alerts(tmp_path: Path) -> None:
    signer = generate_signer("delivery-test")
    lake = Lake.init(tmp_path / "lake", "t", signer.verifier_key.encode())
    append(lake, validate(attempts("victim", T0, 12), namespace=b"a").table, signer)
    port = free_port()  # bound and closed: connections are refused
    url = f"http://127.0.0.1:{port}/hooks/T000/secret-token"
    jsonl = tmp_path / "alerts.jsonl"

    def sinks() -> list[Sink]:
        return [WebhookSink(url, retries=0), JsonlSink(jsonl)]  # the dead one first

    first = run(lake, brute_force_only(), sinks=sinks())
    assert [a.rule_id for a in first.new] == ["auth.brute_force"]
    alert_id = first.new[0].alert_id
    assert not first.delivered
    hook, file = first.sinks
    assert (hook.sink, hook.ok, hook.delivered, hook.spooled) == (
        f"webhook:http://127.0.0.1:{port}", False, 0, 1)  # fmt: skip
    assert "ConnectionRefusedError" in (hook.error or "") and "secret-token" not in hook.line()
    assert (file.ok, file.delivered, file.spooled) == (True, 1, 0)
    assert [json.loads(line)["alert_id"] for line in jsonl.read_text().splitlines()] == [alert_id]
    assert [a["alert_id"] for a in lake.read_alerts().to_pylist()] == [alert_id]  # committed
    (spool,) = (Path(lake.base) / SPOOL_DIR).iterdir()
    assert alert_id in spool.read_text() and "secret-token" not in spool.read_text()

    # Still dead, and the alert grows: the spool keeps one entry, in its newest form.
    append(
        lake,
        validate(attempts("victim", T0 + timedelta(minutes=6), 1), namespace=b"b").table,
        signer,
    )
    second = run(lake, brute_force_only(), sinks=sinks())
    assert [a.event_count for a in second.changed] == [13]
    assert [(s.ok, s.delivered, s.spooled) for s in second.sinks] == [(False, 0, 1), (True, 1, 0)]

    # Back on the same port: the next run sends what was spooled, once, then nothing.
    with hook_on(port) as server:
        third = run(lake, brute_force_only(), sinks=sinks())
        assert third.new == [] and third.changed == []
        assert third.delivered
        assert [(s.ok, s.delivered, s.spooled) for s in third.sinks] == [(True, 1, 0), (True, 0, 0)]
        assert [(a["alert_id"], a["event_count"]) for a in server.alerts] == [(alert_id, 13)]
        fourth = run(lake, brute_force_only(), sinks=sinks())
        assert fourth.delivered and [s.delivered for s in fourth.sinks] == [0, 0]
        assert len(server.alerts) == 1
    assert len(jsonl.read_text().splitlines()) == 2  # the new alert, then its update


def test_two_webhooks_on_one_host_keep_separate_spools(tmp_path: Path) -> None:
    signer = generate_signer("delivery-test")
    lake = Lake.init(tmp_path / "lake", "t", signer.verifier_key.encode())
    append(lake, validate(attempts("victim", T0, 12), namespace=b"a").table, signer)
    port = free_port()
    first = run(
        lake,
        brute_force_only(),
        sinks=[WebhookSink(f"http://127.0.0.1:{port}/a", retries=0)],
    )
    assert [s.spooled for s in first.sinks] == [1]
    with hook_on(port) as server:
        other = run(lake, brute_force_only(), sinks=[WebhookSink(f"http://127.0.0.1:{port}/b")])
        assert [s.delivered for s in other.sinks] == [0] and server.alerts == []
        again = run(lake, brute_force_only(), sinks=[WebhookSink(f"http://127.0.0.1:{port}/a")])
        assert [s.delivered for s in again.sinks] == [1] and len(server.alerts) == 1
