"""The SDK against a real collector process: delivery, spooling, resends, rejections."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from ingest_testkit import wait_for

from ingest.sdk import (
    AuditClient,
    DirectWriter,
    InvalidEventError,
    format_time,
    uuid7,
    write_direct,
)
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake
from lake.verify import verify_lake

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def wait_stored(server: Server, n: int) -> None:
    wait_for(lambda: server.committed() == n)  # committed() counts sealed events


def assert_stored(server: Server, ids: list[str]) -> None:
    """Wait until the lake holds as many events as `ids`, then check they are those."""
    wait_stored(server, len(ids))
    assert sorted(stored_ids(server.lake)) == sorted(ids)


def stored_ids(lake: Lake) -> list[str]:
    table = lake.events_table()
    rows = lake.read_rows(lake.data_files(table), ["event_id"])
    return [str(i) for i in rows.column("event_id").to_pylist()]


def stored_rows(lake: Lake) -> dict[str, dict[str, Any]]:
    table = lake.events_table()
    rows = lake.read_rows(lake.data_files(table)).to_pylist()
    return {r["event_id"]: r for r in rows}


def spool_files(spool: Path) -> list[Path]:
    return sorted(p for p in spool.iterdir() if p.suffix == ".ndjson")


def event(tenant: str = "northwind", **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "time": format_time(),
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user", "ip": "192.0.2.1"},
        **extra,
    }


def client(server: Server, spool: Path, **options: Any) -> AuditClient:
    options.setdefault("flush_interval_s", 0.05)
    return AuditClient(server.url, server.token, spool_dir=spool, **options)


def unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_uuid7_and_time_format() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert all(UUID7.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    # The leading 48 bits are the Unix time in milliseconds.
    ms = int(ids[0].replace("-", "")[:12], 16)
    assert abs(ms - time.time() * 1000) < 60_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", format_time())
    plus2 = datetime(2024, 5, 1, 12, 0, 0, 7, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert format_time(plus2) == "2024-05-01T12:00:00.000007Z"


def test_sdk_to_collector_to_lake_verifies(server: Server, tmp_path: Path) -> None:
    with client(server, tmp_path / "spool", source="auth-service") as c:
        ids = {
            "login": c.login("northwind", "alice", outcome="failure", ip="192.0.2.7", mfa="totp"),
            "admin": c.admin_action(
                "contoso", "root", "role.grant", target_type="user", target_id="bob"
            ),
            "key": c.key_change("northwind", "svc-kms", "key.rotate", "k-42", severity="high"),
            "flag": c.flag_change("contoso", "carol", "new-billing", old=False, new=True),
            "recovery": c.recovery_attempt("northwind", "dave", outcome="failure"),
            "generic": c.log(event("contoso", action="logout")),
        }
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert (stats.sent, stats.rejected, stats.dropped, stats.queued) == (6, 0, 0, 0)
    assert all(UUID7.fullmatch(i) for i in ids.values())
    wait_stored(server, 6)
    rows = stored_rows(server.lake)
    assert set(rows) == set(ids.values())
    login = rows[ids["login"]]
    assert (login["category"], login["action"], login["outcome"]) == (
        "authentication",
        "login",
        "failure",
    )
    assert (login["actor_ip"], login["source"]) == ("192.0.2.7", "auth-service")
    assert orjson.loads(login["details"]) == {"mfa": "totp"}
    flag = rows[ids["flag"]]
    assert (flag["category"], flag["target_type"], flag["target_id"]) == (
        "flag_change",
        "flag",
        "new-billing",
    )
    assert orjson.loads(flag["details"]) == {"new": True, "old": False}
    key = rows[ids["key"]]
    assert (key["action"], key["target_id"], key["severity"]) == ("key.rotate", "k-42", "high")
    assert rows[ids["admin"]]["actor_type"] == "admin"
    assert rows[ids["recovery"]]["action"] == "recovery.request"
    report = verify_lake(server.lake, TrustStore(server.home).keys())
    assert report.ok, report.findings


@pytest.mark.slow
def test_collector_down_spools_then_delivers_each_event_once(
    server: Server, tmp_path: Path
) -> None:
    server.stop()
    spool = tmp_path / "spool"
    n = 120
    with client(server, spool, batch_size=50) as c:
        ids = [c.login("northwind", f"user-{i}", outcome="success") for i in range(n)]
        # log() only queued them; nothing waited for the (absent) collector.
        assert c.stats().sent == 0
        assert c.flush(timeout_s=30)  # True: everything is safely on disk
        stats = c.stats()
        assert (stats.sent, stats.queued, stats.dropped) == (0, 0, 0)
        assert stats.retries >= 1 and stats.last_error
        files = spool_files(spool)
        assert len(files) == stats.spooled_files >= 3  # one file per batch of ≤ 50
        assert sum(f.stat().st_size for f in files) == stats.spooled_bytes
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        spooled = [orjson.loads(line)["id"] for f in files for line in f.read_bytes().splitlines()]
        assert sorted(spooled) == sorted(ids)

        server.start()
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert (stats.sent, stats.spooled_files, stats.spooled_bytes) == (n, 0, 0)
        assert spool_files(spool) == []
    wait_stored(server, n)
    stored = stored_ids(server.lake)
    assert sorted(stored) == sorted(ids)  # all of them, each exactly once
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


@pytest.mark.slow
def test_a_spool_file_sent_twice_is_stored_once(server: Server, tmp_path: Path) -> None:
    """A lost acknowledgement: the batch landed, but its spool file was sent again."""
    server.stop()
    spool = tmp_path / "spool"
    copies = tmp_path / "copies"
    copies.mkdir()
    with client(server, spool) as c:
        ids = [
            c.admin_action("contoso", "root", "user.delete", target_id=f"u{i}") for i in range(20)
        ]
        assert c.flush(timeout_s=30)
        files = spool_files(spool)
        assert files
        for f in files:
            shutil.copy2(f, copies / f.name)
        server.start()
        assert c.flush(timeout_s=30)
        assert c.stats().sent == 20 and spool_files(spool) == []
        wait_stored(server, 20)
        # The client never saw the 202: the same file is still there and goes out again.
        for f in copies.iterdir():
            shutil.copy2(f, spool / f.name)
        assert c.flush(timeout_s=30)
        assert c.stats().sent == 40 and spool_files(spool) == []
    server.stop()  # SIGTERM commits everything the collector accepted
    stored = stored_ids(server.lake)
    assert sorted(stored) == sorted(ids)
    assert verify_lake(server.lake, TrustStore(server.home).keys()).ok


def test_forbidden_tenant_is_rejected_once_and_the_rest_delivered(
    server: Server, tmp_path: Path
) -> None:
    with client(server, tmp_path / "spool", flush_interval_s=5) as c:
        good = c.log(event("northwind"))
        c.log(event("globex"))  # well-formed, but the token may not write globex
        also_good = c.log(event("contoso"))
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert (stats.sent, stats.rejected, stats.retries, stats.spooled_files) == (2, 1, 0, 0)
        assert "403" in (stats.last_error or "")
        # Not retried: more flushes send nothing and the counters stay put.
        assert c.flush(timeout_s=30)
        assert c.stats().rejected == 1 and c.stats().sent == 2
        # A 400 names its event too: only the second use of an id in one batch is dropped.
        again = event("northwind", id=uuid7())
        assert c.log(again) == c.log(again)
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert (stats.sent, stats.rejected, stats.retries) == (3, 2, 0)
        assert "400" in (stats.last_error or "")
    assert_stored(server, [good, also_good, again["id"]])


def test_invalid_events_raise_at_log_time_and_are_not_queued(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with AuditClient(unused_url(), "alk_x", spool_dir=spool, flush_interval_s=0.05) as c:
        cases: list[tuple[Callable[[], str], str]] = [
            (lambda: c.log(event(outcome="maybe")), "outcome"),
            (lambda: c.log(event(colour="blue")), "colour"),
            (lambda: c.log({k: v for k, v in event().items() if k != "actor"}), "actor"),
            (lambda: c.log(event(tenant="Not A Tenant")), "tenant"),
            (lambda: c.log(event(time="yesterday")), "time"),
            (lambda: c.login("northwind", "", outcome="success"), "actor.id"),
            (lambda: c.admin_action("northwind", "root", "Role Grant!"), "action"),
            (
                lambda: c.login("northwind", "a", outcome="success", time=datetime(2024, 1, 1)),
                "time",
            ),
            (lambda: c.flag_change("northwind", "a", "f", details={"x": 2**70}), "details"),
        ]
        for call, field in cases:
            with pytest.raises(ValueError, match=re.escape(field)) as info:
                call()
            assert isinstance(info.value, InvalidEventError)
            assert any(i.field.startswith(field) for i in info.value.issues)
        stats = c.stats()
        assert (stats.queued, stats.spooled_files, stats.sent, stats.retries) == (0, 0, 0, 0)


def test_unauthorised_keeps_events_until_the_token_is_fixed(server: Server, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with AuditClient(server.url, "alk_revoked", spool_dir=spool, flush_interval_s=0.05) as c:
        ids = [c.key_change("northwind", "ops", "key.revoke", f"k{i}") for i in range(5)]
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert stats.unauthorised >= 1 and stats.sent == 0 and stats.rejected == 0
        assert stats.spooled_files >= 1 and "401" in (stats.last_error or "")
        c.set_token(server.token)  # the rotated token
        assert c.flush(timeout_s=30)
        assert c.stats().sent == 5 and c.stats().spooled_files == 0
    assert_stored(server, ids)


@pytest.mark.slow
def test_close_leaves_events_spooled_for_the_next_client(server: Server, tmp_path: Path) -> None:
    server.stop()
    spool = tmp_path / "spool"
    first = client(server, spool, flush_interval_s=60)
    ids = [first.recovery_attempt("contoso", f"user-{i}", outcome="failure") for i in range(30)]
    assert first.close(timeout_s=30)
    assert first.stats().spooled_files >= 1 and first.stats().queued == 0
    # A straggler after close goes to the spool too, rather than being lost.
    ids.append(first.log(event("contoso")))
    lines = [line for f in spool_files(spool) for line in f.read_bytes().splitlines()]
    assert sorted(orjson.loads(line)["id"] for line in lines) == sorted(ids)

    server.start()
    with client(server, spool) as second:  # drains the spool on start
        wait_for(lambda: second.stats().sent == 31)
        assert spool_files(spool) == []
    assert_stored(server, ids)


@pytest.mark.slow
def test_full_queue_and_spool_drop_new_events_and_count_them(
    server: Server, tmp_path: Path
) -> None:
    server.stop()
    spool = tmp_path / "spool"
    size = len(orjson.dumps(event())) + 60  # a line with its id
    options = {"batch_size": 5, "max_queue": 10, "max_spool_bytes": 12 * size}
    with client(server, spool, flush_interval_s=60, **options) as c:
        ids = [c.log(event()) for _ in range(40)]  # never raises, never waits
        stats = c.stats()
        assert stats.dropped > 0
        assert stats.queued <= 10 and stats.spooled_bytes <= 12 * size
        server.start()
        c.flush(timeout_s=30)
        stats = c.stats()
        assert stats.sent + stats.dropped == 40 and stats.rejected == 0
        sent = stats.sent
    wait_stored(server, sent)
    stored = stored_ids(server.lake)
    assert len(stored) == len(set(stored)) and set(stored) <= set(ids)


@pytest.mark.slow
def test_oversized_batches_are_split_and_a_too_large_event_rejected(
    server: Server, tmp_path: Path
) -> None:
    server.stop()
    server.args = [*server.args, "--max-body", "4096"]
    server.start()
    with client(server, tmp_path / "spool", batch_size=60, flush_interval_s=5) as c:
        ids = [c.login("northwind", f"user-{i}", outcome="success") for i in range(60)]
        c.log(event(details={"blob": "x" * 5000}))  # fits the wire limit, not the body limit
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert (stats.sent, stats.rejected, stats.spooled_files) == (60, 1, 0)
    assert_stored(server, ids)


@pytest.mark.slow
def test_503_while_the_lake_is_unavailable_is_retried_on_its_own(
    server: Server, tmp_path: Path
) -> None:
    """The collector answers 503 + Retry-After while it cannot commit; the SDK waits it out."""
    events_dir = Path(server.lake.root) / "events"
    away = events_dir.with_name("events.away")

    def health() -> int:
        try:
            with urllib.request.urlopen(server.url + "/v1/health", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    with client(server, tmp_path / "spool") as c:
        events_dir.rename(away)  # storage outage: commits fail
        first = c.log(event())
        assert c.flush(timeout_s=30) and c.stats().sent == 1  # durable in the WAL
        wait_for(lambda: health() == 503)
        second = c.log(event("contoso"))
        assert c.flush(timeout_s=30)
        stats = c.stats()
        assert stats.sent == 1 and stats.retries >= 1 and stats.spooled_files == 1
        assert "503" in (stats.last_error or "")
        away.rename(events_dir)
        wait_for(lambda: c.stats().sent == 2)  # no flush: the backoff retry does it
    assert_stored(server, [first, second])


def test_direct_writer_appends_signed_batches_without_a_collector(tmp_path: Path) -> None:
    signer = KeyStore(tmp_path / "home").generate("batch")
    lake = Lake.init(tmp_path / "lake", "jobs", signer.verifier_key.encode())
    with DirectWriter(lake.root, signer, source="nightly-job") as w:
        a = w.login("northwind", "alice", outcome="success")
        b = w.flag_change("contoso", "ops", "dark-mode", old="off", new="on")
        with pytest.raises(ValueError, match="outcome"):
            w.log(event(outcome="maybe"))
    assert sorted(stored_ids(lake)) == sorted([a, b])
    assert verify_lake(lake, [signer.verifier_key]).ok

    # write_direct: ids derived from the input, so running the same job twice stores it once.
    batch = [
        event("contoso", action="logout", time="2024-03-01T10:00:00Z"),
        event("northwind", time="2024-03-01T10:00:01+02:00"),
    ]
    first = write_direct(lake.root, batch, signer)
    again = write_direct(lake.root, batch, signer)
    assert (first.appended, again.appended, again.duplicates) == (2, 0, 2)
    with pytest.raises(InvalidEventError, match="tenant"):
        write_direct(lake.root, [event(tenant="Globex Corp")], signer)
    assert len(stored_ids(lake)) == 4
    assert verify_lake(lake, [signer.verifier_key]).ok


def test_a_client_made_before_a_fork_delivers_from_the_child(
    server: Server, tmp_path: Path
) -> None:
    """Pre-forking servers create the client once, then fork workers that log."""
    with client(server, tmp_path / "spool") as c:
        parent = c.log(event())
        assert c.flush(timeout_s=30)
        out = tmp_path / "child-id"
        pid = os.fork()
        if pid == 0:  # the child: its sender thread was restarted by the at-fork hook
            code = 1
            try:
                out.write_text(c.log(event("contoso")))
                code = 0 if c.flush(timeout_s=20) and c.stats().sent == 2 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert_stored(server, [parent, out.read_text()])
