"""Key rotation, retirement, revocation and the environment key backend, end to end."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


def _ingest(run: Run, tmp_path: Path, tag: str, env: dict[str, str] | None = None) -> None:
    events = [
        {"tenant": "contoso", "time": f"2026-11-27T14:00:0{i}Z", "category": "key_change",
         "action": "key.rotate", "outcome": "success", "actor": {"id": f"{tag}{i}@contoso.example"}}
        for i in range(3)
    ]  # fmt: skip
    src = tmp_path / f"{tag}.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = run("ingest", src, env=env)
    assert result.returncode == 0, result


def _kinds(result: object) -> set[str]:
    doc = json.loads(result.stdout)  # type: ignore[attr-defined]
    return {f["kind"] for t in doc["tenants"] for f in t["findings"]}


def test_rotation_keeps_history_verifiable_and_old_trust_follows_the_chain(
    run: Run,
    demo_copy: DemoLake,
    home: Path,
    tmp_path: Path,
    make_env: Callable[[Path, Path], dict[str, str]],
) -> None:
    old_key = demo_copy.verifier_key
    rotated = run("keys", "rotate", "--name", "demo-key-2")
    assert rotated.returncode == 0, rotated
    new_key = rotated.stdout.strip()
    assert "announced at size" in rotated.stderr
    _ingest(run, tmp_path, "after")
    assert run("verify").returncode == 0  # the config home trusts both, with windows
    # A verifier elsewhere that only ever trusted the OLD key: the chain leads it on.
    elsewhere = make_env(tmp_path / "other-home", demo_copy.lake)
    chained = run("verify", "--trusted-key", old_key, "--format", "json", env=elsewhere)
    assert chained.returncode == 0, chained
    # (Trusting only the NEW key, the old history is unvouched for: the chain runs forward.)
    backward = run("verify", "--trusted-key", rotated.stdout.strip(), "--format", "json",
                   env=elsewhere)  # fmt: skip
    assert backward.returncode == 1 and _kinds(backward) == {"untrusted_key"}
    # Retire the old private key: gone from disk, history still verifies.
    old_name = old_key.split("+")[0]
    assert run("keys", "retire", old_name).returncode == 0
    assert not (home / "keys" / f"{old_name}.key").exists()
    assert (home / "keys" / f"{old_name}.pub").exists()
    assert run("verify").returncode == 0
    run("keys", "retire", "demo-key-2").assert_usage_error("active key")
    # The new key is compromised from the past: its later checkpoints become findings.
    assert run("keys", "revoke", "demo-key-2", "--at", "2020-01-01").returncode == 0
    revoked = run("verify", "--format", "json")
    assert revoked.returncode == 1
    assert "key_not_valid" in _kinds(revoked)
    assert new_key.startswith("demo-key-2+")


def test_the_environment_key_backend_signs(run: Run, demo_copy: DemoLake, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )  # fmt: skip

    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    env = {
        **demo_copy.env,
        "AUDITLAKE_SIGNING_KEY": base64.b64encode(seed).decode(),
        "AUDITLAKE_SIGNING_KEY_NAME": "env-key",
    }
    _ingest(run, tmp_path, "env", env=env)
    cps = run("sql", "SELECT DISTINCT key_name FROM checkpoints WHERE tenant = 'contoso'",
              "--format", "json").json()  # fmt: skip
    assert {"env-key"} <= {r["key_name"] for r in cps}
    bad = {**env, "AUDITLAKE_SIGNING_KEY": "not base64!"}
    run("ingest", tmp_path / "env.jsonl", env=bad).assert_usage_error("AUDITLAKE_SIGNING_KEY")


def test_encrypted_lake_and_crypto_shredding_through_the_cli(
    run: Run, lake: Path, home: Path, tmp_path: Path
) -> None:
    assert run("init", "--name", "enc", "--encrypt").returncode == 0
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    events = [
        {"tenant": "acme", "time": "2026-11-27T10:00:00Z", "category": "authentication",
         "action": "login", "outcome": "failure", "actor": {"id": "a@x", "ip": "198.51.100.7"},
         "details": {"secret": "s3cr3t"}}
    ]  # fmt: skip
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert run("ingest", src).returncode == 0
    raw = b"".join(p.read_bytes() for p in lake.rglob("*.parquet"))
    assert b"s3cr3t" not in raw and b"198.51.100.7" not in raw
    shown = run("search", "--ip", "198.51.100.7", "--format", "json").json()
    assert shown[0]["details"] == {"secret": "s3cr3t"}
    run("keys", "shred", "--tenant", "acme").assert_usage_error("--yes")
    assert run("keys", "shred", "--tenant", "acme", "--yes").returncode == 0
    assert run("verify").returncode == 0
    after = run("search", "--tenant", "acme", "--format", "json").json()
    assert after[0]["details"] is None and after[0]["actor_ip"] is None
    trail = run("sql", "SELECT action FROM query_audit WHERE action = 'key.shred'",
                "--format", "json").json()  # fmt: skip
    assert trail == [{"action": "key.shred"}]


def _two_subjects(run: Run, tmp_path: Path) -> None:
    events = [
        {"tenant": "acme", "time": f"2026-11-27T10:00:0{i}Z", "category": "authentication",
         "action": "login", "outcome": "failure", "actor": {"id": actor, "ip": "198.51.100.7"},
         "details": {"who": actor}}
        for i, actor in enumerate(["victim@x", "bystander@x", "victim@x"])
    ]  # fmt: skip
    src = tmp_path / "two.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert run("init", "--name", "enc", "--encrypt").returncode == 0
    assert run("ingest", src).returncode == 0


def _details(run: Run) -> dict[str, object]:
    rows = run("sql", "SELECT actor_id, details FROM events WHERE tenant = 'acme'",
               "--format", "json").json()  # fmt: skip
    return {r["actor_id"]: r["details"] for r in rows}


def test_a_legal_hold_refuses_crypto_shredding_until_it_is_cleared(
    run: Run, tmp_path: Path
) -> None:
    _two_subjects(run, tmp_path)
    assert run("hold", "set", "--tenant", "acme", "--reason", "case-42").returncode == 0
    for extra in ((), ("--subject", "victim@x")):
        refused = run("keys", "shred", "--tenant", "acme", *extra, "--yes")
        refused.assert_usage_error("legal hold", "case-42")
        assert len(refused.stderr_lines) == 1, refused
    assert _details(run) == {"victim@x": {"who": "victim@x"}, "bystander@x": {"who": "bystander@x"}}
    trail = run("sql", "SELECT action FROM query_audit WHERE action = 'key.shred'",
                "--format", "json").json()  # fmt: skip
    assert trail == []  # a refused shred is not recorded as done
    assert run("hold", "clear", "--tenant", "acme").returncode == 0
    assert (
        run("keys", "shred", "--tenant", "acme", "--subject", "victim@x", "--yes").returncode == 0
    )
    assert _details(run) == {"victim@x": None, "bystander@x": {"who": "bystander@x"}}


def test_a_copy_of_the_lake_from_before_a_shred_does_not_bring_the_subject_back(
    run: Run,
    lake: Path,
    home: Path,
    tmp_path: Path,
    make_env: Callable[[Path, Path], dict[str, str]],
) -> None:
    _two_subjects(run, tmp_path)
    old_master = (home / "master.key").read_bytes()
    shutil.copytree(lake / "_auditlake" / "dek", tmp_path / "dek-before")
    shutil.copytree(lake, tmp_path / "lake-before")
    assert (
        run("keys", "shred", "--tenant", "acme", "--subject", "victim@x", "--yes").returncode == 0
    )
    # The old master key is gone from the config home, and nothing else is left over.
    assert (home / "master.key").read_bytes() != old_master
    assert sorted(p.name for p in home.glob("master.key*")) == ["master.key"]
    assert all(old_master.strip() not in p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert _details(run) == {"victim@x": None, "bystander@x": {"who": "bystander@x"}}
    # Restoring the wrapped keys from before the shred: the subject stays unreadable.
    live = tmp_path / "dek-after"
    shutil.copytree(lake / "_auditlake" / "dek", live)
    shutil.rmtree(lake / "_auditlake" / "dek")
    shutil.copytree(tmp_path / "dek-before", lake / "_auditlake" / "dek")
    run("sql", "SELECT details FROM events WHERE actor_id = 'victim@x'").assert_usage_error(
        "does not hold", "keys shred"
    )
    assert run("verify").returncode == 0
    # So does a whole copy of the lake taken before the shred.
    old_env = make_env(home, tmp_path / "lake-before")
    run("sql", "SELECT details FROM events", env=old_env).assert_usage_error("does not hold")
    assert run("verify", env=old_env).returncode == 0
    # With the live key files back, everyone else reads as before.
    shutil.rmtree(lake / "_auditlake" / "dek")
    shutil.copytree(live, lake / "_auditlake" / "dek")
    assert _details(run) == {"victim@x": None, "bystander@x": {"who": "bystander@x"}}
    assert run("verify").returncode == 0


def test_shredding_refuses_a_master_key_from_the_environment(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    env_key = {**env, "AUDITLAKE_MASTER_KEY": base64.b64encode(b"k" * 32).decode()}
    assert run("init", "--name", "enc", "--encrypt", env=env_key).returncode == 0
    run("keys", "shred", "--tenant", "acme", "--yes", env=env_key).assert_usage_error(
        "AUDITLAKE_MASTER_KEY cannot be rotated"
    )


def _stolen_seed(home: Path, name: str) -> str:
    """The raw Ed25519 seed of a key in the home, as AUDITLAKE_SIGNING_KEY takes it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )  # fmt: skip

    key = load_pem_private_key((home / "keys" / f"{name}.key").read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return base64.b64encode(
        key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    ).decode()


def _backdate_sealed_at(lake: Path, old: str) -> list[tuple[str, int]]:
    """Set sealed_at of the rotation rows and of the stolen key's later rows to just after
    the last honest row's, so that in sealed_at order they look sealed before the rotation
    ended and before the revocation. Returns the (tenant, size) of the stolen key's rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    attacked: list[tuple[str, int]] = []
    for part in sorted((lake / "checkpoints").glob("tenant=*")):
        tenant = part.name.split("=", 1)[1]
        files = sorted(part.glob("*.parquet"))
        rows = [(f, r) for f in files for r in pq.read_table(f).to_pylist()]
        rotations = [r["tree_size"] for _, r in rows if r["batch_id"].startswith("key-rotation:")]
        if not rotations:
            continue
        rotated = int(max(rotations))

        def later(r: dict[str, object], rotated: int = rotated) -> bool:
            rot = str(r["batch_id"]).startswith("key-rotation:")
            size = r["tree_size"]
            assert isinstance(size, int)
            return rot or (r["key_name"] == old and size > rotated)

        honest = max(r["sealed_at"] for _, r in rows if not later(r))
        for f in files:
            table = pq.read_table(f)
            changed = table.to_pylist()
            for r in changed:
                if later(r):
                    r["sealed_at"] = honest + timedelta(microseconds=1)
                    if not str(r["batch_id"]).startswith("key-rotation:"):
                        attacked.append((tenant, r["tree_size"]))
            pq.write_table(pa.Table.from_pylist(changed, schema=table.schema), f)
    return attacked


def test_a_stolen_revoked_key_cannot_hide_behind_a_rewritten_sealed_at(
    run: Run, demo_copy: DemoLake, home: Path, tmp_path: Path
) -> None:
    old = demo_copy.verifier_key.split("+")[0]
    seed = _stolen_seed(home, old)  # the attacker copies the key before it is retired
    assert run("keys", "rotate", "--name", "demo-key-2").returncode == 0
    assert run("keys", "retire", old).returncode == 0
    revoked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert run("keys", "revoke", old, "--at", revoked_at).returncode == 0
    # Later, the attacker appends a batch sealed with the stolen key...
    stolen = {**demo_copy.env, "AUDITLAKE_SIGNING_KEY": seed, "AUDITLAKE_SIGNING_KEY_NAME": old}
    _ingest(run, tmp_path, "mallory", env=stolen)
    # ... and moves its unsigned sealed_at to before the rotation and the revocation.
    attacked = _backdate_sealed_at(demo_copy.lake, old)
    assert any(t == "contoso" for t, _ in attacked), attacked
    result = run("verify", "--format", "json")
    assert result.returncode == 1, result
    found = {
        (t["tenant"], f["kind"], f.get("tree_size"))
        for t in result.json()["tenants"]
        for f in t["findings"]
    }
    assert found == {(t, "key_not_valid", size) for t, size in attacked}


def test_an_honest_rotation_then_a_revocation_verifies(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    old = demo_copy.verifier_key.split("+")[0]
    _ingest(run, tmp_path, "before")
    assert run("keys", "rotate", "--name", "demo-key-2").returncode == 0
    _ingest(run, tmp_path, "after")
    # The old key leaks after it was rotated out: what it signed in its time stands.
    revoked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert run("keys", "revoke", old, "--at", revoked_at).returncode == 0
    result = run("verify", "--format", "json")
    assert result.returncode == 0, result
    assert result.json()["ok"] is True


def test_an_interrupted_shred_is_named_by_every_command_until_run_again(
    run: Run, home: Path, tmp_path: Path
) -> None:
    from lake.secrets import _masterkey as masterkey

    _two_subjects(run, tmp_path)
    old_master = (home / "master.key").read_bytes()
    masterkey.begin_rotation(home)  # where a kill -9 after step (1) of a shred leaves it

    listed = run("keys", "list")
    assert listed.returncode == 0, listed
    assert "a `keys shred` stopped before it finished" in listed.stderr
    assert "run the same `keys shred` again" in listed.stderr

    shred = run("keys", "shred", "--tenant", "acme", "--subject", "victim@x", "--yes")
    assert shred.returncode == 0, shred
    assert (home / "master.key").read_bytes() != old_master
    assert sorted(p.name for p in home.glob("master.key*")) == ["master.key"]
    assert "stopped before it finished" not in run("keys", "list").stderr
    assert _details(run) == {"victim@x": None, "bystander@x": {"who": "bystander@x"}}
