"""JetStream in front of the lake: a real nats-server, real `auditlake consume` processes.

Exactly once is checked the hard way: consumers killed mid-batch, a broker killed and
restarted, two consumers on one tenant, and a consumer frozen past its lease that then
commits anyway. Each test has a stream of its own on a shared server.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ingest_testkit import ndjson, wait_for
from jetstream_testkit import (
    AUDITLAKE,
    Consumer,
    LakeHome,
    NatsServer,
    events,
    in_hand,
    in_stream,
    make_lake,
    make_stream,
    publish,
    rejected,
    run_once,
)
from testkit import free_port

from ingest.broker import ARROW_STREAM, Message, Rejection
from ingest.decode import decode
from ingest.ipc import to_ipc
from lake.contract import UTC_US, Issue, validate

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of the test's own, for tests that stop or kill it."""
    server = NatsServer(tmp_path / "nats-store")
    server.start()
    yield server
    if server.proc is not None:
        server.stop()


@pytest.fixture
def stream() -> str:
    return "T" + uuid.uuid4().hex[:10].upper()


@pytest.fixture
def lh(tmp_path: Path) -> LakeHome:
    return make_lake(tmp_path)


def messages_of(
    stream: str, evs: list[dict[str, Any]], per_message: int
) -> list[tuple[str, bytes, dict[str, str]]]:
    """NDJSON messages of `per_message` events, each on its tenant's subject."""
    out: list[tuple[str, bytes, dict[str, str]]] = []
    for tenant in sorted({e["tenant"] for e in evs}):
        mine = [e for e in evs if e["tenant"] == tenant]
        for i in range(0, len(mine), per_message):
            out.append((f"{stream.lower()}.{tenant}", ndjson(mine[i : i + per_message]), {}))
    return out


def without_ids(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "id"} for e in evs]


# -- decoding, in-process ---------------------------------------------------------------------


def msg(subject: str, data: bytes, position: int, **headers: str) -> Message:
    tenant = subject.split(".", 1)[1]
    return Message(subject, tenant, position, data, headers, datetime(2026, 3, 1, tzinfo=UTC))


def test_a_redelivered_message_gets_the_same_ids_and_a_repeat_is_kept_once() -> None:
    evs = events(["acme"], 6, seed=1)
    body = ndjson(without_ids(evs[:3]))
    first = decode([msg("audit.acme", body, 7)], "src")
    again = decode([msg("audit.acme", body, 7)], "src")
    elsewhere = decode([msg("audit.acme", body, 8)], "src")
    ids = first.events.column("event_id").to_pylist()
    assert ids == again.events.column("event_id").to_pylist() and len(set(ids)) == 3
    # The same id-less events in another message: the same ids (from content, #17 B11).
    assert ids == elsewhere.events.column("event_id").to_pylist()
    # Events with ids keep them; the same event in two messages of a batch is kept once.
    with_ids = ndjson(evs[3:])
    both = decode([msg("audit.acme", with_ids, 9), msg("audit.acme", with_ids, 10)], "src")
    assert both.events.column("event_id").to_pylist() == [e["id"] for e in evs[3:]]
    assert both.repeats == 3 and not both.rejected
    # JSON events are stamped with the broker's time; Arrow events keep their own.
    assert set(first.events.column("received_at").to_pylist()) == {datetime(2026, 3, 1, tzinfo=UTC)}
    table = validate(evs, namespace=b"x").table
    stamp = pa.scalar(datetime(2026, 1, 2, tzinfo=UTC), UTC_US)
    arrow = to_ipc(table.append_column("received_at", pa.repeat(stamp, table.num_rows)))
    got = decode([msg("audit.acme", arrow, 11, **{"Content-Type": ARROW_STREAM})], "src")
    assert got.events.num_rows == 6 and not got.rejected
    assert set(got.events.column("received_at").to_pylist()) == {stamp.as_py()}


