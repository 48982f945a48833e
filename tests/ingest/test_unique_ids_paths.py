"""One id, two UTC dates, through the file ingest and a real collector: stored once.

(JetStream's case is in test_jetstream.py, beside its server.) The second event under a
used id is another event, not a retry: `ingest` refuses it naming the event, the
collector, which acknowledged it already, leaves it out, logs it, and keeps committing.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from ingest_testkit import ndjson, wait_for
from jetstream_testkit import AUDITLAKE, LakeHome, make_lake
from testkit import login_event

from lake.storage import Lake

if TYPE_CHECKING:  # the fixture's type; see tests/ingest/conftest.py
    from conftest import Server


def event(event_id: str, time: str) -> dict[str, Any]:
    return login_event(event_id, time, "northwind")


def stored(lake: Lake) -> list[tuple[str, str]]:
    """(event_id, UTC date) of every stored event, sorted."""
    rows = lake.read_rows(lake.data_files(lake.events_table()), ["event_id", "event_date"])
    ids = rows.column("event_id").to_pylist()
    days = [str(d) for d in rows.column("event_date").to_pylist()]
    return sorted(zip(ids, days, strict=True))


def ingest(lh: LakeHome, src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUDITLAKE, "ingest", str(src), "--output-format", "json"],
        env=lh.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_file_ingest_refuses_an_id_the_tenant_used_on_another_date(tmp_path: Path) -> None:
    lh = make_lake(tmp_path)
    first, second = tmp_path / "monday.jsonl", tmp_path / "thursday.jsonl"
    first.write_bytes(
        ndjson([event("dup-1", "2026-03-02T10:00:00Z"), event("x-1", "2026-03-02T11:00:00Z")])
    )
    second.write_bytes(
        ndjson([event("y-1", "2026-03-05T09:00:00Z"), event("dup-1", "2026-03-05T10:00:00Z")])
    )
    assert ingest(lh, first).returncode == 0
    refused = ingest(lh, second)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    reason = "event 1: id: id already used by another event of this tenant"
    assert f"{second}: {reason}" in refused.stderr
    assert stored(lh.lake) == [("dup-1", "2026-03-02"), ("x-1", "2026-03-02")]
    # The first file again is a retry: nothing appended, no error.
    again = ingest(lh, first)
    assert again.returncode == 0 and orjson.loads(again.stdout)["duplicates"] == 2
    assert lh.verify_ok()


def test_the_collector_leaves_a_reused_id_out_and_keeps_committing(server: Server) -> None:
    first = event("dup-1", "2026-03-02T10:00:00Z")
    assert server.post(ndjson([first]))[0] == 202
    wait_for(lambda: server.committed() == 1)
    # Acknowledged (the id check needs the lake), then left out at commit time.
    assert server.post(ndjson([dict(first, time="2026-03-05T10:00:00Z")]))[0] == 202
    assert server.post(ndjson([event("after-1", "2026-03-05T11:00:00Z")]))[0] == 202
    # The WAL is committed in order: once after-1 is sealed, the conflict was handled.
    wait_for(lambda: ("after-1", "2026-03-05") in stored(server.lake) and server.committed() >= 2)
    assert stored(server.lake) == [("after-1", "2026-03-05"), ("dup-1", "2026-03-02")]
    logged = [orjson.loads(line) for line in server.log_path.read_text().splitlines()]
    conflicts = [entry for entry in logged if entry.get("event") == "id_conflict"]
    assert [(c["tenants"], c["events"]) for c in conflicts] == [(["northwind"], 1)]

    def drained() -> bool:
        with urllib.request.urlopen(server.url + "/v1/health", timeout=10) as r:
            health = orjson.loads(r.read())
        return bool(health["status"] == "ok" and health["pending_events"] == 0)

    wait_for(drained)  # nothing left pending, nothing failing


def test_a_conflict_in_a_later_batch_says_what_was_committed_before_it(tmp_path: Path) -> None:
    lh = make_lake(tmp_path)
    first, later = tmp_path / "monday.jsonl", tmp_path / "later.jsonl"
    first.write_bytes(ndjson([event("dup-1", "2026-03-02T10:00:00Z")]))
    assert ingest(lh, first).returncode == 0
    later.write_bytes(
        ndjson(
            [
                event("a-1", "2026-03-05T09:00:00Z"),
                event("a-2", "2026-03-05T09:01:00Z"),
                event("dup-1", "2026-03-05T10:00:00Z"),  # the second batch of two
            ]
        )
    )
    refused = subprocess.run(
        [AUDITLAKE, "ingest", "--batch-size", "2", str(later)],
        capture_output=True, text=True, env=lh.env, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip

    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert f"{later}: event 2: id: id already used by another event" in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert "1 earlier batch(es) (2 event(s)) were committed, nothing after them" in last
    assert "nothing was written" not in refused.stderr
    kept = [("a-1", "2026-03-05"), ("a-2", "2026-03-05"), ("dup-1", "2026-03-02")]
    assert stored(lh.lake) == kept
