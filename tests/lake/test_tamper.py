"""Every kind of tampering, each on a copy of a real lake, must make verify name the tenant.

The attacker here can rewrite anything in the lake directory; what they cannot do is sign
with a trusted key. The untouched copy verifies clean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from lake_testkit import LakeCopy

# verify_lake, checking that every finding it reports carries a FindingKind
from test_verify_kinds import verify_typed as verify_lake

import lake.verify._engines as engines_module
from lake.contract import (
    EVENTS_PARTITIONS,
    EVENTS_SCHEMA,
    LEAF_FIELDS,
    hash_leaves,
    leaf_hashes_array,
)
from lake.log import Checkpoint, generate_signer, parse_note, sign_checkpoint, tile_path
from lake.storage import Lake
from lake.verify import Report, parse_exported

TENANT = "northwind"


def kinds(report: Report, tenant: str = TENANT) -> set[str]:
    return {f.kind for f in report.findings if f.tenant == tenant}


def biggest_file(lake: Lake, tenant: str = TENANT) -> Path:
    files = lake.data_files(lake.events_table(), tenants={tenant})
    best = max(files, key=lambda f: f.num_records or 0)
    return Path(lake.root) / "events" / best.path


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> pa.Table:
    table = pq.read_table(path)
    table = change(table)
    pq.write_table(table, path)
    return table


def test_untouched_lake_verifies(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    report = verify_lake(lake, trusted)
    assert report.ok, report.findings
    assert {t.tenant for t in report.tenants} == {"northwind", "contoso", "globex"}
    assert all(t.events == t.sealed_size > 0 for t in report.tenants)


def test_changed_value_is_modified(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)

    def change(t: pa.Table) -> pa.Table:
        actors = t.column("actor_id").to_pylist()
        actors[3] = "mallory"
        return t.set_column(t.schema.get_field_index("actor_id"), "actor_id", pa.array(actors))

    table = rewrite(path, change)
    report = verify_lake(lake, trusted)
    assert not report.ok
    found = [f for f in report.findings if f.kind == "modified"]
    assert found and found[0].tenant == TENANT
    assert found[0].event_id == table.column("event_id")[3].as_py()
    assert found[0].seq == table.column("seq")[3].as_py()
    assert found[0].batch_id == table.column("batch_id")[3].as_py()


def test_changed_value_with_recomputed_leaf_hash_is_still_modified(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    tenant, day = path.parent.parent.name.split("=")[1], path.parent.name.split("=")[1]

    def change(t: pa.Table) -> pa.Table:
        outcomes = t.column("outcome").to_pylist()
        outcomes[0] = "success" if outcomes[0] != "success" else "failure"
        t = t.set_column(t.schema.get_field_index("outcome"), "outcome", pa.array(outcomes))
        full = t.append_column("tenant", pa.array([tenant] * t.num_rows))
        hashes = hash_leaves(full.select(list(LEAF_FIELDS)))
        idx = t.schema.get_field_index("leaf_hash")
        return t.set_column(idx, "leaf_hash", leaf_hashes_array(hashes))

    assert day
    rewrite(path, change)
    report = verify_lake(lake, trusted)
    assert "modified" in kinds(report)


def test_removed_row_is_missing(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    before = pq.read_table(path)
    rewrite(path, lambda t: t.slice(1))
    report = verify_lake(lake, trusted)
    missing = [f for f in report.findings if f.kind == "missing"]
    assert missing and missing[0].tenant == TENANT
    assert missing[0].seq == before.column("seq")[0].as_py()


def test_duplicated_row_is_duplicate(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    table = rewrite(path, lambda t: pa.concat_tables([t, t.slice(2, 1)]))
    report = verify_lake(lake, trusted)
    dup = [f for f in report.findings if f.kind == "duplicate"]
    assert dup and dup[0].tenant == TENANT
    assert dup[0].event_id == table.column("event_id")[2].as_py()


def test_swapped_seq_is_reordered(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)

    def swap(t: pa.Table) -> pa.Table:
        seq = t.column("seq").to_pylist()
        seq[0], seq[1] = seq[1], seq[0]
        return t.set_column(t.schema.get_field_index("seq"), "seq", pa.array(seq, pa.int64()))

    rewrite(path, swap)
    report = verify_lake(lake, trusted)
    reordered = [f for f in report.findings if f.kind == "reordered"]
    assert len(reordered) == 2 and {f.tenant for f in reordered} == {TENANT}


def _forged_rows(lake: Lake, seq: int) -> pa.Table:
    """A plausible event with a correct leaf hash, as an attacker with write access makes it."""
    path = biggest_file(lake)
    row = pq.read_table(path).slice(0, 1)
    tenant = path.parent.parent.name.split("=")[1]
    day = path.parent.name.split("=")[1]
    row = row.append_column("tenant", pa.array([tenant])).append_column(
        "event_date", pa.array([pa.scalar(day).cast(pa.date32()).as_py()], pa.date32())
    )
    row = row.set_column(row.schema.get_field_index("event_id"), "event_id", pa.array(["forged-1"]))
    row = row.set_column(row.schema.get_field_index("seq"), "seq", pa.array([seq], pa.int64()))
    row = row.set_column(
        row.schema.get_field_index("actor_id"), "actor_id", pa.array(["alibi@northwind.example"])
    )
    hashes = hash_leaves(row.select(list(LEAF_FIELDS)))
    row = row.set_column(
        row.schema.get_field_index("leaf_hash"), "leaf_hash", leaf_hashes_array(hashes)
    )
    return row.select(EVENTS_SCHEMA.names).cast(EVENTS_SCHEMA)


def test_appended_forged_row_with_correct_leaf_hash(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    size = Lake.tree_size(lake.events_table(), TENANT)
    write_deltalake(
        lake.events_uri, _forged_rows(lake, size), mode="append", partition_by=EVENTS_PARTITIONS
    )
    report = verify_lake(lake, trusted)
    found = [f for f in report.findings if f.tenant == TENANT]
    assert [f.kind for f in found] == ["unsealed"]
    assert found[0].seq == size


def test_forged_row_inside_the_sealed_log_is_inserted(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    write_deltalake(
        lake.events_uri, _forged_rows(lake, 5), mode="append", partition_by=EVENTS_PARTITIONS
    )
    report = verify_lake(lake, trusted)
    inserted = [f for f in report.findings if f.kind == "inserted"]
    assert inserted and inserted[0].tenant == TENANT and inserted[0].event_id == "forged-1"


def test_deleted_data_file_is_reported_not_raised(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    path.unlink()
    report = verify_lake(lake, trusted)
    assert {"unreadable_file", "missing"} <= kinds(report)
    unreadable = next(f for f in report.findings if f.kind == "unreadable_file")
    assert unreadable.file and path.name in unreadable.file


def test_corrupt_data_file_is_reported_not_raised(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    path.write_bytes(b"not parquet at all")
    report = verify_lake(lake, trusted)
    assert "unreadable_file" in kinds(report)


@pytest.mark.parametrize("column", ["details", "leaf_hash", "seq"])
def test_data_file_without_a_column_is_unreadable_not_raised(
    lake_copy: LakeCopy, column: str
) -> None:
    # Reads go through pq.ParquetFile, which silently skips a column the file lacks
    # (pq.read_table raised): the lake's reader must still refuse such a file.
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    rewrite(path, lambda t: t.drop_columns([column]))
    f = next(f for f in lake.data_files(lake.events_table()) if path.name in f.path)
    with pytest.raises(pa.ArrowInvalid, match=column):
        lake.read_file(f, ["event_id", column])
    report = verify_lake(lake, trusted)
    assert "unreadable_file" in kinds(report)
    unreadable = next(f for f in report.findings if f.kind == "unreadable_file")
    assert unreadable.file and path.name in unreadable.file and column in unreadable.message


def test_stored_types_come_back_as_the_contract_types(lake_copy: LakeCopy) -> None:
    lake, _, _ = lake_copy
    f = lake.data_files(lake.events_table())[0]
    table = lake.read_file(f)
    stored = pq.read_schema(Path(lake.root) / "events" / f.path)
    assert stored.field("leaf_hash").type == pa.binary()
    assert table.schema.field("leaf_hash").type == pa.binary(32)
    assert all(field.nullable for field in table.schema)
    assert table.column("tenant").unique().to_pylist() == [f.tenant]
    assert table.column("event_date").unique().to_pylist() == [f.event_date]
    assert set(table.column_names) == set(EVENTS_SCHEMA.names)


def test_delta_level_delete_is_missing(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    table = DeltaTable(lake.events_uri)
    # delta.appendOnly stops mistakes, not an attacker: switch it off, then delete.
    with pytest.raises(Exception, match="append-only"):
        table.delete("seq = 7")
    table.alter.set_table_properties({"delta.appendOnly": "false"})
    DeltaTable(lake.events_uri).delete(f"tenant = '{TENANT}' AND seq = 7")
    report = verify_lake(lake, trusted)
    missing = [f for f in report.findings if f.kind == "missing"]
    assert [(f.tenant, f.seq) for f in missing] == [(TENANT, 7)]


def _resign_latest(lake: Lake, attacker_key_in_lake: bool) -> None:
    """Replace the tenant's latest checkpoint note with one signed by another key."""
    attacker = generate_signer("attacker")
    cp_dir = Path(lake.root) / "checkpoints" / f"tenant={TENANT}"
    files = sorted(cp_dir.glob("*.parquet"))
    assert files
    for path in files:
        t = pq.read_table(path)
        notes = []
        for note in t.column("note").to_pylist():
            text, _ = parse_note(note)
            notes.append(sign_checkpoint(Checkpoint.parse(text), [attacker]))
        t = t.set_column(t.schema.get_field_index("note"), "note", pa.array(notes))
        t = t.set_column(
            t.schema.get_field_index("key_name"), "key_name", pa.array(["attacker"] * t.num_rows)
        )
        pq.write_table(t, path)
    if attacker_key_in_lake:
        lake.publish_key(attacker.verifier_key.encode())


