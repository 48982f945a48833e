"""The config home's one reader, writer and permission rule for its private files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lake.contract import ConfigError, UsageError
from lake.secrets import AccessPolicy, SigninStore, read_private_json, write_private_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_0600_in_a_0700_home_and_read_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = home / "thing.json"
    assert read_private_json(path, "thing", dict) is None
    write_private_json(path, {"b": [1, 2], "a": "é"})
    assert _mode(home) == 0o700 and _mode(path) == 0o600
    assert path.read_text() == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "\\u00e9"\n}\n'
    assert read_private_json(path, "thing", dict) == {"b": [1, 2], "a": "é"}
    assert [p.name for p in home.iterdir()] == ["thing.json"]  # no temporary file left


def test_a_file_others_can_read_or_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "thing.json"
    write_private_json(path, {"principals": []})
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by other users.*chmod 600"):
        read_private_json(path, "thing", dict)
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"the thing .* is unreadable"):
        read_private_json(path, "thing", dict)
    path.write_text("[]")
    with pytest.raises(UsageError, match="unreadable"):  # the caller's error class
        read_private_json(path, "thing", lambda doc: doc["x"], UsageError)


def test_the_access_policy_and_sign_in_tokens_use_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    AccessPolicy(home).grant("alice", "contoso", "auditor")
    SigninStore(home).create("alice")
    for name in ("access.json", "signin_tokens.json"):
        assert _mode(home / name) == 0o600
        (home / name).chmod(0o640)
    with pytest.raises(ConfigError, match=r"access policy .* accessible by other users"):
        AccessPolicy(home).principal("alice")
    with pytest.raises(ConfigError, match=r"sign-in tokens .* accessible by other users"):
        SigninStore(home).list()
