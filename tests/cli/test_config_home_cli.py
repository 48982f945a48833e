"""One permission rule for the config home: the home itself and every secret or trust file
in it are refused when group or others may read or write them, as private keys are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ingest.tokens import TokenStore
from lake.contract import ConfigError
from lake.secrets import AccessPolicy, SigninStore

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import Run


def test_the_cli_makes_a_private_home_and_refuses_one_others_can_read(run: Run, home: Path) -> None:
    assert run("init", "--name", "perm").returncode == 0
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "trusted_keys").stat().st_mode & 0o777 == 0o600
    assert run("verify").returncode == 0

    home.chmod(0o755)
    refused = run("verify")
    refused.assert_usage_error(f"config home {home}", "mode 755", f"chmod 700 {home}")
    assert len(refused.stderr_lines) == 1, refused
    home.chmod(0o700)

    for mode in (0o644, 0o620):
        (home / "trusted_keys").chmod(mode)
        refused = run("verify")
        refused.assert_usage_error(f"trusted keys {home / 'trusted_keys'}", f"mode {mode:o}")
        assert len(refused.stderr_lines) == 1, refused
    (home / "trusted_keys").chmod(0o600)
    assert run("verify").returncode == 0


def test_revoking_a_key_keeps_trusted_keys_private(run: Run, home: Path) -> None:
    assert run("init", "--name", "perm").returncode == 0
    name = next((home / "keys").glob("*.key")).stem
    assert run("keys", "generate", "--name", "spare").returncode == 0
    assert run("keys", "revoke", name, "--at", "2026-01-01T00:00:00Z").returncode == 0
    assert (home / "trusted_keys").stat().st_mode & 0o777 == 0o600


FILES: list[tuple[str, Callable[[Path], object], Callable[[Path], object]]] = [
    ("access policy", lambda h: AccessPolicy(h).grant("bob", "acme", "viewer"),
     lambda h: AccessPolicy(h).principal("bob")),
    ("token file", lambda h: TokenStore(h).create(["acme"]), lambda h: TokenStore(h).grants()),
    ("sign-in tokens", lambda h: SigninStore(h).create("alice"),
     lambda h: SigninStore(h).resolve("als_x")),
]  # fmt: skip


@pytest.mark.parametrize(("what", "write", "read"), FILES, ids=[f[0] for f in FILES])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_every_config_home_file_follows_the_private_key_rule(
    tmp_path: Path,
    what: str,
    write: Callable[[Path], object],
    read: Callable[[Path], object],
    mode: int,
) -> None:
    home = tmp_path / "home"
    write(home)
    assert home.stat().st_mode & 0o777 == 0o700
    (path,) = (p for p in home.iterdir() if p.is_file())
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"the {what} {path} .*mode {mode:o}.*chmod 600"):
        read(home)
    path.chmod(0o600)
    home.chmod(0o750)
    with pytest.raises(ConfigError, match=f"config home {home} .*mode 750"):
        read(home)
