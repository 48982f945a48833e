"""Key validity judged on what checkpoints sign (#17 A3), on real lakes in tmp_path.

The attacker holds a signing key that was rotated out (and may be revoked) and can write
anything in the lake directory, the `sealed_at` column included. What they cannot do is
make a checkpoint sign a time it did not sign.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from lake_testkit import Built, LakeAndHome

# verify_lake, checking that every finding it reports carries a FindingKind
from test_verify_kinds import verify_typed as verify_lake

from lake.contract import validate
from lake.log import (
    Checkpoint,
    NoteSigner,
    VerifierKey,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
    time_line,
)
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake
from lake.verify import Finding, Report
from lake.witness import Cosigner, cosignatures_in
from lake.write import append, rotate

TENANT = "northwind"


class Setup(LakeAndHome):
    """A copy of the golden lake with its own config home (rotation changes the home)."""

    def __init__(self, built: Built, tmp_path: Path) -> None:
        super().__init__(built, tmp_path)
        self.store = KeyStore(self.home)
        self.trust = TrustStore(self.home)
        self.old = self.signer

    def verify(self, trusted: list[VerifierKey] | None = None) -> Report:
        keys = self.trust.keys() if trusted is None else trusted
        return verify_lake(Lake.open(self.lake.root), keys, windows=self.trust.windows())

    def append(self, signer: NoteSigner, tag: str) -> None:
        events = [
            {"tenant": TENANT, "time": f"2026-11-2{i}T10:00:00Z", "category": "key_change",
             "action": "key.rotate", "outcome": "success", "actor": {"id": f"{tag}{i}@x.example"}}
            for i in range(3)
        ]  # fmt: skip
        append(self.lake, validate(events, namespace=tag.encode()).table, signer)

    def notes(self, tenant: str = TENANT) -> list[dict[str, object]]:
        rows = self.lake.read_checkpoints({tenant}).to_pylist()
        return sorted(rows, key=lambda r: (r["tree_size"], str(r["note"])))


@pytest.fixture
def setup(built_lake: Built, tmp_path: Path) -> Setup:
    return Setup(built_lake, tmp_path)


def _findings(report: Report, kind: str) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind]


def _rewrite_checkpoints(lake: Lake, change: Callable[[dict[str, object]], None]) -> None:
    """Rewrite every checkpoints data file of TENANT in place, row by row."""
    for path in sorted((Path(lake.root) / "checkpoints" / f"tenant={TENANT}").glob("*.parquet")):
        table = pq.read_table(path)
        rows = table.to_pylist()
        for row in rows:
            change(row)
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


def _attacker_appends(
    setup: Setup, stolen: NoteSigner, resign: Callable[[Checkpoint], Checkpoint] | None = None
) -> int:
    """Append a batch sealed by `stolen`, then set its row's sealed_at before any revocation.

    `resign` replaces the checkpoint the attacker signs (a backdated or timeless one).
    """
    events = [
        {"tenant": TENANT, "time": "2026-11-29T10:00:00Z", "category": "key_change",
         "action": "key.rotate", "outcome": "success", "actor": {"id": "mallory@x.example"}}
    ]  # fmt: skip
    append(setup.lake, validate(events, namespace=b"attack").table, stolen)
    size = Lake.sealed_size(setup.lake.checkpoints_table(), TENANT)

    def change(row: dict[str, object]) -> None:
        if row["tree_size"] != size:
            return
        row["sealed_at"] = datetime(2020, 1, 1, tzinfo=UTC)
        if resign is not None:
            cp = resign(Checkpoint.parse(parse_note(str(row["note"]))[0]))
            row["note"] = sign_checkpoint(cp, [stolen])

    _rewrite_checkpoints(setup.lake, change)
    return size


def test_every_checkpoint_signs_its_time_and_sealed_at_only_repeats_it(setup: Setup) -> None:
    setup.append(setup.old, "a")
    done = rotate(setup.lake, setup.store, setup.trust, "key-2")
    rows = setup.notes()
    assert rows and any(str(r["batch_id"]).startswith("key-rotation:") for r in rows)
    for row in rows:
        cp, _ = open_checkpoint(str(row["note"]), [setup.old.verifier_key])
        assert cp.signed_time is not None and cp.signed_time == row["sealed_at"]
        assert parse_note(str(row["note"]))[0].splitlines()[3] == time_line(cp.signed_time)
    # The old key's window ends just past the announcement it signed.
    announced = [r for r in rows if str(r["batch_id"]).startswith("key-rotation:")]
    moment = announced[0]["sealed_at"]
    assert isinstance(moment, datetime)
    window = setup.trust.windows()[setup.old.verifier_key.encode()]
    assert window.not_after == moment + timedelta(microseconds=1)
    assert done.announced[TENANT] == announced[0]["tree_size"]
    assert setup.verify().ok


def test_a_witness_cosignature_covers_the_time_line(setup: Setup) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    note = str(setup.notes()[-1]["note"])
    body = parse_note(note)[0]
    witness = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    cosigned = note + witness.cosign(body) + "\n"
    assert set(cosignatures_in(cosigned, [witness.key])) == {"witness.example/w1"}
    # Another time in the same tree head: the cosignature no longer verifies.
    lines = body.splitlines()
    lines[3] = time_line(datetime(2020, 1, 1, tzinfo=UTC))
    forged = cosigned.replace(body, "\n".join(lines) + "\n")
    assert cosignatures_in(forged, [witness.key]) == {}


def test_rewriting_sealed_at_changes_nothing(setup: Setup) -> None:
    rotate(setup.lake, setup.store, setup.trust, "key-2")
    setup.append(setup.store.active(), "after")

    def reverse(row: dict[str, object]) -> None:
        # Later rows get earlier times: the old code's "sealing order" turned upside down.
        size = row["tree_size"]
        assert isinstance(size, int)
        row["sealed_at"] = datetime(2030, 1, 1, tzinfo=UTC) - timedelta(seconds=size)

    _rewrite_checkpoints(setup.lake, reverse)
    assert setup.verify().ok


def test_a_stolen_rotated_out_key_cannot_backdate_a_later_tree_head(setup: Setup) -> None:
    stolen = setup.old
    rotate(setup.lake, setup.store, setup.trust, "key-2")
    setup.append(setup.store.active(), "honest")  # the new key seals on
    sealed = [t for r in setup.notes() if isinstance(t := r["sealed_at"], datetime)]
    last_honest = max(sealed)
    # Signed inside the stolen key's old window: a time before its rotation.
    backdated = last_honest - timedelta(days=1)
    size = _attacker_appends(
        setup, stolen, lambda cp: Checkpoint.at(cp.origin, cp.tree_size, cp.root_hash, backdated)
    )
    report = setup.verify()
    chain = _findings(report, "bad_chain")
    assert [(f.tenant, f.tree_size) for f in chain] == [(TENANT, size)]
    assert "goes backwards" in chain[0].message
    assert {f.kind for f in report.findings} == {"bad_chain"}


def test_a_revoked_key_signing_now_is_not_valid_whatever_sealed_at_says(setup: Setup) -> None:
    stolen = setup.old
    rotate(setup.lake, setup.store, setup.trust, "key-2")
    setup.trust.set_attr(stolen.verifier_key, "revoked", datetime.now(UTC))
    size = _attacker_appends(setup, stolen)  # sealed_at rewritten to 2020
    report = setup.verify()
    bad = _findings(report, "key_not_valid")
    assert [(f.tenant, f.tree_size) for f in bad] == [(TENANT, size)]
    assert "revoked at" in bad[0].message


def test_an_old_format_checkpoint_by_a_revoked_key_cannot_prove_its_time(setup: Setup) -> None:
    stolen = setup.old
    rotate(setup.lake, setup.store, setup.trust, "key-2")
    setup.trust.set_attr(stolen.verifier_key, "revoked", datetime.now(UTC))
    size = _attacker_appends(
        setup, stolen, lambda cp: Checkpoint(cp.origin, cp.tree_size, cp.root_hash)
    )
    report = setup.verify()
    bad = _findings(report, "key_not_valid")
    assert [(f.tenant, f.tree_size) for f in bad] == [(TENANT, size)]
    assert "no signed time" in bad[0].message


def _strip_times(setup: Setup, signer: NoteSigner) -> None:
    """Make the lake look written before checkpoints carried a time."""

    def change(row: dict[str, object]) -> None:
        cp = Checkpoint.parse(parse_note(str(row["note"]))[0])
        row["note"] = sign_checkpoint(Checkpoint(cp.origin, cp.tree_size, cp.root_hash), [signer])

    _rewrite_checkpoints(setup.lake, change)


def test_a_lake_from_before_signed_times_verifies_and_survives_a_rotation(setup: Setup) -> None:
    _strip_times(setup, setup.old)
    assert setup.verify().ok
    # The first rotation after the upgrade bounds the old key's window; its timeless
    # checkpoints are vouched for by the announcement it signed (same tree, larger size).
    rotate(setup.lake, setup.store, setup.trust, "key-2")
    setup.append(setup.store.active(), "after")
    report = setup.verify()
    assert report.ok, report.findings
    # But once revoked, its timeless checkpoints cannot show they came before.
    setup.trust.set_attr(setup.old.verifier_key, "revoked", datetime.now(UTC))
    revoked = setup.verify()
    assert {f.kind for f in revoked.findings if f.tenant == TENANT} == {"key_not_valid"}


def test_a_timeless_checkpoint_after_timed_ones_is_a_break_in_the_chain(setup: Setup) -> None:
    size = _attacker_appends(
        setup, setup.old, lambda cp: Checkpoint(cp.origin, cp.tree_size, cp.root_hash)
    )
    chain = _findings(setup.verify(), "bad_chain")
    assert [(f.tenant, f.tree_size) for f in chain] == [(TENANT, size)]
    assert "no signed time" in chain[0].message


def test_the_honest_rotate_then_revoke_history_verifies(setup: Setup) -> None:
    setup.append(setup.old, "before")
    rotate(setup.lake, setup.store, setup.trust, "key-2")  # in the same second as the seal
    setup.append(setup.store.active(), "after")
    # The old key is stolen after its rotation: nothing it signed in its time is doubted.
    setup.trust.set_attr(setup.old.verifier_key, "revoked", datetime.now(UTC))
    report = setup.verify()
    assert report.ok, report.findings
    # A verifier that trusts only the old key follows the announcement to the new one.
    assert verify_lake(Lake.open(setup.lake.root), [setup.old.verifier_key]).ok
    sizes = pc.max(setup.lake.read_checkpoints({TENANT}).column("tree_size")).as_py()
    assert sizes == next(t.sealed_size for t in report.tenants if t.tenant == TENANT)
