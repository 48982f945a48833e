"""Which tenants a request reaches (`lake.secrets.scoped_tenants`), and the checkpoint
export that writes what a principal may read to a folder (`lake.proofs.export_checkpoints`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.contract import UsageError, validate
from lake.log import NoteSigner, VerifierKey
from lake.proofs import export_checkpoints, latest_checkpoint
from lake.secrets import AccessDenied, Permission, Principal, Role, scoped_tenants
from lake.storage import Lake
from lake.write import append

Copy = tuple[Lake, NoteSigner, list[VerifierKey]]
ADMIN = Principal("admin", {}, operator=True)


def test_the_operator_naming_no_tenant_reaches_every_tenant(lake_copy: Copy) -> None:
    lake, _, _ = lake_copy
    assert scoped_tenants(ADMIN, lake, (), Permission.VERIFY) is None
    first = lake.tenants()[0]
    assert scoped_tenants(ADMIN, lake, (first,), Permission.VERIFY) == [first]


def test_a_principal_reaches_only_its_granted_tenants(lake_copy: Copy) -> None:
    lake, _, _ = lake_copy
    mine, other = lake.tenants()[:2]
    bob = Principal("bob", {mine: Role.AUDITOR})
    assert scoped_tenants(bob, lake, (), Permission.VERIFY) == [mine]
    with pytest.raises(AccessDenied):
        scoped_tenants(bob, lake, (other,), Permission.VERIFY)
    viewer = Principal("vera", {mine: Role.VIEWER})  # may read events, not verify
    with pytest.raises(AccessDenied):
        scoped_tenants(viewer, lake, (mine,), Permission.VERIFY)


def test_unknown_and_malformed_tenants_are_refused(lake_copy: Copy) -> None:
    lake, _, _ = lake_copy
    with pytest.raises(AccessDenied, match="no-such-tenant"):
        scoped_tenants(ADMIN, lake, ("no-such-tenant",), Permission.VERIFY)
    with pytest.raises(UsageError):
        scoped_tenants(ADMIN, lake, ("../etc",), Permission.VERIFY)


def test_export_writes_each_latest_checkpoint_once(lake_copy: Copy, tmp_path: Path) -> None:
    lake, signer, _ = lake_copy
    dest = tmp_path / "worm"
    written = export_checkpoints(lake, ADMIN, dest)
    assert sorted(p.parent.name for p in written) == sorted(lake.tenants())
    for path in written:
        cp = latest_checkpoint(lake, path.parent.name)
        assert path == dest / lake.name / path.parent.name / f"{cp['tree_size']}.txt"
        assert path.read_text() == cp["note"]
    assert export_checkpoints(lake, ADMIN, dest) == []  # nothing new: nothing rewritten
    tenant = lake.tenants()[0]
    event = {"tenant": tenant, "time": "2026-11-02T10:00:00Z", "category": "authentication",
             "action": "login", "outcome": "success", "actor": {"id": "late@x"}}  # fmt: skip
    append(lake, validate([event], namespace=b"late").table, signer)
    [new] = export_checkpoints(lake, ADMIN, dest)
    assert new.parent.name == tenant and len(list(new.parent.iterdir())) == 2  # old one kept


def test_export_passes_over_tenants_the_principal_may_not_read(
    lake_copy: Copy, tmp_path: Path
) -> None:
    lake, _, _ = lake_copy
    mine, other = lake.tenants()[:2]
    bob = Principal("bob", {mine: Role.AUDITOR})
    assert [p.parent.name for p in export_checkpoints(lake, bob, tmp_path)] == [mine]
    assert export_checkpoints(lake, bob, tmp_path / "b", [other]) == []
    assert [p.parent.name for p in export_checkpoints(lake, ADMIN, tmp_path / "c", [other])] == [
        other
    ]
