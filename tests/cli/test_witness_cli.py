"""A real witness process, a real lake: cosignatures after ingest, rollback caught by verify."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The console script beside this interpreter (tests import no conftest by name:
# with several test folders, `conftest` is whichever pytest loaded last).
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def witness(run: Run, demo_copy: DemoLake, tmp_path: Path) -> Iterator[tuple[str, str]]:
    key = run("witness", "keygen", "--name", "w.example/w1", "--out", tmp_path / "w1.key")
    assert key.returncode == 0, key
    assert (tmp_path / "w1.key").stat().st_mode & 0o777 == 0o600
    port = _free_port()
    assert AUDITLAKE
    log = (tmp_path / "witness.log").open("wb")
    proc = subprocess.Popen(
        [AUDITLAKE, "witness", "serve", "--name", "w.example/w1", "--key-file",
         str(tmp_path / "w1.key"), "--state", str(tmp_path / "w1-state"), "--log-key",
         demo_copy.verifier_key, "--port", str(port)],
        stdout=log, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield url, key.stdout.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_witnessed_lake_and_a_rollback_it_catches(
    run: Run, demo_copy: DemoLake, witness: tuple[str, str], tmp_path: Path
) -> None:
    url, wkey = witness
    assert run("witness", "add", url, "--key", wkey).returncode == 0
    asked = run("witness", "ask", "--format", "json")
    assert asked.returncode == 0, asked
    assert {r["message"] for r in asked.json()} == {"cosigned"}
    strict = ("verify", "--witness-key", wkey, "--min-witnesses", "1", "--format", "json")
    assert run(*strict).returncode == 0
    before = tmp_path / "before"
    shutil.copytree(demo_copy.lake, before)

    events = [
        {"tenant": "contoso", "time": f"2026-11-27T13:00:0{i}Z", "category": "authentication",
         "action": "login", "outcome": "success", "actor": {"id": f"late{i}@contoso.example"}}
        for i in range(4)
    ]  # fmt: skip
    src = tmp_path / "more.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    ingested = run("ingest", src, "--output-format", "json")
    assert ingested.returncode == 0, ingested
    assert [w["message"] for w in ingested.json()["witnesses"]] == ["cosigned"]
    assert run(*strict).returncode == 0

    # Roll the lake back to before the ingest, keeping what the witness signed since.
    cosigs = demo_copy.lake / "_auditlake" / "cosignatures"
    for name in ("events", "checkpoints", "tiles"):
        shutil.rmtree(demo_copy.lake / name)
        shutil.copytree(before / name, demo_copy.lake / name)
    assert (cosigs / "contoso.json").exists()
    rolled = run(*strict)
    assert rolled.returncode == 1, rolled
    kinds = {(f["tenant"], f["kind"]) for t in rolled.json()["tenants"] for f in t["findings"]}
    assert ("contoso", "witness_conflict") in kinds
    # A new head built on the rolled-back log cannot be cosigned: the witness has seen more.
    assert run("ingest", src).returncode == 0  # the same events again: a different history
    again = run("witness", "ask", "--tenant", "contoso", "--format", "json")
    assert again.returncode == 1, again
    assert again.json()[0]["ok"] is False


def test_unwitnessed_checkpoints_are_a_finding(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    key = run("witness", "keygen", "--name", "w.example/w2", "--out", tmp_path / "w2.key").stdout
    result = run("verify", "--witness-key", key.strip(), "--min-witnesses", "1", "--format", "json")
    assert result.returncode == 1
    kinds = {f["kind"] for t in result.json()["tenants"] for f in t["findings"]}
    assert kinds == {"unwitnessed"}
    run("verify", "--min-witnesses", "2", "--witness-key", key.strip()).assert_usage_error(
        "--min-witnesses"
    )


def test_the_collector_asks_witnesses_after_each_commit(
    run: Run, demo_copy: DemoLake, witness: tuple[str, str], tmp_path: Path, env: dict[str, str]
) -> None:
    url, wkey = witness
    assert run("witness", "add", url, "--key", wkey).returncode == 0
    token = run("token", "create", "--tenant", "globex").stdout.strip()
    port = _free_port()
    assert AUDITLAKE
    log = (tmp_path / "collector.log").open("wb")
    proc = subprocess.Popen(
        [AUDITLAKE, "serve", "--port", str(port), "--batch-age", "0.2",
         "--wal-dir", str(tmp_path / "wal")],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    cosigs = demo_copy.lake / "_auditlake" / "cosignatures" / "globex.json"
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/v1/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        body = json.dumps([
            {"tenant": "globex", "time": "2026-11-27T15:00:00Z", "category": "authentication",
             "action": "login", "outcome": "success", "actor": {"id": "via.collector@globex"}}
        ]).encode()  # fmt: skip
        req = urllib.request.Request(
            base + "/v1/events", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        assert urllib.request.urlopen(req, timeout=10).status == 202
        while time.monotonic() < deadline:
            if cosigs.exists() and json.loads(cosigs.read_text()):
                break
            time.sleep(0.2)
        assert cosigs.exists(), (tmp_path / "collector.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    strict = run("verify", "--tenant", "globex", "--witness-key", wkey, "--min-witnesses", "1")
    assert strict.returncode == 0, strict


def test_checkpoint_export_to_a_directory_for_cron(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    out = tmp_path / "worm"
    first = run("checkpoint", "export", "--to", out)
    assert first.returncode == 0, first
    files = sorted(out.rglob("*.txt"))
    assert {f.parent.name for f in files} >= {"contoso", "globex", "northwind"}
    assert all(f.read_text().startswith("auditlake/demo/") for f in files)
    again = run("checkpoint", "export", "--to", out)
    assert "0 new checkpoint(s)" in again.stderr  # nothing rewritten
    cp = next(f for f in files if f.parent.name == "globex")
    assert run("verify", "--since-checkpoint", cp).returncode == 0
    run("checkpoint", "export").assert_usage_error("--to DIR")
