"""Typed seams of `lake.verify`: finding kinds, range modes and the verify history.

`verify_typed` is `verify_lake` with a check that every finding of the report carries a
`FindingKind` (and the JSON report its plain string): the tamper and signed-time tests
verify through it, so every place a finding is made is checked on a real tampered lake.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.log import NoteSigner, VerifierKey
from lake.storage import Lake, paths
from lake.verify import (
    Engine,
    Finding,
    FindingKind,
    LastVerification,
    RangeMode,
    Report,
    VerifyHistory,
    last_reports,
    record_report,
    verify_history,
    verify_lake,
)

# The kinds the product contract names, and the ones verify reports beyond them.
DOCUMENTED = {
    "modified", "missing", "duplicate", "inserted", "reordered", "bad_signature",
    "untrusted_key", "rollback", "unsealed",
}  # fmt: skip
EXTRAS = {
    "misplaced", "key_not_valid", "bad_chain", "bad_checkpoint", "fork", "root_mismatch",
    "bad_tiles", "bad_cosignature", "witness_conflict", "unwitnessed", "unreadable_table",
    "unreadable_file",
}  # fmt: skip

LakeCopy = tuple[Lake, NoteSigner, list[VerifierKey]]


def verify_typed(lake: Lake, trusted: Sequence[VerifierKey], **options: Any) -> Report:
    """`verify_lake`, asserting that every finding is typed and reported as its string."""
    report = verify_lake(lake, trusted, **options)
    assert_typed(report)
    return report


def assert_typed(report: Report) -> None:
    """Every finding of `report` (made here, in a process pool or on Ray) is typed."""
    findings: list[Finding] = report.findings
    for finding in findings:
        assert type(finding.kind) is FindingKind, finding
    for tr in report.tenants:
        assert all(type(kind) is FindingKind for kind in tr.suppressed), tr.suppressed
    # The JSON report says the kind as its plain string, as before kinds were typed.
    text = orjson.dumps(report.as_dict(), option=orjson.OPT_SORT_KEYS)
    shown = orjson.loads(text)
    named = [*shown["lake_findings"], *(f for t in shown["tenants"] for f in t["findings"])]
    assert [f["kind"] for f in named] == [f.kind.value for f in findings]


def test_finding_kinds_are_the_documented_ones_and_the_extras() -> None:
    assert {kind.value for kind in FindingKind} == DOCUMENTED | EXTRAS
    assert not DOCUMENTED & EXTRAS
    assert FindingKind("modified") is FindingKind.MODIFIED  # the CLI's strings still parse


def test_the_cli_guide_explains_every_kind() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    table = guide.split("| kind | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    explained = {name for cell in rows for name in re.findall(r"`([a-z_]+)`", cell)}
    assert explained == {kind.value for kind in FindingKind}


def test_range_modes_and_engines_are_the_names_callers_pass() -> None:
    assert {mode.value for mode in RangeMode} == {"tiles", "rows", "homes"}
    assert {engine.value for engine in Engine} == {"local", "ray"}  # the CLI's --engine
    with pytest.raises(ValueError, match="spark"):
        Engine("spark")


def _biggest_file(lake: Lake, tenant: str) -> Path:
    files = lake.data_files(lake.events_table(), tenants={tenant})
    best = max(files, key=lambda f: f.num_records or 0)
    return Path(lake.root) / paths.table_file(paths.EVENTS, best.path)


def _tamper(lake: Lake) -> None:
    """A changed row in northwind, a deleted data file in globex."""
    path = _biggest_file(lake, "northwind")
    table = pq.read_table(path)
    actions = table.column("action").to_pylist()
    actions[0] = "forged.action"
    column = table.schema.get_field_index("action")
    changed = pa.array(actions, table.schema.field(column).type)
    pq.write_table(table.set_column(column, "action", changed), path)
    _biggest_file(lake, "globex").unlink()


def test_a_tampered_lake_reports_typed_kinds(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    _tamper(lake)
    report = verify_typed(lake, trusted, range_events=256)
    found = {(f.tenant, f.kind) for f in report.findings}
    assert ("northwind", FindingKind.MODIFIED) in found
    assert {("globex", FindingKind.UNREADABLE_FILE), ("globex", FindingKind.MISSING)} <= found
    assert {f.kind for f in verify_typed(lake, []).findings} >= {FindingKind.UNTRUSTED_KEY}


def test_the_history_is_written_and_read_through_one_type(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    _tamper(lake)
    record_report(lake, verify_lake(lake, trusted), by="alice")
    history = verify_history(lake)
    assert set(history.tenants) == {"northwind", "contoso", "globex"}
    northwind = history.tenants["northwind"]
    assert isinstance(northwind, LastVerification) and northwind.by == "alice"
    assert not northwind.ok and FindingKind.MODIFIED in northwind.kinds
    assert all(type(kind) is FindingKind for kind in northwind.kinds)
    assert history.tenants["contoso"].ok and history.tenants["contoso"].findings == 0
    stored = lake.read_bytes(paths.VERIFY_LOG)
    assert history.to_json() == stored  # a read and a write change nothing
    assert VerifyHistory.from_json(stored) == history
    # The dict form, for callers that still read entries by key, is the file's JSON.
    assert last_reports(lake) == orjson.loads(stored)
    assert orjson.loads(stored)["northwind"]["kinds"] == sorted(northwind.kinds)


def test_a_damaged_history_entry_is_left_out_and_the_rest_kept(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    record_report(lake, verify_lake(lake, trusted, tenants=["contoso"]), by="alice")
    doc = orjson.loads(lake.read_bytes(paths.VERIFY_LOG))
    doc["globex"] = {"verified_at": "yesterday", "ok": "yes"}
    lake.write_bytes(paths.VERIFY_LOG, orjson.dumps(doc))
    assert set(verify_history(lake).tenants) == {"contoso"}
    lake.write_bytes(paths.VERIFY_LOG, b"[not, json")
    assert verify_history(lake) == VerifyHistory()
    assert last_reports(lake) == {}


def test_a_history_written_before_the_typed_record_reads_and_writes_back_the_same() -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "lake-before-redesign"
    for lake_dir in ("lake", "elake"):
        stored = (fixture / lake_dir / paths.VERIFY_LOG).read_bytes()
        history = VerifyHistory.from_json(stored)
        assert history.tenants and all(run.ok for run in history.tenants.values())
        assert history.to_json() == stored
