"""An id is used once per tenant, whatever the event's date: append, verify and prove.

Each test builds a small real lake. An id sent again with the same content is a retry
(dropped); under other content (another time, hence maybe another date partition) it is
a conflict: rejected, or handed to `on_conflict`.
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from lake_testkit import Fresh, fresh_lake
from testkit import login_event

from lake.contract import Issue, LakeError, ProofError, ValidationError, validate
from lake.proofs import find_event, prove
from lake.storage import DataFile, Lake
from lake.verify import verify_lake
from lake.write import ID_TAKEN, append, candidate_files

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(tmp_path: Path) -> Fresh:
    return fresh_lake(tmp_path, "u")


def table(*events: dict[str, Any]) -> pa.Table:
    result = validate(list(events), namespace=b"t")
    assert not result.issues, result.issues
    return result.table


def stored(lake: Lake) -> list[tuple[str, str, Any]]:
    rows = lake.read_rows(lake.data_files(lake.events_table()), ["tenant", "event_id", "time"])
    return sorted(
        zip(
            rows.column("tenant").to_pylist(),
            rows.column("event_id").to_pylist(),
            rows.column("time").to_pylist(),
            strict=True,
        )
    )


def test_same_id_on_another_date_is_rejected_naming_the_event(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    append(lake, table(login_event("e-1", "2026-03-01T10:00:00Z")), signer)
    later = table(
        login_event("e-2", "2026-03-05T09:00:00Z"), login_event("e-1", "2026-03-04T10:00:00Z")
    )
    with pytest.raises(ValidationError) as caught:
        append(lake, later, signer)
    assert caught.value.issues == [Issue(1, "id", ID_TAKEN)]
    assert "event 1: id: id already used by another event of this tenant" in str(caught.value)
    # Nothing of the rejected batch was written; the lake holds the id once.
    assert [(t, i) for t, i, _ in stored(lake)] == [("acme", "e-1")]
    assert verify_lake(lake, trusted).ok


def test_same_id_same_date_other_content_is_rejected_too(fresh: Fresh) -> None:
    # The rule does not depend on the partition: before, this one was silently dropped.
    lake, signer, _, _ = fresh
    append(lake, table(login_event("e-1", "2026-03-01T10:00:00Z")), signer)
    other = table(login_event("e-1", "2026-03-01T10:00:00Z", outcome="failure"))
    with pytest.raises(ValidationError, match="id already used by another event"):
        append(lake, other, signer)


def test_a_retry_is_dropped_whatever_its_receipt_time(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    batch = table(
        login_event("e-1", "2026-03-01T10:00:00Z"), login_event("e-2", "2026-03-09T10:00:00Z")
    )
    append(lake, batch, signer)
    again = append(lake, batch, signer)  # stamped with another received_at
    assert again.appended == 0 and again.duplicates == 2 and again.conflicts == 0
    assert len(stored(lake)) == 2 and verify_lake(lake, trusted).ok


def test_the_same_id_on_another_tenant_is_another_event(fresh: Fresh) -> None:
    lake, signer, _, _ = fresh
    append(lake, table(login_event("e-1", "2026-03-01T10:00:00Z")), signer)
    result = append(lake, table(login_event("e-1", "2026-03-02T10:00:00Z", tenant="beta")), signer)
    assert result.appended == 1


def test_on_conflict_gets_the_conflicts_and_the_rest_is_appended(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    append(lake, table(login_event("e-1", "2026-03-01T10:00:00Z")), signer)
    got: list[list[Issue]] = []
    # Two requests in one batch (as a collector joins them).
    batch = pa.concat_tables(
        [
            table(
                login_event("e-2", "2026-03-02T10:00:00Z"),
                login_event("e-1", "2026-03-03T10:00:00Z"),  # conflict with the stored e-1
            ),
            table(
                login_event("e-1", "2026-03-01T10:00:00Z"),  # the stored e-1 again: a retry
                login_event("e-3", "2026-03-03T11:00:00Z", tenant="beta"),
            ),
        ]
    )
    result = append(lake, batch, signer, on_conflict=got.append)
    assert got == [[Issue(1, "id", ID_TAKEN)]]
    assert (result.appended, result.duplicates, result.conflicts) == (2, 1, 1)
    ids = [(t, i, str(when.date())) for t, i, when in stored(lake)]
    assert ids == [
        ("acme", "e-1", "2026-03-01"),
        ("acme", "e-2", "2026-03-02"),
        ("beta", "e-3", "2026-03-03"),
    ]
    assert verify_lake(lake, trusted).ok


def test_within_a_batch_a_repeat_is_a_retry_or_a_conflict_by_its_content(fresh: Fresh) -> None:
    lake, signer, _, _ = fresh
    first = login_event("e-1", "2026-03-01T10:00:00Z")
    batch = table(first, login_event("e-2", "2026-03-01T11:00:00Z"))
    both = pa.concat_tables(
        [batch, batch.slice(0, 1), table(login_event("e-1", "2026-04-01T10:00:00Z"))]
    )
    with pytest.raises(ValidationError) as caught:
        append(lake, both, signer)
    assert caught.value.issues == [Issue(3, "id", ID_TAKEN)]
    result = append(lake, both.slice(0, 3), signer)
    assert (result.appended, result.duplicates) == (2, 1)


@pytest.mark.parametrize("micros", [2**63 - 1, -(2**63), 253_402_387_139_000_000])
def test_a_time_outside_years_1_to_9999_is_a_lake_error_naming_the_event(
    fresh: Fresh, micros: int
) -> None:
    """Whatever int64 time reaches append (here past validation), it fails cleanly."""
    lake, signer, _, _ = fresh
    batch = table(
        login_event("e-1", "2026-03-01T10:00:00Z"), login_event("e-2", "2026-03-01T11:00:00Z")
    )
    times = pa.array([1_772_359_200_000_000, micros], pa.int64()).cast(pa.timestamp("us", "UTC"))
    batch = batch.set_column(batch.schema.get_field_index("time"), "time", times)
    batch = batch.set_column(
        batch.schema.get_field_index("event_date"), "event_date", pc.cast(times, pa.date32())
    )
    with pytest.raises(LakeError) as caught:
        append(lake, batch, signer)
    assert isinstance(caught.value, ValidationError)
    assert [(i.index, i.field) for i in caught.value.issues] == [(1, "time")]
    assert stored(lake) == []


def test_verify_reports_an_id_stored_twice_and_prove_refuses_it(fresh: Fresh) -> None:
    lake, signer, trusted, _ = fresh
    append(lake, table(login_event("e-1", "2026-03-01T10:00:00Z")), signer)
    # What older versions let in: the same id under another date (forced here).
    append(lake, table(login_event("e-1", "2026-03-04T10:00:00Z")), signer, dedupe=False)
    report = verify_lake(lake, trusted)
    dup = [f for f in report.findings if f.kind == "duplicate"]
    assert [(f.tenant, f.event_id, f.seq) for f in dup] == [("acme", "e-1", 1)]
    assert "2 stored events" in dup[0].message and not report.ok
    with pytest.raises(ProofError, match="ambiguous"):
        prove(lake, "acme", "e-1")


def test_find_event_reads_only_files_whose_id_range_holds_the_id(fresh: Fresh) -> None:
    lake, signer, _, _ = fresh
    for day in range(1, 6):
        evs = [
            login_event(f"2026-03-0{day}-{k:03d}", f"2026-03-0{day}T10:{k:02d}:00Z")
            for k in range(5)
        ]
        append(lake, table(*evs), signer)
    files = lake.data_files(lake.events_table(), tenants={"acme"}, ids=True)
    assert len(files) == 5 and all(f.min_id and f.max_id for f in files)
    hit = candidate_files(files, {"acme": ["2026-03-03-002"]})
    assert [str(f.event_date) for f in hit] == ["2026-03-03"]
    assert find_event(lake, "acme", "2026-03-03-002")["event_id"] == "2026-03-03-002"
    # A file without statistics may hold anything: it stays a candidate.
    bare = DataFile("x", "acme", files[0].event_date, 1, 0, 0)
    assert candidate_files([bare], {"acme": ["zzz"]}) == [bare]


def test_encrypted_lake_retry_is_dropped_and_other_details_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored fields are ciphertext under a fresh nonce: compared after decryption.
    monkeypatch.setenv("AUDITLAKE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("AUDITLAKE_HOME", str(tmp_path / "home"))
    lake, signer, trusted, _ = fresh_lake(tmp_path, "u", encrypted=True)
    batch = table(login_event("e-1", "2026-03-01T10:00:00Z"))
    append(lake, batch, signer)
    assert append(lake, batch, signer).duplicates == 1
    other = table(login_event("e-1", "2026-03-01T10:00:00Z", details={"attempt": 2}))
    with pytest.raises(ValidationError, match="id already used"):
        append(lake, other, signer)
    assert verify_lake(lake, trusted).ok


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lake.write import append
    from lake.secrets import KeyStore
    from lake.contract import ValidationError
    from lake.storage import Lake
    from lake.contract import validate
    lake_path, home, day, go = sys.argv[1:5]
    lake = Lake.open(lake_path)
    signer = KeyStore(Path(home)).active()
    ev = {"tenant": "acme", "id": "same", "time": f"2026-03-{day}T10:00:00Z",
          "category": "authentication", "action": "user.login", "outcome": "success",
          "actor": {"id": "ann@example.com"}}
    batch = validate([ev], namespace=b"w").table
    while not Path(go).exists():
        time.sleep(0.005)
    try:
        append(lake, batch, signer)
        print("appended")
    except ValidationError:
        print("rejected")
    """
)


