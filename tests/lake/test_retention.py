"""Retention and legal hold on a real lake: exact removal, signed records, verify after."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest

from lake.contract import READ_AUDIT_TENANT, UsageError
from lake.log import NoteSigner, VerifierKey
from lake.proofs import check_proof, prove
from lake.secrets import Principal
from lake.storage import APPEND_ONLY, POLICY_PATH, Lake, load_policy, save_policy
from lake.verify import verify_lake
from lake.write import apply, set_hold, set_policy, status

OPERATOR = Principal("admin", {}, operator=True)


def _dates(lake: Lake, tenant: str) -> set[date]:
    return {f.event_date for f in lake.data_files(lake.events_table(), tenants={tenant})}


def _now(lake: Lake) -> datetime:
    newest = max(f.event_date for f in lake.data_files(lake.events_table()))
    return datetime.combine(newest + timedelta(days=1), time(12), tzinfo=UTC)


def test_apply_removes_exactly_the_expired_partitions_and_verify_passes(
    lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]],
) -> None:
    lake, signer, keys = lake_copy
    now = _now(lake)
    before = _dates(lake, "contoso")
    assert len(before) >= 3
    set_policy(lake, signer, OPERATOR, "contoso", days=2, now=now)
    st = {s.tenant: s for s in status(lake, now=now)}
    cutoff = now.date() - timedelta(days=2)
    assert st["contoso"].due_dates == sorted(d for d in before if d < cutoff)
    assert st["globex"].due_dates == []  # default: seven years
    files = lake.data_files(lake.events_table(), tenants={"contoso"})
    kept = lake.read_rows([f for f in files if f.event_date >= cutoff], ["event_id"])
    keep = sorted(kept.column("event_id").to_pylist())

    done = apply(lake, signer, OPERATOR, now=now)
    assert [(r.tenant, r.refused) for r in done] == [("contoso", None)]
    assert _dates(lake, "contoso") == {d for d in before if d >= cutoff}
    left = lake.read_rows(lake.data_files(lake.events_table(), tenants={"contoso"}), ["event_id"])
    assert sorted(left.column("event_id").to_pylist()) == keep
    report = verify_lake(lake, keys)
    assert report.ok, report.findings
    # A surviving event still proves against the latest checkpoint.
    proof = prove(lake, "contoso", keep[0])
    assert "signed by a trusted key" in check_proof(proof, keys)
    # The lake's own log holds the signed records of what happened.
    audit = lake.read_rows(lake.data_files(lake.events_table(), tenants={READ_AUDIT_TENANT}))
    mine = audit.filter(pc.equal(audit.column("target_id"), "contoso")).sort_by("seq")
    actions = mine.column("action")
    assert actions.to_pylist() == ["retention.set", "retention.apply"]
    assert apply(lake, signer, OPERATOR, now=now) == []  # nothing more is due


def test_a_hold_refuses_removal(lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]]) -> None:
    lake, signer, _ = lake_copy
    now = _now(lake)
    before = _dates(lake, "globex")
    set_policy(lake, signer, OPERATOR, "globex", days=1, now=now)
    set_hold(lake, signer, OPERATOR, "globex", "matter 2026-114", now=now)
    done = apply(lake, signer, OPERATOR, now=now)
    assert [(r.tenant, r.refused) for r in done] == [("globex", "under legal hold")]
    assert _dates(lake, "globex") == before
    with pytest.raises(UsageError, match="--reason"):
        set_hold(lake, signer, OPERATOR, "globex", "  ", now=now)
    set_hold(lake, signer, OPERATOR, "globex", "matter closed", clear=True, now=now)
    assert [r.refused for r in apply(lake, signer, OPERATOR, now=now)] == [None]
    assert len(_dates(lake, "globex")) < len(before)


def test_the_policy_document_keeps_its_bytes(
    lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]],
) -> None:
    lake, signer, _ = lake_copy
    now = _now(lake)
    set_policy(lake, signer, OPERATOR, "contoso", preset="pci-dss", now=now)
    set_hold(lake, signer, OPERATOR, "globex", "matter 7", now=now)
    at = now.isoformat()
    # The document exactly as the code before the typed records wrote it: a dict, dumped
    # with sorted keys and a two-space indent. An old lake's file must read and write back.
    old = {
        "tenants": {"contoso": {"days": 365, "preset": "pci-dss", "set_by": "admin", "set_at": at}},
        "holds": {"globex": {"reason": "matter 7", "set_by": "admin", "set_at": at}},
    }
    written = lake.read_bytes(POLICY_PATH)
    assert written == orjson.dumps(old, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    policy = load_policy(lake)
    assert policy.holds["globex"].reason == "matter 7"
    assert policy.tenants["contoso"].days == 365
    save_policy(lake, policy)
    assert lake.read_bytes(POLICY_PATH) == written
    # A key a newer version added survives a read and write by this one.
    lake.write_bytes(POLICY_PATH, orjson.dumps({**old, "zones": {"contoso": "eu"}}))
    save_policy(lake, load_policy(lake))
    assert orjson.loads(lake.read_bytes(POLICY_PATH))["zones"] == {"contoso": "eu"}


def test_a_removal_without_a_record_is_a_finding(
    lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]],
) -> None:
    lake, _, keys = lake_copy
    oldest = min(_dates(lake, "northwind"))
    table = lake.events_table()
    table.alter.set_table_properties({"delta.appendOnly": "false"})
    lake.events_table().delete(
        predicate=f"tenant = 'northwind' AND event_date = '{oldest.isoformat()}'"
    )
    lake.events_table().alter.set_table_properties(APPEND_ONLY)
    report = verify_lake(lake, keys)
    kinds = {(f.tenant, f.kind) for f in report.findings}
    assert ("northwind", "missing") in kinds


def test_policy_errors(
    lake_copy: tuple[Lake, NoteSigner, list[VerifierKey]], tmp_path: Path
) -> None:
    lake, signer, _ = lake_copy
    with pytest.raises(UsageError, match="unknown preset"):
        set_policy(lake, signer, OPERATOR, "contoso", preset="gdpr-ish")
    with pytest.raises(UsageError, match="either"):
        set_policy(lake, signer, OPERATOR, "contoso")
    entry = set_policy(lake, signer, OPERATOR, "contoso", preset="pci-dss")
    assert entry["days"] == 365