@pytest.mark.parametrize("published", [False, True])
def test_checkpoint_resigned_by_another_key(lake_copy: LakeCopy, published: bool) -> None:
    lake, _, trusted = lake_copy
    _resign_latest(lake, published)
    report = verify_lake(Lake.open(lake.root), trusted)
    assert "untrusted_key" in kinds(report)
    assert kinds(report, "contoso") == set()


def test_checkpoint_signature_altered_is_bad_signature(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = next((Path(lake.root) / "checkpoints" / f"tenant={TENANT}").glob("*.parquet"))
    t = pq.read_table(path)
    notes = t.column("note").to_pylist()
    body, sig = notes[0].rsplit(" ", 1)
    flipped = "A" if sig[10] != "A" else "B"
    notes[0] = body + " " + sig[:10] + flipped + sig[11:]
    pq.write_table(t.set_column(t.schema.get_field_index("note"), "note", pa.array(notes)), path)
    report = verify_lake(lake, trusted)
    assert "bad_signature" in kinds(report)


def test_no_trusted_key_means_untrusted(lake_copy: LakeCopy) -> None:
    lake, _, _ = lake_copy
    report = verify_lake(lake, [])
    assert {f.kind for f in report.findings} == {"untrusted_key"}
    assert {f.tenant for f in report.findings} == {"northwind", "contoso", "globex"}


def test_rollback_is_detected_against_an_exported_checkpoint(
    lake_copy: LakeCopy, tmp_path: Path
) -> None:
    lake, signer, trusted = lake_copy
    from ingest.demo import generate
    from lake.contract import validate
    from lake.proofs import latest_checkpoint
    from lake.write import append

    old_events_log = sorted((Path(lake.root) / "events" / "_delta_log").glob("*.json"))
    old_cps_log = sorted((Path(lake.root) / "checkpoints" / "_delta_log").glob("*.json"))
    more = generate(days=1, events_per_tenant_per_day=40, seed=99, incidents=False).events
    append(lake, validate(more, namespace=b"more").table, signer)
    exported = latest_checkpoint(lake, TENANT)["note"]
    assert verify_lake(lake, trusted, since=[exported]).ok
    # The attacker drops the newest commits of both tables: the lake is self-consistent again.
    for log, keep in (("events", old_events_log), ("checkpoints", old_cps_log)):
        for path in sorted((Path(lake.root) / log / "_delta_log").glob("*.json")):
            if path not in keep:
                path.unlink()
    rolled = Lake.open(lake.root)
    assert verify_lake(rolled, trusted).ok  # nothing inside the lake can tell
    report = verify_lake(rolled, trusted, since=parse_exported(exported))
    found = [f for f in report.findings if f.kind == "rollback"]
    assert found and found[0].tenant == TENANT


def test_tampered_tiles_do_not_hide_or_fake_findings(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    size = Lake.sealed_size(lake.checkpoints_table(), TENANT)
    # The tile proofs and verify read at the current size: full if complete, else partial.
    target = Path(lake.root) / tile_path(TENANT, 0, 0, min(size, 256))
    assert target.is_file()
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    report = verify_lake(lake, trusted)
    assert kinds(report) == {"bad_tiles"}


def test_tampered_upper_tile_that_proofs_read_is_reported(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    size = Lake.sealed_size(lake.checkpoints_table(), TENANT)
    assert size >= 256  # there is a level-1 tile (one hash per 256 leaves)
    target = Path(lake.root) / tile_path(TENANT, 1, 0, size >> 8)
    data = bytearray(target.read_bytes())
    data[5] ^= 0x40
    target.write_bytes(bytes(data))
    report = verify_lake(lake, trusted)
    assert kinds(report) == {"bad_tiles"}
    assert "level 1" in next(f.message for f in report.findings)


def test_lake_json_is_not_a_trust_anchor(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    meta_path = Path(lake.root) / "_auditlake" / "lake.json"
    meta = json.loads(meta_path.read_text())
    assert meta["published_keys"]
    # The events still verify against the operator's keys whatever the lake says.
    meta["published_keys"] = []
    meta_path.write_text(json.dumps(meta))
    assert verify_lake(Lake.open(lake.root), trusted).ok


def test_verify_checks_only_requested_tenants(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    rewrite(path, lambda t: t.slice(1))
    assert verify_lake(lake, trusted, tenants=["contoso"]).ok
    assert not verify_lake(lake, trusted, tenants=[TENANT]).ok


def test_misplaced_event_date_is_reported(lake_copy: LakeCopy) -> None:
    lake, _, trusted = lake_copy
    files = lake.data_files(lake.events_table(), tenants={TENANT})
    dates = sorted({f.event_date for f in files})
    src = next(f for f in files if f.event_date == dates[0])
    dst_dir = Path(lake.root) / "events" / f"tenant={TENANT}" / f"event_date={dates[1]}"
    src_path = Path(lake.root) / "events" / src.path
    # Move the bytes of one day's file over another day's file path.
    dst = next(dst_dir.glob("*.parquet"))
    dst.write_bytes(src_path.read_bytes())
    report = verify_lake(lake, trusted)
    assert "misplaced" in kinds(report)
    assert pc is not None


@pytest.mark.slow
def test_parallel_verify_reports_the_same_findings(
    lake_copy: LakeCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _, trusted = lake_copy
    path = biggest_file(lake)
    rewrite(path, lambda t: t.slice(1))
    one = verify_lake(lake, trusted, workers=1)
    monkeypatch.setattr(engines_module, "PARALLEL_MIN_EVENTS", 0)
    two = verify_lake(lake, trusted, workers=2)
    assert not one.ok
    assert one.as_dict() == two.as_dict()


def test_damaged_tiles_are_rebuilt_from_rows_that_match_the_signatures(lake_copy: LakeCopy) -> None:
    from lake.log import rebuild

    lake, _, trusted = lake_copy
    size = Lake.sealed_size(lake.checkpoints_table(), TENANT)
    target = Path(lake.root) / tile_path(TENANT, 0, 0, min(size, 256))
    target.write_bytes(bytes(len(target.read_bytes())))  # zeroed
    assert kinds(verify_lake(lake, trusted)) == {"bad_tiles"}
    assert rebuild(lake, TENANT, trusted) == size
    assert verify_lake(lake, trusted).ok


def test_tiles_are_not_rebuilt_over_tampered_rows(lake_copy: LakeCopy) -> None:
    from lake.contract import StorageError
    from lake.log import rebuild

    lake, _, trusted = lake_copy
    path = biggest_file(lake)

    def change(t: pa.Table) -> pa.Table:
        actors = t.column("actor_id").to_pylist()
        actors[0] = "mallory"
        return t.set_column(t.schema.get_field_index("actor_id"), "actor_id", pa.array(actors))

    rewrite(path, change)
    with pytest.raises(StorageError, match="do not match the signed checkpoint"):
        rebuild(lake, TENANT, trusted)
    with pytest.raises(StorageError, match="no checkpoint signed by a trusted key"):
        rebuild(lake, "contoso", [])