def test_each_message_is_all_or_nothing_and_every_reason_is_named() -> None:
    evs = events(["acme", "globex"], 2, seed=2)
    acme = [e for e in evs if e["tenant"] == "acme"]
    globex = [e for e in evs if e["tenant"] == "globex"]
    table = validate(acme, namespace=b"x").table
    table = table.set_column(
        table.schema.get_field_index("event_date"),
        "event_date",
        pa.array([date(2001, 1, 1)] * table.num_rows, pa.date32()),
    )
    arrow_with_wrong_day = to_ipc(table)
    batch = [
        msg("audit.acme", ndjson(acme), 1),
        msg("audit.acme", ndjson([acme[0], dict(acme[1], outcome="maybe")]), 2),
        msg("audit.acme", ndjson(globex), 3),  # another tenant's events
        msg("audit.acme", ndjson([acme[0], dict(acme[1], id=acme[0]["id"])]), 4),
        msg("audit.Acme", ndjson(acme), 5),
        msg("audit.acme", b"\xff\xff\xff\xffnot arrow", 6),
        msg("audit.acme", b"", 7),
        msg("audit.auditlake", ndjson(acme), 8),  # the read audit's reserved tenant
        msg("audit.acme", arrow_with_wrong_day, 9, **{"Content-Type": ARROW_STREAM}),
    ]
    got = decode(batch, "src")
    assert got.events.num_rows == 2
    reasons = {m.position: [(i.index, i.field) for i in issues] for m, issues in got.rejected}
    assert reasons == {
        2: [(1, "outcome")],
        3: [(0, "tenant"), (1, "tenant")],
        4: [(1, "id")],
        5: [(0, "(subject)")],
        6: [(0, "(message)")],
        7: [(0, "(message)")],
        8: [(0, "(subject)")],
        9: [(0, "event_date"), (1, "event_date")],
    }


# -- the source, in-process ------------------------------------------------------------------


async def _steal_one(url: str, stream: str, consumer: str) -> int:
    import nats

    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(consumer, stream=stream)
        (stolen,) = await sub.fetch(1, timeout=5)
        return int(stolen.metadata.sequence.stream)
    finally:
        await nc.close()


def test_a_delivery_that_never_arrives_makes_the_source_start_the_tenant_over(
    nats_server: NatsServer, stream: str
) -> None:
    import asyncio

    from ingest.jetstream import JetStreamSource

    subject = f"{stream.lower()}.acme"
    source = JetStreamSource(nats_server.url, stream, lease_ttl_s=5)
    try:
        seqs = publish(nats_server.url, [(subject, b"{}", {}) for _ in range(3)])
        assert source.rebalance(None) == ({"acme"}, set())
        # The first delivery goes astray (as in-flight messages do when a connection drops).
        consumer = source._claims["acme"].consumer
        assert asyncio.run(_steal_one(nats_server.url, stream, consumer)) == seqs[0]
        # Later messages arrive, but must not be committed before the lost one: nothing
        # is handed out, and the tenant is no longer held.
        assert source.fetch(10, 1.0) == [] and not source.holds("acme")
        # Taken again, the tenant starts from its oldest unacknowledged message, in order.
        assert source.rebalance(None) == ({"acme"}, {"acme"})
        got = source.fetch(10, 1.0)
        assert [m.position for m in got] == seqs
        source.ack(got)
        wait_for(lambda: source.drained(None))
    finally:
        source.close()


# -- end to end ---------------------------------------------------------------------------


