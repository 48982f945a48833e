"""Collector tokens: only their hashes are stored, in the config home's private JSON file."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from ingest.tokens import TokenStore, lookup
from lake.contract import ConfigError, UsageError


def test_a_token_is_stored_as_its_hash_beside_the_others(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = TokenStore(home)
    first = store.create(["northwind", "contoso", "northwind"], "ci")
    second = store.create(["globex"])
    doc = json.loads(store.path.read_text())
    assert len(doc) == 2 and first not in store.path.read_text()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    grants = store.grants()
    ci = lookup(grants, first)
    assert ci is not None and ci.name == "ci"
    assert ci.tenants == frozenset({"northwind", "contoso"})
    other = lookup(grants, second)
    assert other is not None and other.name == "token-2" and other.tenants == {"globex"}
    assert lookup(grants, first + "x") is None


def test_a_token_needs_well_formed_tenants_other_than_the_reserved_one(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "home")
    for tenants in ([], ["Not A Tenant"], ["auditlake"]):
        with pytest.raises(UsageError):
            store.create(tenants)
    assert not store.path.exists()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "Expecting property name"),
        ("[]", "not a JSON object"),
        ('{"0123456789abcdef": {"name": "x"}}', "entry 01234567… has no tenant list"),
        ('{"0123456789abcdef": 5}', "entry 01234567… has no tenant list"),
    ],
)
def test_a_malformed_token_file_is_a_config_error_naming_it(
    tmp_path: Path, text: str, why: str
) -> None:
    store = TokenStore(tmp_path)
    store.path.write_text(text)
    store.path.chmod(0o600)
    tmp_path.chmod(0o700)
    expected = f"the token file {store.path} is unreadable: {why}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        store.grants()
    with pytest.raises(ConfigError, match=re.escape(expected)):
        store.create(["northwind"])  # never over a file it cannot read
    assert store.path.read_text() == text
