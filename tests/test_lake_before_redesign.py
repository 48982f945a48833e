"""A lake written before the redesign (issue 18) still reads and verifies: the format held.

tests/fixtures/lake-before-redesign/ was built by the code at commit bd231af (the last
commit before lake/ became subpackages), through its CLI:

    auditlake --lake lake demo --days 2 --events-per-day 20
    auditlake --lake lake keys rotate --name rotated-key
    auditlake --lake lake ingest more.jsonl        (two contoso events, after the rotation)
    auditlake --lake lake prove 0192f0a0-0000-7000-8000-000000000012 --tenant contoso
    auditlake --lake lake checkpoint export --tenant contoso
    auditlake --lake elake init --name enc-fixture --encrypt
    auditlake --lake elake ingest enc2.jsonl       (five acme events)
    auditlake --lake elake keys shred --tenant acme --subject mallory@contoso.example --yes

`verify.json`, `everify.json`, `old-proof.json`, `checkpoint.txt` and
`expected-events.json` are what that code printed or read back. Each test here runs
today's console script on a copy and compares.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "lake-before-redesign"
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
CONTOSO_EVENT = "0192f0a0-0000-7000-8000-000000000012"


def _private(home: Path) -> None:
    """Git keeps no modes: the config home must be 0700 and its files 0600 again."""
    for path in [home, *home.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.fixture
def old(tmp_path: Path) -> Path:
    copy = tmp_path / "old"
    shutil.copytree(FIXTURE, copy)
    _private(copy / "home")
    _private(copy / "ehome")
    return copy


def run(old: Path, lake: str, home: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert AUDITLAKE, "the auditlake console script is not installed beside this Python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}
    env |= {"AUDITLAKE_HOME": str(old / home), "AUDITLAKE_LAKE": str(old / lake)}
    done = subprocess.run(
        [AUDITLAKE, *args], env=env, cwd=old, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """What verify found per tenant (the lake's own path differs between the runs)."""
    return {
        t["tenant"]: (t["ok"], t["events"], t["checkpoints"], t["key_names"], t["findings"])
        for t in report["tenants"]
    }


@pytest.mark.parametrize(("lake", "home", "expected"), [
    ("lake", "home", "verify.json"),
    ("elake", "ehome", "everify.json"),
])  # fmt: skip
def test_an_old_lake_verifies_as_it_did(old: Path, lake: str, home: str, expected: str) -> None:
    done = run(old, lake, home, "verify", "--format", "json")

    assert done.returncode == 0, done.stderr
    report, before = json.loads(done.stdout), json.loads((old / expected).read_text())
    assert report["ok"] is True
    assert report["events"] == before["events"] > 0
    old_tenants = summary(before)
    # Reading through the CLI appends to the read audit (tenant `auditlake`): it may grow.
    assert {t: s for t, s in summary(report).items() if t != "auditlake"} == {
        t: s for t, s in old_tenants.items() if t != "auditlake"
    }
    assert summary(report)["auditlake"][0] is True


def test_an_old_proof_checks_and_a_new_proof_is_the_same_bytes(old: Path) -> None:
    checked = run(old, "lake", "home", "verify-proof", str(old / "old-proof.json"))
    proved = run(old, "lake", "home", "prove", CONTOSO_EVENT, "--tenant", "contoso")

    assert checked.returncode == 0, checked.stderr
    assert proved.returncode == 0, proved.stderr
    assert json.loads(proved.stdout) == json.loads((old / "old-proof.json").read_text())


def test_an_old_checkpoint_is_consistent_with_the_lake(old: Path) -> None:
    done = run(old, "lake", "home", "verify", "--since-checkpoint", str(old / "checkpoint.txt"))

    assert done.returncode == 0, done.stdout + done.stderr


def test_old_encrypted_fields_decrypt_and_shredded_ones_stay_gone(old: Path) -> None:
    done = run(old, "elake", "ehome", "search", "--tenant", "acme", "--format", "jsonl")

    assert done.returncode == 0, done.stderr
    rows = {r["event_id"]: r for r in map(json.loads, done.stdout.splitlines())}
    expected = json.loads((old / "expected-events.json").read_text())["elake"]
    assert len(rows) == len(expected) == 5
    for before in expected:
        row = rows[before["event_id"]]
        assert row["actor_ip"] == before["actor_ip"], before["event_id"]
        details = (
            row["details"]
            if row["details"] is None
            else json.dumps(
                row["details"] if isinstance(row["details"], dict) else json.loads(row["details"]),
                separators=(",", ":"),
                sort_keys=True,
            )
        )
        assert details == before["details"], before["event_id"]
    assert any(r["details"] is not None for r in expected)  # not all shredded: decrypts


def test_a_changed_event_in_the_old_lake_is_still_found(old: Path) -> None:
    # Guards the tests above: the copy is really read, so a changed event fails verify.
    victim = sorted((old / "lake" / "events").rglob("tenant=contoso/**/*.parquet"))[0]
    table = pq.read_table(victim)
    actors = table.column("actor_id").to_pylist()
    actors[0] = "someone-else@contoso.example"
    index = table.schema.get_field_index("actor_id")
    pq.write_table(table.set_column(index, "actor_id", pa.array(actors, pa.string())), victim)

    done = run(old, "lake", "home", "verify", "--format", "json")

    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is False