def test_published_events_reach_the_lake_once_sealed_and_verifiable(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    make_stream(nats_server.url, stream)
    evs = events(["northwind", "contoso"], 30, seed=3)
    north = [e for e in evs if e["tenant"] == "northwind"]
    with_ids = north[:20] + [e for e in evs if e["tenant"] == "contoso"]
    items = messages_of(stream, with_ids, per_message=10)
    rest = without_ids(north[20:])
    subject = f"{stream.lower()}.northwind"
    items.append((subject, orjson.dumps(rest[:5]), {}))  # a JSON array
    items.append((subject, orjson.dumps(rest[5], option=orjson.OPT_INDENT_2), {}))  # an object
    items += messages_of(stream, rest[6:], per_message=3)
    publish(nats_server.url, items)

    totals = run_once(nats_server.url, stream, lh.env, tmp_path / "c.log")

    assert totals["appended"] == len(evs) and totals["rejected"] == 0
    ids = lh.stored_ids()
    assert len(ids) == len(set(ids)) == len(evs)
    assert {e["id"] for e in with_ids} <= set(ids)
    assert lh.verify_ok()
    assert in_stream(nats_server.url, stream) == 0  # every message acknowledged
    # The same events published again are recognised by their ids.
    publish(nats_server.url, messages_of(stream, with_ids, per_message=10))
    again = run_once(nats_server.url, stream, lh.env, tmp_path / "c.log")
    assert again["appended"] == 0 and again["duplicates"] == len(with_ids)
    assert len(lh.stored_ids()) == len(evs)


def test_invalid_messages_land_in_the_rejection_subject_with_their_reasons(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    make_stream(nats_server.url, stream)
    marker = "actor-" + uuid.uuid4().hex
    evs = [dict(e, actor={"id": marker}) for e in events(["acme"], 3, seed=4)]
    subject = f"{stream.lower()}.acme"
    bad_event = ndjson([evs[0], dict(evs[1], outcome="maybe")])
    items: list[tuple[str, bytes, dict[str, str]]] = [
        (subject, ndjson(evs), {}),
        (subject, bad_event, {}),
        (subject, b'{"tenant": "acme", oops\n', {}),
        (f"{stream.lower()}.Not_A_Tenant", ndjson(evs), {}),
    ]
    publish(nats_server.url, items)

    totals = run_once(nats_server.url, stream, lh.env, tmp_path / "c.log")

    assert (totals["appended"], totals["rejected"]) == (3, 3)
    found = [(s, d, Rejection.from_headers(h)) for s, d, h in rejected(nats_server.url, stream)]
    kept = {r.position: (s, d, r) for s, d, r in found}
    assert len(kept) == 3
    subject_, data, why = kept[2]
    assert subject_ == f"{stream.lower()}_rejected.acme" and data == bad_event
    assert why.subject == subject and why.error_count == 1
    assert [(i.index, i.field, i.line) for i in why.issues] == [(1, "outcome", 2)]
    assert kept[3][2].issues[0].field == "(event)"
    assert kept[4][2].issues[0].field == "(subject)"
    assert in_stream(nats_server.url, stream) == 0  # acknowledged once kept
    log = (tmp_path / "c.log").read_text()
    assert '"event":"rejected"' in log and marker not in log
    assert lh.verify_ok()


def test_sigterm_commits_the_batch_in_hand(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    url = nats_server.url
    make_stream(url, stream)
    evs = events(["acme"], 40, seed=10)
    publish(url, messages_of(stream, evs, per_message=4))
    consumer = Consumer(url, stream, lh.env, tmp_path / "c.log").start("--batch-age", "600")
    wait_for(lambda: in_hand(url, stream) == 10)  # fetched, and not due for ten minutes
    rc, totals = consumer.stop()
    assert rc == 0 and totals["appended"] == len(evs)
    assert in_stream(url, stream) == 0
    exactly_once(lh, len(evs))


async def _limits_stream(url: str, stream: str) -> None:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    finally:
        await nc.close()


def test_cli_errors_are_one_line_and_never_show_credentials(
    nats_server: NatsServer, stream: str, lh: LakeHome
) -> None:
    import asyncio

    asyncio.run(_limits_stream(nats_server.url, stream))  # not a work queue: unusable
    closed = f"nats://alice:s3cret@127.0.0.1:{free_port()}"
    for args in (
        ["consume", "--nats", nats_server.url, "--stream", stream, "--once"],
        ["consume", "--stream", "no spaces", "--once"],
        ["consume", "--nats", closed, "--once"],
        ["serve", "--port", str(free_port()), "--forward-to-nats", closed],
    ):
        proc = subprocess.run(
            [AUDITLAKE, *args], env=lh.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("auditlake: "), proc.stderr
        assert "s3cret" not in proc.stderr and "Traceback" not in proc.stderr
        if args[2] == nats_server.url:
            assert "exists with retention limits" in lines[0]
    assert "cannot use NATS at nats://***@127.0.0.1" in lines[0]


# -- crashes ------------------------------------------------------------------------------


class Producer(threading.Thread):
    """Publishes NDJSON messages (half of them without ids) until stopped, retrying
    through broker outages; remembers how many events each tenant got."""

    def __init__(self, url: str, stream: str, tenants: list[str], seed: int) -> None:
        super().__init__(daemon=True)
        self.url, self.stream, self.tenants = url, stream, tenants
        self.rng = random.Random(seed)
        self.sent: dict[str, int] = {t: 0 for t in tenants}
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            evs = events(self.tenants, 5, seed=1000 + n)
            evs = without_ids(evs) if n % 2 else [dict(e, id=str(uuid.uuid4())) for e in evs]
            items = messages_of(self.stream, evs, per_message=self.rng.choice([1, 5]))
            for item in items:
                while True:
                    try:
                        publish(self.url, [item])
                        break
                    except Exception:  # noqa: BLE001 - the broker is down: retry, as a producer would
                        time.sleep(0.1)
                tenant = item[0].split(".", 1)[1]
                self.sent[tenant] += len(item[1].splitlines())
            time.sleep(0.02)

    def finish(self) -> int:
        self.halt.set()
        self.join(timeout=60)
        return sum(self.sent.values())


def exactly_once(lh: LakeHome, expected: int) -> None:
    ids = lh.stored_ids()
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert len(ids) == expected, f"{expected - len(ids)} events lost"
    assert lh.verify_ok()


@pytest.mark.slow
def test_consumer_killed_mid_batch_neither_loses_nor_doubles_an_event(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    make_stream(nats_server.url, stream)
    url = nats_server.url
    consumer = Consumer(url, stream, lh.env, tmp_path / "c.log")
    producer = Producer(url, stream, ["northwind", "contoso"], seed=5)
    producer.start()
    wait_for(lambda: sum(producer.sent.values()) > 50)
    # Killed between the lake commit and the acknowledgement: the next holder gets the
    # same messages again and must skip them by the position recorded in the lake.
    consumer.start(env={**lh.env, "AUDITLAKE_CRASH_AT": "after-events-commit"})
    assert consumer.wait()[0] == 86
    rng = random.Random(5)
    for _ in range(3):
        consumer.start()
        time.sleep(rng.uniform(2.0, 4.0))
        assert consumer.stop(signal.SIGKILL)[0] == -signal.SIGKILL
    sent = producer.finish()
    consumer.start()
    wait_for(lambda: in_stream(url, stream) == 0, timeout=60)
    assert consumer.stop()[0] == 0
    exactly_once(lh, sent)
    commits = [line for line in consumer.log() if line.get("event") == "commit"]
    assert sum(c["skipped"] for c in commits) > 0  # the recorded position was used


@pytest.mark.slow
def test_a_broker_killed_and_restarted_loses_nothing(
    own_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    url = own_server.url
    make_stream(url, stream)
    consumer = Consumer(url, stream, lh.env, tmp_path / "c.log").start()
    producer = Producer(url, stream, ["northwind"], seed=6)
    producer.start()
    wait_for(lambda: any(line.get("event") == "commit" for line in consumer.log()))
    own_server.stop(signal.SIGKILL)
    time.sleep(1.0)
    own_server.start()  # same port, same store
    wait_for(lambda: producer.sent["northwind"] > 150, timeout=60)
    sent = producer.finish()
    wait_for(lambda: in_stream(url, stream) == 0, timeout=60)
    assert consumer.stop()[0] == 0
    exactly_once(lh, sent)
    assert any(line.get("event") == "broker_reconnected" for line in consumer.log())


def claimed(consumer: Consumer) -> set[str]:
    """Tenants the consumer holds now, from its log."""
    held: set[str] = set()
    for line in consumer.log():
        if line.get("event") == "claimed":
            held.add(line["tenant"])
        elif line.get("event") == "released":
            held.discard(line["tenant"])
    return held


@pytest.mark.slow
def test_two_consumers_share_the_tenants_and_take_over_from_each_other(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    url = nats_server.url
    make_stream(url, stream)
    producer = Producer(url, stream, ["northwind", "contoso"], seed=7)
    producer.start()
    a = Consumer(url, stream, lh.env, tmp_path / "a.log").start()
    wait_for(lambda: len(claimed(a)) == 2)
    # B joins: A gives up its surplus between two batches, and B takes it.
    b = Consumer(url, stream, lh.env, tmp_path / "b.log").start()
    wait_for(lambda: len(claimed(a)) == len(claimed(b)) == 1)
    assert claimed(a) | claimed(b) == {"northwind", "contoso"}
    # A dies holding a tenant: B takes it over once A's lease runs out.
    assert a.stop(signal.SIGKILL)[0] == -signal.SIGKILL
    wait_for(lambda: len(claimed(b)) == 2)
    sent = producer.finish()
    wait_for(lambda: in_stream(url, stream) == 0, timeout=60)
    assert b.stop()[0] == 0
    exactly_once(lh, sent)


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("T")


@pytest.mark.slow
def test_a_consumer_frozen_past_its_lease_cannot_fork_the_log(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    url = nats_server.url
    make_stream(url, stream)
    evs = without_ids(events(["northwind"], 60, seed=8))
    publish(url, messages_of(stream, evs, per_message=6))
    # A takes the lease and a batch, then freezes after its last lease check, before
    # committing (a GC pause, a stalled VM). Its lease runs out; B takes the tenant.
    a = Consumer(url, stream, lh.env, tmp_path / "a.log")
    a.start(env={**lh.env, "AUDITLAKE_PAUSE_AT": "consume-before-commit"})
    assert a.proc is not None
    pid = a.proc.pid
    wait_for(lambda: stopped(pid))
    b = run_once(url, stream, lh.env, tmp_path / "b.log")
    assert b["appended"] == len(evs)
    # A wakes up and commits the batch it holds: the lake takes nothing twice.
    os.kill(a.proc.pid, signal.SIGCONT)
    wait_for(lambda: any(line.get("event") == "commit" for line in a.log()))
    assert a.stop()[0] == 0
    commit = next(line for line in a.log() if line.get("event") == "commit")
    assert commit["events"] == 0 and commit["duplicates"] > 0
    exactly_once(lh, len(evs))


# -- the collector's forwarding mode --------------------------------------------------------


@pytest.mark.slow
def test_the_collector_forwards_to_jetstream_and_answers_503_without_it(
    server: Server, own_server: NatsServer, stream: str, tmp_path: Path
) -> None:
    url = own_server.url
    server.restart("--forward-to-nats", url, "--forward-stream", stream)
    evs = events(["northwind", "contoso"], 20, seed=9)
    assert server.post(ndjson(evs)) == (202, {"accepted": len(evs)})
    assert server.post(ndjson(evs))[0] == 202  # a client's retry
    assert server.committed() == 0  # nothing goes to the lake from here
    lh = LakeHome(server.lake, server.home, server.env)
    totals = run_once(url, stream, server.env, tmp_path / "c.log")
    assert totals["appended"] == len(evs)
    exactly_once(lh, len(evs))
    own_server.stop()
    req = urllib.request.Request(
        server.url + "/v1/events",
        data=ndjson(evs[:2]),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/x-ndjson"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"


def test_an_id_reused_on_another_date_is_rejected_with_its_message(
    nats_server: NatsServer, stream: str, lh: LakeHome, tmp_path: Path
) -> None:
    """An id is the tenant's once, whatever the date: a second event under it goes to the
    rejection subject (field `id`) with its message, whose other events are appended."""
    url = nats_server.url
    make_stream(url, stream)
    subject = f"{stream.lower()}.acme"
    first = dict(events(["acme"], 1, seed=12)[0], id="dup-1", time="2026-03-02T10:00:00Z")
    publish(url, [(subject, ndjson([first]), {})])
    assert run_once(url, stream, lh.env, tmp_path / "c1.log")["appended"] == 1
    reused = dict(first, time="2026-03-05T10:00:00Z")
    other = dict(first, id="new-1", time="2026-03-05T11:00:00Z")
    retry = ndjson([first])  # the same event again: a retry, not a conflict
    publish(url, [(subject, ndjson([other, reused]), {}), (subject, retry, {})])

    totals = run_once(url, stream, lh.env, tmp_path / "c2.log")

    assert (totals["appended"], totals["conflicts"], totals["duplicates"]) == (1, 1, 1)
    assert sorted(lh.stored_ids()) == ["dup-1", "new-1"]
    kept = rejected(url, stream)
    assert len(kept) == 1
    _, data, headers = kept[0]
    assert data == ndjson([other, reused])
    assert Rejection.from_headers(headers).issues == [
        Issue(1, "id", "id already used by another event of this tenant")
    ]
    assert in_stream(url, stream) == 0
    assert lh.verify_ok()


def test_an_arrow_event_the_lake_cannot_hold_rejects_its_message() -> None:
    """A time past year 9999 from an Arrow producer is named, not retried for ever."""
    table = validate(events(["acme"], 2, seed=13), namespace=b"x").table
    times = pa.array([1_772_359_200_000_000, 2**62], pa.int64()).cast(UTC_US)
    table = table.set_column(table.schema.get_field_index("time"), "time", times)
    day = pc.cast(times, pa.date32())
    table = table.set_column(table.schema.get_field_index("event_date"), "event_date", day)
    stamp = pa.scalar(datetime(2026, 1, 2, tzinfo=UTC), UTC_US)
    arrow = to_ipc(table.append_column("received_at", pa.repeat(stamp, 2)))
    got = decode([msg("audit.acme", arrow, 1, **{"Content-Type": ARROW_STREAM})], "src")
    assert got.events.num_rows == 0
    [(_, issues)] = got.rejected
    assert [(i.index, i.field) for i in issues] == [(1, "time")]
