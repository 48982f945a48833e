"""Red-team checks through the real command (#17 B18 and its neighbours).

A lake whose `_auditlake/lake.json` held valid JSON of the wrong shape (a list, null, an
object without a name, published_keys that is not a list) made every command, verify
included, die with a traceback and exit 1 ("a problem found") instead of saying what is
wrong with the lake's description.

`verify-proof` of an evidence pack whose events.jsonl was edited (a line that is not
JSON, or JSON that is not an object) died with a traceback, and one that listed a proven
event twice passed as OK.

`verify --since-checkpoint FILE` with an empty FILE (an export that failed, a truncated
copy) checked nothing against it and exited 0: a rollback check that silently passes.

`witness serve` had none of the collector's connection limits: 300 half-open connections
against a 256-descriptor process made it stop answering and write ~20 MB of EMFILE
tracebacks within seconds.

A duration too long for a timedelta (`detect schedule --every 99999999999999999999d`, a
rule's window, lookback or dedup) was an OverflowError traceback instead of a usage error.

A hash tile replaced by a FIFO made `verify` wait for ever (a cron job that never ends,
holding its lock); it is a bad_tiles finding like a missing tile.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cli_testkit import AUDITLAKE

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[]", "not a JSON object"),
        ("null", "not a JSON object"),
        ('{"format": 1}', "name"),
        ('{"format": 1, "name": "demo", "published_keys": 5}', "published_keys"),
        ('{"format": 1, "name": "demo", "published_keys": [5]}', "published_keys"),
        ('{"format": 1, "name": "demo", "encryption": 5}', "encryption"),
    ],
)
def test_a_malformed_lake_description_is_a_one_line_error(
    run: Run, demo_copy: DemoLake, text: str, named: str
) -> None:
    (demo_copy.lake / "_auditlake" / "lake.json").write_text(text)
    for args in (("verify", "--format", "json"), ("search", "--tenant", "contoso")):
        result = run(*args)  # run() fails the test on a traceback
        assert result.returncode == 2, result
        (line,) = result.stderr.strip().splitlines()
        assert "lake.json" in line and named in line


def _edit_events(pack: Path, out: Path, edit: str) -> None:
    with zipfile.ZipFile(pack) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "events.jsonl":
                data = data + data if edit == "twice" else data + edit.encode() + b"\n"
            zout.writestr(info.filename, data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("not json", "events.jsonl line 2 is not a JSON object"),
        ("1", "events.jsonl line 2 is not a JSON object"),
        ("[]", "events.jsonl line 2 is not a JSON object"),
        ('{"event_id": [1]}', "events.jsonl line 2 has no event_id string"),
        ("twice", "events.jsonl differs from the proven events"),
    ],
)
def test_an_edited_events_listing_fails_the_pack(
    run: Run, demo_copy: DemoLake, tmp_path: Path, edit: str, message: str
) -> None:
    event_id = demo_copy.event_ids("contoso")[0]
    pack, edited = tmp_path / "pack.zip", tmp_path / "edited.zip"
    assert run("evidence", "--tenant", "contoso", event_id, "-o", str(pack)).returncode == 0
    _edit_events(pack, edited, edit)
    result = run("verify-proof", str(edited), "--key", demo_copy.verifier_key)
    assert result.returncode == 1, result  # run() fails the test on a traceback
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_an_empty_exported_checkpoint_file_is_refused(
    run: Run, demo_copy: DemoLake, tmp_path: Path, text: str
) -> None:
    exported = tmp_path / "cp.txt"
    exported.write_text(text)
    result = run("verify", "--since-checkpoint", str(exported))
    assert result.returncode == 2, result
    assert "holds no signed checkpoint" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status) == 200
    except OSError:
        return False


def test_half_open_connections_leave_the_witness_answering(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    key = tmp_path / "w1.key"
    assert run("witness", "keygen", "--name", "w.example/w1", "--out", key).returncode == 0

    def few_descriptors() -> None:  # runs in the child: 256 files, fewer than the flood
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    port, log = _free_port(), tmp_path / "witness.log"
    url = f"http://127.0.0.1:{port}/"
    assert AUDITLAKE
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [AUDITLAKE, "witness", "serve", "--name", "w.example/w1", "--key-file", str(key),
             "--state", str(tmp_path / "state"), "--log-key", demo_copy.verifier_key,
             "--port", str(port)],
            stdout=out, stderr=out, preexec_fn=few_descriptors,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):  # wait until it is up
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        flood = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(300)]
        try:
            assert _answers(url)
        finally:
            for sock in flood:
                sock.close()
        # A body that never ends is answered 408 once its time is up, not waited for.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
            slow.sendall(
                b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nold"
            )
            assert slow.recv(4096).startswith(b"HTTP/1.1 408")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text() and log.stat().st_size < 20_000


RULE = """id: t.rule
title: "x"
kind: threshold
severity: high
match: "category:authentication"
group_by: [actor_id]
threshold: 1
"""


@pytest.mark.parametrize("field", ["window", "lookback", "dedup"])
def test_a_duration_past_what_a_timedelta_holds_is_a_usage_error(
    run: Run, demo_copy: DemoLake, tmp_path: Path, field: str
) -> None:
    huge = "99999999999999999999d"
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE + f"{field}: {huge}\n")
    for args in (("detect", "run", "--rules", str(rules)), ("detect", "schedule", "--every", huge)):
        result = run(*args)  # run() fails the test on a traceback
        assert result.returncode == 2, result
        assert "too long a duration" in result.stderr


def test_a_hash_tile_that_is_a_fifo_is_a_finding_not_a_hang(run: Run, demo_copy: DemoLake) -> None:
    sealed = int(run("checkpoint", "export", "--tenant", "contoso").stdout.splitlines()[1])
    tile = demo_copy.lake / "tiles" / "contoso" / "tile" / "0" / "000.p" / str(sealed)
    tile.unlink()
    os.mkfifo(tile)
    result = run("verify", "--format", "json")  # run() has a timeout
    assert result.returncode == 1, result
    found = [f for t in result.json()["tenants"] for f in t["findings"]]
    assert [(f["tenant"], f["kind"]) for f in found] == [("contoso", "bad_tiles")]
    assert "not a regular file" in found[0]["message"]
