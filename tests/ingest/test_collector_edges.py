"""The collector at its edges, as a real process on 127.0.0.1 (issue #17).

A record the lake refuses (written into the WAL by an older collector), a batcher that
cannot commit at shutdown, half-open connections past the descriptor limit, a full disk
under the WAL, and what /metrics says about all of it.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pytest
from ingest_testkit import ndjson, wait_for
from prometheus_client.parser import text_string_to_metric_families
from testkit import fill
from testkit import small_disk as mount_small_disk

from ingest.demo import generate
from ingest.ipc import to_ipc
from ingest.quarantine import QuarantineKind, QuarantineRecord
from ingest.wal import WriteAheadLog
from lake.contract import validate
from lake.secrets import TrustStore
from lake.verify import verify_lake
from lake.write import stamp_received

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server

EXE = str(Path(sys.executable).with_name("auditlake"))
# "9999-12-31T23:59:59-23:59" in UTC: 10000-01-01T23:58:59Z, past what datetime holds.
FAR_MICROS = (253_402_300_799 + 23 * 3600 + 59 * 60) * 1_000_000


def events(tenant: str, n: int, seed: int) -> list[dict[str, Any]]:
    data = generate(
        tenants=(tenant,), days=1, events_per_tenant_per_day=n, seed=seed, incidents=False
    )
    return data.events


def request(
    server: Server, path: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers in lower case, body); (0, {}, b"") when no connection was made."""
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.url + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
    except OSError:
        return 0, {}, b""


def health(server: Server) -> tuple[int, dict[str, Any]]:
    status, _, body = request(server, "/v1/health")
    return status, orjson.loads(body) if body else {}


def launch(server: Server, *extra: str, preexec: Callable[[], None] | None = None) -> None:
    """Start the collector with these options; ready once health answers at all."""
    server.args = [*server.args[:2], *extra]
    with server.log_path.open("ab") as log:
        server.proc = subprocess.Popen(
            [EXE, "serve", *server.args],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=preexec,
        )
    wait_for(lambda: health(server)[0] in (200, 503))


def log_lines(server: Server) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in server.log_path.read_text().splitlines() if line]


def wal_dir(server: Server) -> Path:
    return Path(server.home) / "wal" / str(server.lake.name)


def stored_ids(server: Server) -> set[str]:
    table = server.lake.events_table()
    rows = server.lake.read_rows(server.lake.data_files(table), ["event_id"])
    return set(rows.column("event_id").to_pylist())


# -- A1: one bad record must not stop the collector for every tenant ----------------------


