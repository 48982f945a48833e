"""The collector as a real process on 127.0.0.1: statuses, durability, crash safety."""

from __future__ import annotations

import http.client
import random
import signal
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from ingest_testkit import ndjson, wait_for

from ingest.demo import generate
from lake.contract import WIRE_FIELDS
from lake.secrets import TrustStore
from lake.verify import verify_lake

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server


def sample(n_per_day: int = 20, seed: int = 1) -> list[dict[str, Any]]:
    data = generate(
        tenants=("northwind", "contoso"),
        days=1,
        events_per_tenant_per_day=n_per_day,
        seed=seed,
        incidents=False,
    )
    return data.events


def test_events_reach_the_lake_sealed_and_verifiable(server: Server) -> None:
    events = sample()
    status, body = server.post(ndjson(events))
    assert (status, body) == (202, {"accepted": len(events)})
    wait_for(lambda: server.committed() == len(events))
    trusted = TrustStore(server.home).keys()
    report = verify_lake(server.lake, trusted)
    assert report.ok, report.findings
    # JSON arrays work too, and resending the same body duplicates nothing.
    status, _ = server.post(orjson.dumps(events), content_type="application/json")
    assert status == 202
    time.sleep(0.6)
    assert server.committed() == len(events)


def test_bad_requests_get_their_status_and_keep_nothing(server: Server) -> None:
    events = sample(5)
    assert server.post(ndjson(events), token=None)[0] == 401
    assert server.post(ndjson(events), token="alk_not-a-real-token")[0] == 401
    other = dict(events[0], tenant="globex")
    status, body = server.post(ndjson([events[1], other]))
    assert status == 403 and body["errors"][0]["index"] == 1
    bad = dict(events[0], outcome="maybe")
    status, body = server.post(ndjson([events[1], bad]))
    assert status == 400
    assert body["errors"] == [
        {"index": 1, "field": "outcome", "message": body["errors"][0]["message"], "line": 2}
    ]
    status, body = server.post(b'{"tenant": "northwind", oops\n')
    assert status == 400 and body["errors"][0]["index"] == 0
    assert oversized_status(server) == 413
    time.sleep(0.6)
    assert server.committed() == 0


def oversized_status(server: Server) -> int:
    """Declare a 9 MiB body and send only its start: the collector must refuse on the header."""
    conn = server.open_post(9 * 1024 * 1024)
    conn.send(b"{" * 1024)
    status = conn.getresponse().status
    conn.close()
    return status


def test_health_and_metrics(server: Server) -> None:
    server.post(ndjson(sample(5)))
    with urllib.request.urlopen(server.url + "/v1/health") as r:
        health = orjson.loads(r.read())
    assert health["status"] == "ok" and "wal" in health
    wait_for(lambda: server.committed() == 10)
    with urllib.request.urlopen(server.url + "/metrics") as r:
        text = r.read().decode()
    assert "auditlake_events_accepted_total 10.0" in text
    assert "# TYPE auditlake_wal_records gauge" in text


def test_sigterm_commits_everything_pending(server: Server) -> None:
    server.stop()
    server.args = [*server.args[:2], "--batch-age", "600"]  # nothing is due by age
    server.start()
    events = sample(30, seed=4)
    assert server.post(ndjson(events))[0] == 202
    acked_at = datetime.now(UTC)
    assert server.committed() == 0
    time.sleep(0.3)
    assert server.stop() == 0
    assert server.committed() == len(events)
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok
    # received_at is when the request arrived (kept in the WAL), not when it was committed.
    table = server.lake.events_table()
    rows = server.lake.read_rows(server.lake.data_files(table), ["received_at"])
    assert max(rows.column("received_at").to_pylist()) <= acked_at


@pytest.mark.slow
def test_kill_9_loses_nothing_that_was_acknowledged(server: Server) -> None:
    acked: list[str] = []
    stop = threading.Event()
    rng = random.Random(7)

    def client() -> None:
        base = sample(10, seed=9)
        while not stop.is_set():
            batch = [dict(e, id=str(uuid.uuid4())) for e in base]
            try:
                status, _ = server.post(ndjson(batch))
            except (OSError, http.client.HTTPException):
                # Collector down, or killed mid-answer: not acknowledged, so a real client
                # retries (the lake must then hold these events at most once).
                time.sleep(0.02)
                continue
            if status == 202:
                acked.extend(e["id"] for e in batch)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.3, 1.2))
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
            server.start()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert server.stop() == 0
    assert len(acked) > 0
    table = server.lake.events_table()
    rows = server.lake.read_rows(server.lake.data_files(table), ["event_id"])
    stored = rows.column("event_id").to_pylist()
    assert len(stored) == len(set(stored))  # exactly once
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


