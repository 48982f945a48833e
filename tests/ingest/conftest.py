"""A real collector process on 127.0.0.1 for the ingest tests (collector, SDK)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from testkit import free_port

from ingest.tokens import TokenStore
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake

EXE = str(Path(sys.executable).with_name("auditlake"))


@dataclass
class Server:
    url: str
    token: str
    lake: Lake
    home: Path
    env: dict[str, str]
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / "collector.log"

    @property
    def port(self) -> int:
        """The collector's port on 127.0.0.1."""
        return int(self.url.rsplit(":", 1)[1])

    def open_post(self, length: int) -> http.client.HTTPConnection:
        """A POST of events whose headers are sent, declaring a body of `length` bytes; the
        test sends as much of it as it likes and reads the answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest("POST", "/v1/events")
        conn.putheader("Authorization", f"Bearer {self.token}")
        conn.putheader("Content-Type", "application/x-ndjson")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        return conn

    def restart(self, *extra: str) -> None:
        """Stop gracefully and start again with the port and these options."""
        self.stop()
        self.args = [*self.args[:2], *extra]
        self.start()

    def start(self) -> None:
        # The collector's JSON log goes to a file: an unread pipe would fill and block it.
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [EXE, "serve", *self.args], env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("collector did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.proc = None
        return rc

    def post(
        self,
        body: bytes,
        *,
        token: str | None = "default",
        content_type: str = "application/x-ndjson",
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": content_type}
        tok = self.token if token == "default" else token
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(self.url + "/v1/events", data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, orjson.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, orjson.loads(e.read() or b"{}")

    def committed(self) -> int:
        """Events sealed under a signed checkpoint (committed and checkpointed)."""
        table = self.lake.checkpoints_table()
        tenants = self.lake.tenants(self.lake.events_table())
        return sum(Lake.sealed_size(table, t) for t in tenants)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    signer = KeyStore(home).generate("k")
    TrustStore(home).add(signer.verifier_key)
    lake = Lake.init(tmp_path / "lake", "c", signer.verifier_key.encode())
    token = TokenStore(home).create(["northwind", "contoso"], "test")
    port = free_port()
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    s = Server(
        f"http://127.0.0.1:{port}",
        token,
        lake,
        home,
        env,
        ["--port", str(port), "--batch-age", "0.2"],
    )
    s.start()
    yield s
    if s.proc is not None:
        assert s.stop() == 0