def far_dated(tenant: str) -> pa.Table:
    """A validated event whose time was then pushed past year 9999 (as a pre-fix
    collector let `"time": "9999-12-31T23:59:59-23:59"` through)."""
    table = validate(events(tenant, 1, seed=11)).table
    times = pa.array([FAR_MICROS], pa.int64()).cast(table.schema.field("time").type)
    days = pa.array([FAR_MICROS // 86_400_000_000], pa.int32()).cast(pa.date32())
    table = table.set_column(table.schema.get_field_index("time"), "time", times)
    return table.set_column(table.schema.get_field_index("event_date"), "event_date", days)


def test_a_poison_record_is_quarantined_and_every_other_event_commits(server: Server) -> None:
    server.stop()
    good_before = validate(events("northwind", 5, seed=1)).table
    poison = far_dated("contoso")
    good_after = validate(events("contoso", 5, seed=2)).table
    # Written with the WAL's own writer, bypassing validation, as an older collector did:
    # a far-dated event, a payload that is not Arrow at all, good events around them.
    with WriteAheadLog(wal_dir(server)) as wal:
        for payload in (good_before, poison, b"not an arrow stream", good_after):
            wal.append(payload if isinstance(payload, bytes) else to_ipc(stamp_received(payload)))
    launch(server, "--batch-age", "0.2")
    more = events("northwind", 5, seed=3)
    assert request(server, "/v1/events", ndjson(more), server.token)[0] == 202
    expected = {
        *good_before.column("event_id").to_pylist(),
        *good_after.column("event_id").to_pylist(),
        *(e["id"] for e in more),
    }
    # Once the batch is isolated, nothing is pending, and health fails saying why.
    wait_for(lambda: health(server)[1].get("quarantine", {}).get("files") == 2, timeout=60)
    wait_for(lambda: health(server)[1]["pending_events"] == 0, timeout=60)
    assert stored_ids(server) == expected
    status, body = health(server)
    assert status == 503 and body["status"] == "failing"
    assert "quarantined" in body["error"]
    quarantine = wal_dir(server) / "quarantine"
    about = [QuarantineRecord.from_json(p.read_bytes()) for p in sorted(quarantine.glob("*.json"))]
    assert [(a.events, a.event_ids, a.kind) for a in about] == [
        (1, poison.column("event_id").to_pylist(), QuarantineKind.REFUSED),
        (0, [], QuarantineKind.REFUSED),  # the payload that did not decode, kept as it was
    ]
    kept = pa.ipc.open_stream(next(quarantine.glob("*.arrows")).read_bytes()).read_all()
    assert kept.column("event_id").equals(poison.column("event_id"))
    assert (quarantine / f"{2:020d}-0-refused.arrows").exists()
    assert (quarantine / f"{3:020d}-0-refused.raw").read_bytes() == b"not an arrow stream"
    logged = [line for line in log_lines(server) if line.get("event") == "quarantined"]
    assert {line["wal_seq"] for line in logged} == {2, 3}
    # Requests are still served while health reports the quarantine.
    assert request(server, "/v1/events", ndjson(more), server.token)[0] == 202
    _, _, text = request(server, "/metrics")
    assert "auditlake_events_quarantined_total 1.0" in text.decode()
    assert "auditlake_quarantine_files 2.0" in text.decode()
    assert server.stop() == 0
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


def test_sigterm_with_events_it_cannot_commit_exits_1_and_keeps_them(server: Server) -> None:
    server.restart("--batch-age", "0.2", "--drain-timeout", "1")
    events_dir = Path(server.lake.root) / "events"
    away = events_dir.with_name("events.away")
    events_dir.rename(away)  # storage outage: every commit fails
    sent = events("northwind", 5, seed=5)
    assert request(server, "/v1/events", ndjson(sent), server.token)[0] == 202
    wait_for(lambda: health(server)[0] == 503)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 1
    server.proc = None
    last = server.log_path.read_text().splitlines()[-1]
    assert "5 acknowledged event(s) not yet in the lake" in last
    away.rename(events_dir)
    server.start()  # the WAL still had them
    wait_for(lambda: stored_ids(server) == {e["id"] for e in sent})


# -- C: metrics, and a WAL trimmed so that a clean restart replays nothing ----------------


def test_metrics_have_help_and_type_count_requests_by_status_and_rejected_events(
    server: Server,
) -> None:
    ok = events("northwind", 4, seed=7)
    bad = [*events("contoso", 4, seed=8), dict(ok[0], outcome="maybe")]
    assert request(server, "/v1/events", ndjson(ok), server.token)[0] == 202
    assert request(server, "/v1/events", ndjson(bad), server.token)[0] == 400
    assert request(server, "/v1/events", ndjson(ok), "alk_wrong")[0] == 401
    _, headers, raw = request(server, "/metrics")
    text = raw.decode()
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("auditlake_events_accepted", "auditlake_wal_records", "auditlake_http_requests"):
        assert f"# HELP {name}" in text and f"# TYPE {name}" in text
        assert families[name].documentation
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("auditlake_events_accepted_total", ())] == 4
    assert samples[("auditlake_events_rejected_total", ())] == 5  # events, not issues
    for status in ("202", "400", "401"):
        key = ("auditlake_http_requests_total", (("route", "/v1/events"), ("status", status)))
        assert samples[key] == 1
    count = ("auditlake_http_request_duration_seconds_count", (("route", "/v1/events"),))
    assert samples[count] == 3
    assert families["auditlake_http_request_duration_seconds"].type == "histogram"


def test_a_clean_restart_replays_nothing(server: Server) -> None:
    sent = events("northwind", 6, seed=9)
    assert request(server, "/v1/events", ndjson(sent), server.token)[0] == 202
    wait_for(lambda: server.committed() == 6)
    server.restart("--batch-age", "0.2")
    starts = [line for line in log_lines(server) if line.get("event") == "start"]
    assert [s["replayed_events"] for s in starts] == [0, 0]
    status, body = health(server)
    assert status == 200 and body["wal"]["records"] == 0


# -- A9: half-open connections ------------------------------------------------------------


def half_open(server: Server, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(n)]


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_half_open_connections_past_the_descriptor_limit_leave_health_answering(
    server: Server,
) -> None:
    server.stop()

    def few_descriptors() -> None:  # runs in the child: 256 files, fewer than the flood
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    launch(server, "--max-connections", "20", "--header-timeout", "600", preexec=few_descriptors)
    size_before = server.log_path.stat().st_size
    flood = half_open(server, 300)
    try:
        status, body = health(server)
        assert (status, body["status"]) == (200, "ok")
        assert closed_by_server(flood[0])  # the oldest idle connection made room
        assert (
            request(server, "/v1/events", ndjson(events("northwind", 3, 1)), server.token)[0] == 202
        )
    finally:
        for sock in flood:
            sock.close()
    _, _, text = request(server, "/metrics")
    refused = [
        s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
        if s.name == "auditlake_connections_refused_total"
    ]
    assert refused and refused[0] >= 250
    assert server.log_path.stat().st_size - size_before < 20_000  # a line per interval
    assert "Traceback" not in server.log_path.read_text()
    assert server.stop() == 0


def test_a_connection_that_never_finishes_its_headers_is_closed(server: Server) -> None:
    server.restart("--batch-age", "0.2", "--header-timeout", "0.5")
    (sock,) = half_open(server, 1)
    with sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # ...and no blank line
        assert closed_by_server(sock)


# -- A10: a full disk under the WAL --------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    with mount_small_disk(tmp_path / "small") as mount:
        yield mount


def test_a_full_disk_under_the_wal_gives_503_and_recovers_by_itself(
    server: Server, small_disk: Path
) -> None:
    server.stop()
    launch(server, "--batch-age", "0.2", "--wal-dir", str(small_disk / "wal"))
    first = events("northwind", 5, seed=21)
    assert request(server, "/v1/events", ndjson(first), server.token)[0] == 202
    filler = fill(small_disk)
    second = events("contoso", 50, seed=22)
    status, headers, body = request(server, "/v1/events", ndjson(second), server.token)
    assert status == 503 and headers["retry-after"] == "1"
    assert "no space left" in orjson.loads(body)["error"]
    status, answer = health(server)
    assert status == 503 and "no space left" in answer["error"]
    filler.unlink()
    wait_for(lambda: request(server, "/v1/events", ndjson(second), server.token)[0] == 202)
    wait_for(lambda: stored_ids(server) == {e["id"] for e in first + second})
    wait_for(lambda: health(server)[0] == 200)
    assert server.stop() == 0
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


def test_sigterm_returns_while_the_disk_under_the_wal_is_full(
    server: Server, small_disk: Path
) -> None:
    server.stop()
    launch(server, "--batch-age", "600", "--wal-dir", str(small_disk / "wal"))
    pending = events("northwind", 5, seed=23)
    assert request(server, "/v1/events", ndjson(pending), server.token)[0] == 202
    fill(small_disk)
    refused = ndjson(events("contoso", 50, seed=24))
    assert request(server, "/v1/events", refused, server.token)[0] == 503
    # The lake is elsewhere: what was acknowledged commits, though the WAL cannot be
    # trimmed (its records then replay harmlessly), and the process ends.
    assert server.stop() == 0
    assert stored_ids(server) == {e["id"] for e in pending}
