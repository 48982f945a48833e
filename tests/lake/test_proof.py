"""Proofs out of a real lake: lookup cost, inclusion and consistency, offline checks."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_testkit import LakeCopy

from lake.contract import ProofError
from lake.proofs import check_proof, find_event, prove, prove_consistency
from lake.storage import DataFile, Lake


def some_event(lake: Lake) -> tuple[str, DataFile]:
    table = lake.events_table()
    files = lake.data_files(table, tenants={"globex"})
    f = max(files, key=lambda f: f.num_records or 0)
    row = lake.read_file(f, ["event_id"]).slice(3, 1).to_pylist()[0]
    return row["event_id"], f


def test_uuid7_ids_are_found_in_their_own_partition(
    lake_copy: LakeCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _, _ = lake_copy
    event_id, f = some_event(lake)
    opened: list[str] = []
    original = pq.read_table

    def counting(path: Any, *args: Any, **kwargs: Any) -> pa.Table:
        opened.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", counting)  # the module every reader goes through
    row = find_event(lake, "globex", event_id)
    assert row["event_id"] == event_id
    files_of_day = len(
        [
            x
            for x in lake.data_files(lake.events_table(), tenants={"globex"})
            if x.event_date == f.event_date
        ]
    )
    assert len(opened) <= files_of_day  # not a scan of the tenant's other days
    assert all(f"event_date={f.event_date}" in p for p in opened)


def test_inclusion_and_consistency_proofs_check_offline(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    event_id, _ = some_event(lake)
    proof = prove(lake, "globex", event_id)
    assert "is leaf" in check_proof(proof, trusted)
    assert "prefix" in check_proof(prove_consistency(lake, "globex", 3), trusted)
    with pytest.raises(ProofError):
        check_proof(proof, [])  # no key, no trust
    proof["inclusion_path"][0] = "00" * 32
    with pytest.raises(ProofError):
        check_proof(proof, trusted)


def test_unknown_event_is_a_clear_error(lake_copy: LakeCopy) -> None:
    lake, _, _ = lake_copy
    with pytest.raises(ProofError, match="no event"):
        prove(lake, "globex", "01a194b0-3558-7117-aefa-0e330116c158")