@pytest.mark.slow
def test_kill_9_during_replay_loses_nothing(server: Server) -> None:
    port_args = server.args[:2]
    server.stop()
    server.args = [*port_args, "--batch-age", "600"]  # build a WAL backlog that is not committed
    server.start()
    acked: list[str] = []
    for seed in range(20):
        batch = [dict(e, id=str(uuid.uuid4())) for e in sample(25, seed=seed)]
        status, _ = server.post(ndjson(batch))
        assert status == 202
        acked.extend(e["id"] for e in batch)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    assert server.committed() == 0
    # Restart: replay puts the backlog back and the batcher starts committing it; kill again.
    server.args = [*port_args, "--batch-age", "0.01", "--batch-events", "100"]
    for delay in (0.0, 0.15, 0.3):
        server.start()
        time.sleep(delay)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server.start()
    wait_for(lambda: server.committed() == len(acked), timeout=60)
    assert server.stop() == 0
    table = server.lake.events_table()
    stored = server.lake.read_rows(server.lake.data_files(table), ["event_id"])
    ids = stored.column("event_id").to_pylist()
    assert sorted(ids) == sorted(acked)  # every acknowledged event, exactly once
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


def test_a_second_collector_on_the_same_wal_is_refused(server: Server) -> None:
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("auditlake"))
    other = subprocess.run(
        [exe, "serve", "--port", "1"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 2
    assert "write-ahead log" in other.stderr and "Traceback" not in other.stderr


def test_a_slow_body_times_out_and_keeps_nothing(server: Server) -> None:
    server.restart("--batch-age", "0.2", "--body-timeout", "0.5")
    conn = server.open_post(10000)
    conn.send(b'{"tenant": "northwind", ')  # ...and then nothing more (slow loris)
    assert conn.getresponse().status == 408
    conn.close()
    # The collector still serves others.
    assert server.post(ndjson(sample(3)))[0] == 202


def test_back_pressure_answers_503_with_retry_after(server: Server) -> None:
    import urllib.error

    server.restart("--batch-age", "600", "--max-pending-events", "10")
    assert server.post(ndjson(sample(10)))[0] == 202  # 20 events now pending
    req = urllib.request.Request(
        server.url + "/v1/events",
        data=ndjson(sample(3, seed=2)),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/x-ndjson"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 503
    assert refused.value.headers["Retry-After"] == "1"
    assert server.stop() == 0  # what was accepted is still committed on the way out
    assert server.committed() == 20


def test_logs_carry_neither_tokens_nor_event_contents(server: Server) -> None:
    marker = "actor-" + uuid.uuid4().hex
    events = [dict(e, actor={"id": marker}) for e in sample(3)]
    assert server.post(ndjson(events))[0] == 202
    assert server.post(ndjson([dict(events[0], outcome="nope")]))[0] == 400
    assert server.post(ndjson(events), token="alk_wrong-" + marker)[0] == 401
    server.stop()
    log = server.log_path.read_text()
    lines = [orjson.loads(line) for line in log.splitlines()]
    assert {"accepted", "rejected", "commit"} <= {line.get("event") for line in lines}
    assert server.token not in log and marker not in log


@pytest.mark.slow
def test_fuzzed_requests_get_a_4xx_or_202_and_never_break_the_collector(server: Server) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    json_value = st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )
    good = sample(5)
    field = st.sampled_from([*WIRE_FIELDS, "extra"])  # every wire field, and an unknown one
    mutated = st.builds(
        lambda base, key, value, drop: {**{k: v for k, v in base.items() if k != drop}, key: value},
        st.sampled_from(good),
        field,
        json_value,
        st.sampled_from([None, "actor", "time"]),
    )

    def any_ndjson(events: list[dict[str, Any]]) -> bytes:
        import json  # unlike orjson, writes integers beyond 64 bits: the collector must cope

        return "\n".join(json.dumps(e) for e in events).encode() + b"\n"

    bodies = st.one_of(
        st.lists(mutated, min_size=1, max_size=4).map(any_ndjson),
        st.binary(max_size=300),
        st.lists(st.sampled_from(good), min_size=1, max_size=3).map(ndjson),
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body: bytes) -> None:
        status, answer = server.post(body)
        assert status in (202, 400, 403, 413), (status, answer)
        if status == 202:
            assert answer["accepted"] == len([b for b in body.split(b"\n") if b.strip()])
        elif status in (400, 403):
            assert answer["errors"] and all(
                {"index", "field", "message"} <= set(e) for e in answer["errors"]
            )

    check()
    with urllib.request.urlopen(server.url + "/v1/health", timeout=5) as r:
        assert r.status == 200
    assert server.stop() == 0
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


def test_a_collector_that_crashed_between_commits_seals_on_start(server: Server) -> None:
    server.stop()
    server.env = {**server.env, "AUDITLAKE_CRASH_AT": "after-events-commit"}
    server.start()
    events = sample(10, seed=6)
    assert server.post(ndjson(events))[0] == 202
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == 86  # died between the events and checkpoint commits
    server.proc = None
    trusted = TrustStore(server.home).keys()
    assert {f.kind for f in verify_lake(server.lake, trusted).findings} == {"unsealed"}
    del server.env["AUDITLAKE_CRASH_AT"]
    server.start()  # no new traffic: start-up alone must complete the seal
    assert verify_lake(server.lake, trusted).ok
    assert server.committed() == len(events)