@pytest.mark.slow
def test_two_writers_racing_one_id_on_two_dates_store_it_once(fresh: Fresh, tmp_path: Path) -> None:
    """The per-tenant sequencer makes the loser re-check against the winner's commit."""
    lake, _, trusted, home = fresh
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, lake.root, str(home), day, str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in ("01", "02")
    ]
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(out.strip() for out, _ in outs) == ["appended", "rejected"]
    assert [(t, i) for t, i, _ in stored(lake)] == [("acme", "same")]
    assert verify_lake(lake, trusted).ok


def test_random_ids_read_only_the_files_the_writers_index_points_at(
    fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UUIDv4 ids defeat the min/max statistics; a writer's index narrows the reads."""
    lake, signer, trusted, _ = fresh
    rng = random.Random(7)
    days = {}
    for day in ("01", "02", "03"):
        evs = [
            login_event(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"2026-03-{day}T10:00:00Z"
            )
            for _ in range(20_000)
        ]
        days[day] = evs
        append(lake, table(*evs), signer)
    # The writer's next append indexes the files (each one's range holds a random id).
    append(
        lake,
        table(login_event(str(uuid.UUID(int=1 << 127, version=4)), "2026-03-04T10:00:00Z")),
        signer,
    )
    opened: list[str] = []
    real_file, real_read = pq.ParquetFile, pq.read_table

    def counting_file(source: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(source))
        return real_file(source, *args, **kwargs)

    def counting_read(source: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(source))
        return real_read(source, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", counting_file)
    monkeypatch.setattr(pq, "read_table", counting_read)
    retry = days["02"][5]
    reused = dict(days["01"][7], time="2026-03-04T11:00:00Z")
    new = [login_event(f"new-{k}", "2026-03-04T12:00:00Z") for k in range(5)]
    got: list[list[Issue]] = []
    batch = pa.concat_tables([table(retry), table(reused, *new)])
    result = append(lake, batch, signer, on_conflict=got.append)
    assert (result.appended, result.duplicates, result.conflicts) == (5, 1, 1)
    assert got == [[Issue(1, "id", ID_TAKEN)]]
    # Only the files of 03-01 and 03-02 that hold those two ids: read for ids, then rows.
    assert opened and {Path(p).parent.name for p in opened} == {
        "event_date=2026-03-01",
        "event_date=2026-03-02",
    }
    assert verify_lake(lake, trusted).ok
