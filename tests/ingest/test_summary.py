"""`ingest.summary`: files in as signed batches, and the summary of what that did."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest
from ingest_testkit import ev, jsonl_bytes, write

from ingest.summary import IngestSummary, PartlyIngested, ingest_inputs, load_inputs
from lake.contract import ValidationError
from lake.log import NoteSigner
from lake.secrets import KeyStore
from lake.storage import Lake


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Lake, NoteSigner]:
    signer = KeyStore(tmp_path / "home").generate("k")
    return Lake.init(tmp_path / "lake", "t", signer.verifier_key.encode()), signer


def _ingest(
    lake: tuple[Lake, NoteSigner], files: list[str], batch_size: int, skip_invalid: bool = False
) -> tuple[IngestSummary, list[str]]:
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        loaded = load_inputs(files, stack, lake_path=str(lake[0].root), skip_invalid=skip_invalid)
        summary = ingest_inputs(*lake, loaded, batch_size=batch_size, notify=notes.append)
    return summary, notes


def test_batches_add_up_per_tenant_and_repeats_are_counted(
    lake: tuple[Lake, NoteSigner], tmp_path: Path
) -> None:
    events = [ev(id=f"e{i}", tenant="acme" if i % 3 else "beta") for i in range(7)]
    path = write(tmp_path, "in.jsonl", jsonl_bytes(*events))
    summary, notes = _ingest(lake, [path], batch_size=3)
    assert len(summary.batches) == 3  # 3 + 3 + 1
    assert (summary.appended, summary.duplicates, summary.rejected) == (7, 0, 0)
    assert summary.per_tenant() == [("acme", 4, 4), ("beta", 3, 3)]
    assert summary.touched() == ["acme", "beta"] and notes == []
    doc = summary.as_dict()
    assert [len(i["batches"]) for i in doc["inputs"]] == [3]
    assert doc["inputs"][0] | {"batches": []} == {
        "input": path, "format": "jsonl", "events": 7, "rejected": 0, "batches": []
    }  # fmt: skip
    again, _ = _ingest(lake, [path], batch_size=3)
    assert (again.appended, again.duplicates) == (0, 7)


def test_invalid_events_stop_everything_unless_skipped(
    lake: tuple[Lake, NoteSigner], tmp_path: Path
) -> None:
    path = write(tmp_path, "in.jsonl", jsonl_bytes(ev(id="ok"), ev(id="bad", outcome="maybe")))
    with pytest.raises(ValidationError):
        _ingest(lake, [path], batch_size=10)
    assert lake[0].tenants() == []
    summary, notes = _ingest(lake, [path], batch_size=10, skip_invalid=True)
    assert (summary.appended, summary.rejected) == (1, 1)
    rejects = Path(str(summary.inputs[0].rejects_file))
    assert rejects == Path(f"{path}.rejects.jsonl") and notes == [
        f"{path}: 1 invalid event(s) written to {rejects}"
    ]
    [line] = rejects.read_bytes().splitlines()
    assert b'"bad"' in line and orjson.loads(line)


def test_a_taken_id_in_a_later_batch_names_what_was_committed(
    lake: tuple[Lake, NoteSigner], tmp_path: Path
) -> None:
    first = write(tmp_path, "a.jsonl", jsonl_bytes(ev(id="x1"), ev(id="x2")))
    clash = write(tmp_path, "b.jsonl", jsonl_bytes(ev(id="x1", action="logout")))
    with pytest.raises(PartlyIngested) as caught:
        _ingest(lake, [first, clash], batch_size=10)
    assert "1 earlier batch(es) (2 event(s)) were committed" in str(caught.value)
    assert caught.value.source == clash and caught.value.issues
    assert lake[0].tenants() == ["acme"]
