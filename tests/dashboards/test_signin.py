"""Sign-in tokens: the store (lake.secrets) and `auditlake access token`, through the CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from dashkit import Demo, cli

from lake.contract import ConfigError, UsageError
from lake.secrets import SIGNIN_FILE, SIGNIN_PREFIX, SigninStore, digest


def test_a_token_resolves_to_its_principal_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    store = SigninStore(tmp_path / "home")
    alice = store.create("alice")
    bob = store.create("bob")

    assert alice.startswith(SIGNIN_PREFIX) and alice != bob
    assert store.resolve(alice) == "alice"
    assert store.resolve(f"  {bob}\n") == "bob"  # pasted with whitespace
    path = tmp_path / "home" / SIGNIN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert alice not in text and bob not in text
    assert digest(alice) in text
    assert [t.principal for t in store.list()] == ["alice", "bob"]


@pytest.mark.parametrize("presented", ["", "alice", "als_", "als_" + "A" * 43, "alk_whatever"])
def test_unknown_tokens_resolve_to_nobody(tmp_path: Path, presented: str) -> None:
    store = SigninStore(tmp_path)
    store.create("alice")

    assert store.resolve(presented) is None


def test_revoke_removes_every_token_of_a_principal(tmp_path: Path) -> None:
    store = SigninStore(tmp_path)
    first, second, other = store.create("alice"), store.create("alice"), store.create("bob")

    assert store.revoke("alice") == 2
    assert store.resolve(first) is None and store.resolve(second) is None
    assert store.resolve(other) == "bob"
    assert store.revoke("alice") == 0


def test_invalid_principal_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid principal"):
        SigninStore(tmp_path).create("../alice")


def test_a_store_others_may_write_is_refused(tmp_path: Path) -> None:
    store = SigninStore(tmp_path)
    token = store.create("alice")
    store.path.chmod(0o666)

    with pytest.raises(ConfigError, match="chmod 600"):
        store.resolve(token)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"version": 1}',
        '{"version": 1, "tokens": {"ab": {"created_at": "x"}}}',
        '{"version": 1, "tokens": {"ab": {"principal": "../x", "created_at": "x"}}}',
    ],
)
def test_a_damaged_store_is_a_config_error(tmp_path: Path, content: str) -> None:
    store = SigninStore(tmp_path)
    store.path.write_text(content)
    store.path.chmod(0o600)

    with pytest.raises(ConfigError, match="unreadable"):
        store.resolve("als_x")


def test_access_token_command(demo: Demo, tmp_path: Path) -> None:
    made = cli("access", "token", "alice", env=demo.env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith(SIGNIN_PREFIX) and "\n" not in token
    assert SigninStore(demo.home).resolve(token) == "alice"

    ungranted = cli("access", "token", "carol", env=demo.env, cwd=tmp_path)
    assert ungranted.returncode == 0
    assert "carol holds no grant yet" in ungranted.stderr

    refused = cli("--as", "alice", "access", "token", "bob", env=demo.env, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "reserved for the local operator" in refused.stderr

    revoked = cli("access", "token", "alice", "--revoke", env=demo.env, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert SigninStore(demo.home).resolve(token) is None
    again = cli("access", "token", "alice", "--revoke", env=demo.env, cwd=tmp_path)
    assert again.returncode == 2 and "holds no sign-in token" in again.stderr

    doc = json.loads((demo.home / SIGNIN_FILE).read_text())
    assert doc["version"] == 1 and "alice" not in {e["principal"] for e in doc["tokens"].values()}


def test_dashboard_command_fails_in_one_line_without_a_lake(tmp_path: Path, demo: Demo) -> None:
    env = dict(demo.env, AUDITLAKE_LAKE=str(tmp_path / "nowhere"))
    r = cli("dashboard", "--port", "1", env=env, cwd=tmp_path)

    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("auditlake: ") and len(r.stderr.splitlines()) == 1
