"""Appends: idempotence, concurrent writers, crash between commits, the sequencer itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from lake_testkit import Fresh, fresh_lake

from ingest.demo import generate
from lake.contract import ConcurrentAppendError, validate
from lake.storage import Lake, retry_on_conflict, seq_app_id
from lake.verify import verify_lake
from lake.write import append, seal, source_app_id, source_position

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(tmp_path: Path) -> Fresh:
    return fresh_lake(tmp_path, "t")


def events(seed: int, per_day: int = 50, days: int = 2) -> pa.Table:
    data = generate(days=days, events_per_tenant_per_day=per_day, seed=seed, incidents=False)
    return validate(data.events, namespace=f"seed-{seed}".encode()).table


def seqs(lake: Lake, tenant: str) -> np.ndarray:
    table = lake.events_table()
    rows = lake.read_rows(lake.data_files(table, tenants={tenant}), ["seq"])
    return np.sort(rows.column("seq").to_numpy())


def test_same_events_twice_are_kept_once(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    batch = events(1)
    first = append(lake, batch, signer)
    second = append(lake, batch, signer)
    assert first.appended == batch.num_rows and first.duplicates == 0
    assert second.appended == 0 and second.duplicates == batch.num_rows
    assert second.sealed == []
    report = verify_lake(lake, trusted)
    assert report.ok and sum(t.events for t in report.tenants) == batch.num_rows


def test_partly_new_batch_appends_only_the_new_events(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    batch = events(2)
    append(lake, batch.slice(0, 100), signer)
    result = append(lake, batch, signer)
    assert result.appended == batch.num_rows - 100 and result.duplicates == 100
    for tenant in lake.tenants():
        s = seqs(lake, tenant)
        assert np.array_equal(s, np.arange(len(s)))
    assert verify_lake(lake, trusted).ok


def test_a_retry_in_the_same_batch_as_its_first_attempt_is_kept_once(fresh: Fresh) -> None:
    # A collector batch joins several requests: a client's retry can sit beside the
    # request it retries. The first occurrence is kept, as across batches.
    lake, signer, trusted, _ = fresh
    batch = events(6)
    retried = pa.concat_tables([batch, batch.slice(10, 5), batch.slice(0, 1)])
    result = append(lake, retried, signer)
    assert result.appended == batch.num_rows and result.duplicates == 6
    stored = lake.read_rows(lake.data_files(lake.events_table()), ["tenant", "event_id"])
    keys = list(zip(stored["tenant"].to_pylist(), stored["event_id"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == batch.num_rows
    assert verify_lake(lake, trusted).ok


def test_one_checkpoint_per_tenant_per_batch_with_growing_sizes(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    for seed in (3, 4, 5):
        append(lake, events(seed, per_day=20), signer)
    cps = lake.read_checkpoints({"northwind"})
    sizes = cps.column("tree_size").to_pylist()
    assert len(sizes) == 3 and sizes == sorted(sizes) and len(set(sizes)) == 3
    assert verify_lake(lake, trusted).ok


def test_source_positions_commit_with_the_events_and_never_go_back(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    src = "jetstream/S@1"
    app = source_app_id(src, "northwind")
    batch = events(6, per_day=10)
    append(lake, batch.slice(0, 20), signer, source_positions={app: 7})
    table = lake.events_table()
    assert source_position(table, src, "northwind") == 7
    # One commit: the snapshot before it has neither the events nor the position.
    before = DeltaTable(lake.events_uri, version=table.version() - 1)
    assert source_position(before, src, "northwind") == 0
    assert Lake.tree_size(before, "northwind") == 0
    # A stale writer's lower position does not move it back.
    append(lake, batch.slice(20), signer, source_positions={app: 3})
    assert source_position(lake.events_table(), src, "northwind") == 7
    # A batch of duplicates commits nothing, so records nothing.
    version = lake.events_table().version()
    result = append(lake, batch, signer, source_positions={app: 99})
    assert result.appended == 0 and lake.events_table().version() == version
    assert source_position(lake.events_table(), src, "northwind") == 7
    assert source_position(lake.events_table(), src, "contoso") == 0
    assert verify_lake(lake, trusted).ok


def test_sequencer_conflict_is_enforced_by_the_snapshot() -> None:
    """Pin delta-rs behaviour we rely on: same app id from one snapshot → conflict."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = pa.table({"x": pa.array([1], pa.int64())})
        write_deltalake(d, t)
        a, b = DeltaTable(d), DeltaTable(d)
        props = CommitProperties(
            app_transactions=[Transaction(app_id="s", version=1)], max_commit_retries=0
        )
        write_deltalake(a, t, mode="append", commit_properties=props)
        with pytest.raises(CommitFailedError):
            write_deltalake(b, t, mode="append", commit_properties=props)
        assert DeltaTable(d).transaction_version("s") == 1


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ingest.demo import generate
    from lake.write import append
    from lake.secrets import KeyStore
    from lake.storage import Lake
    from lake.contract import ConcurrentAppendError, validate
    lake_path, home, seed, go = sys.argv[1:5]
    lake = Lake.open(lake_path)
    signer = KeyStore(Path(home)).active()
    batches = []
    for i in range(4):
        data = generate(days=1, events_per_tenant_per_day=30, seed=int(seed) * 10 + i,
                        incidents=False)
        batches.append(validate(data.events, namespace=f"{seed}-{i}".encode()).table)
    while not Path(go).exists():
        time.sleep(0.005)
    for b in batches:
        append(lake, b, signer)
    print("done")
    """
)


@pytest.mark.slow
def test_a_lost_commit_race_is_retried_and_a_lasting_one_gives_up() -> None:
    calls: list[int] = []

    def loses_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CommitFailedError("another writer committed first")
        return "committed"

    assert retry_on_conflict(loses_twice, "gave up") == "committed"
    assert len(calls) == 3

    def always_loses() -> None:
        calls.append(1)
        raise CommitFailedError("another writer committed first")

    calls.clear()
    with pytest.raises(ConcurrentAppendError, match=r"^gave up$"):
        retry_on_conflict(always_loses, "gave up", attempts=2)
    assert len(calls) == 2

    def breaks() -> None:
        calls.append(1)
        raise OSError("disk full")

    calls.clear()
    with pytest.raises(OSError, match="disk full"):  # not a race: no second attempt
        retry_on_conflict(breaks, "gave up")
    assert len(calls) == 1


def test_two_writer_processes_share_one_consistent_log(fresh: Fresh, tmp_path: Path) -> None:
    lake, _, trusted, home = fresh
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, lake.root, str(home), str(seed), str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    report = verify_lake(lake, trusted)
    assert report.ok, report.findings
    # 2 writers × 4 batches × 3 tenants × 30 events, every one kept, every log gap-free
    assert sum(t.events for t in report.tenants) == 2 * 4 * 3 * 30
    for tenant in lake.tenants():
        s = seqs(lake, tenant)
        assert np.array_equal(s, np.arange(len(s)))
        assert Lake.tree_size(lake.events_table(), tenant) == len(s)


@pytest.mark.slow
def test_same_file_ingested_by_two_processes_at_once_is_kept_once(
    fresh: Fresh, tmp_path: Path
) -> None:
    lake, _, trusted, home = fresh
    data = generate(days=1, events_per_tenant_per_day=80, seed=5, incidents=False)
    from ingest.demo import write_jsonl

    src = tmp_path / "events.jsonl"
    write_jsonl(data.events, src)
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    exe = str(Path(sys.executable).with_name("auditlake"))
    procs = [
        subprocess.Popen(
            [exe, "ingest", str(src)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    report = verify_lake(lake, trusted)
    assert report.ok and sum(t.events for t in report.tenants) == len(data.events)


def cli_ingest(
    lake: Lake, home: Path, src: Path, *args: str, crash: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `auditlake ingest`, optionally dying right after the events commit."""
    env = {**os.environ, "AUDITLAKE_HOME": str(home), "AUDITLAKE_LAKE": lake.root}
    if crash:
        env["AUDITLAKE_CRASH_AT"] = "after-events-commit"
    exe = str(Path(sys.executable).with_name("auditlake"))
    return subprocess.run(
        [exe, "ingest", str(src), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_crash_between_commits_is_unsealed_then_recovered(fresh: Fresh, tmp_path: Path) -> None:
    lake, signer, trusted, home = fresh
    append(lake, events(6, per_day=20), signer)
    data = generate(days=1, events_per_tenant_per_day=25, seed=7, incidents=False)
    from ingest.demo import write_jsonl

    src = tmp_path / "more.jsonl"
    write_jsonl(data.events, src)
    crashed = cli_ingest(lake, home, src, crash=True)
    assert crashed.returncode == 86
    report = verify_lake(lake, trusted)
    unsealed = [f for f in report.findings if f.kind == "unsealed"]
    assert {f.tenant for f in unsealed} == {"northwind", "contoso", "globex"}
    assert {f.kind for f in report.findings} == {"unsealed"}
    # Re-running the same ingest completes the seal and appends nothing twice.
    rerun = cli_ingest(lake, home, src, "--output-format", "json")
    assert rerun.returncode == 0, rerun.stderr
    assert '"appended": 0' in rerun.stdout
    report = verify_lake(lake, trusted)
    assert report.ok, report.findings
    assert sum(t.events for t in report.tenants) == 3 * 2 * 20 + len(data.events)


def test_seal_completes_a_crashed_batch(fresh: Fresh, tmp_path: Path) -> None:
    lake, signer, trusted, home = fresh
    data = generate(days=1, events_per_tenant_per_day=25, seed=8, incidents=False)
    from ingest.demo import write_jsonl

    src = tmp_path / "e.jsonl"
    write_jsonl(data.events, src)
    assert cli_ingest(lake, home, src, crash=True).returncode == 86
    assert not verify_lake(lake, trusted).ok
    results = seal(lake, signer, lake.tenants())
    assert {r.tenant for r in results} == {"northwind", "contoso", "globex"}
    assert verify_lake(lake, trusted).ok
    assert seal(lake, signer, lake.tenants()) == []


def test_seal_refuses_rows_that_do_not_match_their_leaf_hash(fresh: Fresh) -> None:
    """A row forged before sealing (wrong leaf hash) is never signed."""
    lake, signer, _, _ = fresh
    from lake.contract import EVENTS_PARTITIONS, EVENTS_SCHEMA, StorageError

    append(lake, events(9, per_day=10, days=1), signer)
    table = lake.events_table()
    rows = lake.read_rows(lake.data_files(table, tenants={"globex"}))
    forged = rows.slice(0, 1)
    size = Lake.tree_size(table, "globex")
    forged = forged.set_column(
        forged.schema.get_field_index("seq"), "seq", pa.array([size], pa.int64())
    )
    forged = forged.set_column(
        forged.schema.get_field_index("event_id"), "event_id", pa.array(["forged"])
    )
    write_deltalake(
        table,
        forged.select(EVENTS_SCHEMA.names).cast(EVENTS_SCHEMA),
        mode="append",
        partition_by=EVENTS_PARTITIONS,
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id=seq_app_id("globex"), version=size + 1)]
        ),
    )
    with pytest.raises(StorageError, match="do not match"):
        seal(lake, signer, ["globex"])
