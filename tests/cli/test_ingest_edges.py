"""`auditlake ingest` at the edges (#17): far-dated events, the future-skew setting, id-less
events sent twice by two routes, and the environment failing under it (stdin closed, a
read-only lake, a full spool disk). Each is the real command in a subprocess; each
failure must be one line on stderr with exit 2 and nothing written to the lake.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_testkit import AUDITLAKE, TIMEOUT, Result, Run
from testkit import mounted, small_disk


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tenant": "acme",
        "time": "2026-11-02T10:00:00Z",
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": "alice"},
    }
    return {**base, **overrides}


def jsonl(path: Path, *events: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture
def acme(run: Run) -> Run:
    assert run("init", "--name", "acme").returncode == 0
    return run


def data_files(lake: Path) -> list[Path]:
    return sorted((lake / "events").rglob("*.parquet"))


def test_an_event_past_year_9999_in_utc_is_exit_2_naming_it(
    acme: Run, tmp_path: Path, lake: Path
) -> None:
    src = jsonl(tmp_path / "e.jsonl", event(), event(id="x", time="9999-12-31T23:59:59-23:59"))
    result = acme("ingest", src)
    assert result.returncode == 2, result
    assert "event 1 (line 2): time: '9999-12-31T23:59:59-23:59' is more than 24h ahead" in (
        result.stderr
    )
    assert "nothing was written" in result.stderr_lines[-1]
    assert data_files(lake) == []


def test_before_1970_is_refused(acme: Run, tmp_path: Path) -> None:
    src = jsonl(tmp_path / "e.jsonl", event(time="0001-01-01T00:00:00Z"))
    result = acme("ingest", src)
    assert result.returncode == 2, result
    assert "before 1970-01-01T00:00:00Z" in result.stderr


def test_max_future_skew_from_the_option_and_the_environment(
    acme: Run, tmp_path: Path, env: dict[str, str]
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    src = jsonl(tmp_path / "e.jsonl", event(time=soon))
    tight = acme("ingest", src, "--max-future-skew", "90m")
    assert tight.returncode == 2, tight
    assert "more than 1h30m ahead" in tight.stderr
    from_env = acme("ingest", src, env={**env, "AUDITLAKE_MAX_FUTURE_SKEW": "1h"})
    assert from_env.returncode == 2 and "more than 1h ahead" in from_env.stderr, from_env
    acme("ingest", src, "--max-future-skew", "soon").assert_usage_error("'soon' is not a duration")
    ok = acme("ingest", src, "--output-format", "json")  # the default, 24h
    assert ok.returncode == 0, ok
    assert ok.json()["appended"] == 1


def test_one_id_less_event_by_two_routes_is_stored_once(acme: Run, tmp_path: Path) -> None:
    same = event(details={"why": "test"})
    first = acme("ingest", jsonl(tmp_path / "a.jsonl", same), "--output-format", "json")
    assert first.returncode == 0, first
    assert first.json()["appended"] == 1
    array = tmp_path / "b.json"
    array.write_text(json.dumps([event(id="other"), same, same]))
    second = acme("ingest", array, "--output-format", "json")
    assert second.returncode == 0, second
    summary = second.json()
    assert (summary["appended"], summary["duplicates"]) == (1, 2)


def test_a_repeated_json_key_is_exit_2(acme: Run, tmp_path: Path, lake: Path) -> None:
    src = tmp_path / "e.jsonl"
    src.write_text(json.dumps(event())[:-1] + ', "tenant": "beta"}\n')
    result = acme("ingest", src)
    assert result.returncode == 2, result
    assert "event 0 (line 1): tenant: key 'tenant' appears more than once" in result.stderr
    assert data_files(lake) == []


def _run_shell(command: str, env: dict[str, str], cwd: Path) -> Result:
    proc = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    result = Result((command,), proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_stdin_closed_is_a_one_line_usage_error(
    acme: Run, env: dict[str, str], tmp_path: Path, lake: Path
) -> None:
    assert AUDITLAKE
    result = _run_shell(f"exec {shlex.quote(AUDITLAKE)} ingest - <&-", env, tmp_path)
    result.assert_usage_error("stdin", "closed")
    assert data_files(lake) == []


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def test_a_read_only_lake_is_a_one_line_error(acme: Run, tmp_path: Path, lake: Path) -> None:
    src = jsonl(tmp_path / "e.jsonl", event())
    with mounted("--bind", str(lake), target=lake):
        try:
            _mount("-o", "remount,bind,ro", str(lake))
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot remount read-only here: {exc}")
        result = acme("ingest", src)
    result.assert_usage_error("not writable")
    assert data_files(lake) == []


def test_a_full_spool_disk_is_a_one_line_error(run: Run, tmp_path: Path) -> None:
    # The spool goes beside the lake: a lake on a 1 MiB tmpfs leaves it no room.
    small = tmp_path / "small"
    small.mkdir()
    big = tmp_path / "big.jsonl"
    pad = "x" * 400
    with big.open("w") as fh:
        for i in range(8000):
            fh.write(json.dumps(event(id=f"e{i}", details={"pad": pad})) + "\n")
    with small_disk(small, "1m"):
        lake = small / "lake"
        env = {**os.environ, "AUDITLAKE_HOME": str(tmp_path / "home"), "AUDITLAKE_LAKE": str(lake)}
        env = {k: v for k, v in env.items() if k != "AUDITLAKE_MAX_FUTURE_SKEW"}
        assert run("init", env=env).returncode == 0
        from_file = run("ingest", big, env=env)
        from_stdin = run("ingest", "-", env=env, input=big.read_bytes())
        files = data_files(lake)
    for result in (from_file, from_stdin):
        result.assert_usage_error("no space left for the ingest spool", "Nothing was written")
    assert files == []
