"""The `auditlake` command on an s3:// lake, configured from the environment only.

moto's S3 server runs as a process of its own on 127.0.0.1 (one per worker); every test
gets a fresh bucket, and the CLI reaches it through AWS_ENDPOINT_URL & co., as a cron job
or a collector on another machine would.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from testkit import moto_s3

# The console script beside this interpreter (tests import no conftest by name).
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import Run

SECRET = "cli-s3cr3t-never-printed-91b2"
# On the hour: mallory's 12 failures (3 min 40 s) then sit in one of the brute-force rule's
# epoch-aligned hourly dedup buckets. From now - 1 day to the second, about one run in 16
# straddled two buckets and got two alerts, as the rule documents.
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in its own process (a real server the subprocesses reach)."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3env(s3_endpoint: str, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The `env` fixture's environment, with the lake in a fresh bucket and AWS_* set."""
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    out = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    out.update(
        AUDITLAKE_LAKE=f"s3://{bucket}/audit",
        AUDITLAKE_CACHE=str(tmp_path / "cache"),
        AWS_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    return out


def event(tenant: str, actor: str, at: datetime, outcome: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "time": at.isoformat(),
        "category": "authentication",
        "action": "login",
        "outcome": outcome,
        "actor": {"id": actor, "ip": "198.51.100.4"},
    }


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_the_whole_cli_on_s3(run: Run, s3env: dict[str, str], tmp_path: Path) -> None:
    init = run("init", "--name", "s3lake", env=s3env)
    assert init.returncode == 0, init
    key = init.stdout.strip()
    assert "s3://" in init.stderr and SECRET not in init.stderr
    assert not (tmp_path / "lake").exists()  # nothing made on the local disk for the lake

    events = [
        event(t, f"user{i % 5}", T0 + timedelta(minutes=13 * i), "success")
        for t in ("acme", "beta")
        for i in range(30)
    ]
    events += [
        event("acme", "mallory", T0 + timedelta(seconds=20 * k), "failure") for k in range(12)
    ]
    ingested = run("ingest", write_jsonl(tmp_path / "events.jsonl", events), env=s3env)
    assert ingested.returncode == 0, ingested
    assert run("seal", env=s3env).returncode == 0

    verified = run("verify", "--format", "json", env=s3env)
    assert verified.returncode == 0, verified
    assert verified.json()["ok"] is True and verified.json()["events"] == 72

    hits = run(
        "search", "actor:mallory outcome:failure", "--limit", "0", "--format", "json", env=s3env
    )
    assert hits.returncode == 0, hits
    rows = hits.json()
    assert len(rows) == 12 and {r["tenant"] for r in rows} == {"acme"}

    counts = run("sql", "SELECT tenant, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
                 "--format", "json", env=s3env)  # fmt: skip
    assert counts.returncode == 0, counts
    assert [(r["tenant"], r["n"]) for r in counts.json()] == [("acme", 42), ("beta", 30)]

    proof = run("prove", rows[0]["event_id"], "--tenant", "acme", env=s3env)
    assert proof.returncode == 0, proof
    (tmp_path / "proof.json").write_text(proof.stdout)
    checked = run("verify-proof", tmp_path / "proof.json", "--key", key, env=s3env)
    assert checked.returncode == 0, checked

    cp = run("checkpoint", "export", "--tenant", "acme", env=s3env)
    assert cp.returncode == 0 and cp.stdout.startswith("auditlake/s3lake/acme\n42\n"), cp

    detected = run("detect", "run", "--format", "json", env=s3env)
    assert detected.returncode == 0, detected
    alerts = run("alerts", "list", "--format", "json", env=s3env)
    assert alerts.returncode == 0, alerts
    brute = [a for a in alerts.json() if a["rule_id"] == "auth.brute_force"]
    assert [(a["tenant"], a["group"]) for a in brute] == [("acme", {"actor_id": "mallory"})]


def test_concurrent_ingests_of_one_tenant_never_fork_its_log(
    run: Run, s3env: dict[str, str], tmp_path: Path
) -> None:
    """Two writers, small batches, one tenant: Delta's put-if-absent commit is the
    sequencer on S3 too; the log verifies and holds every event once, in a gap-free seq."""
    assert run("init", "--name", "race", env=s3env).returncode == 0
    files = [
        write_jsonl(
            tmp_path / f"w{w}.jsonl",
            [event("acme", f"w{w}-{i}", T0 + timedelta(seconds=i), "success") for i in range(40)],
        )
        for w in (1, 2)
    ]
    procs = [
        subprocess.Popen(
            [str(AUDITLAKE), "ingest", str(f), "--batch-size", "8"],
            env=s3env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for f in files
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"Traceback" not in err
    verified = run("verify", "--format", "json", env=s3env)
    assert verified.returncode == 0, verified
    stats = run(
        "sql",
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, min(seq) AS lo, max(seq) AS hi, "
        "count(DISTINCT seq) AS seqs FROM events WHERE tenant = 'acme'",
        "--format",
        "json",
        env=s3env,
    )
    assert stats.returncode == 0, stats
    assert stats.json() == [{"n": 80, "ids": 80, "lo": 0, "hi": 79, "seqs": 80}]
    # The premise: the writers overlapped, their batches interleave in the log (measured:
    # 3 to 7 alternations in every run), so each lost races it had to retry.
    order = run("search", "tenant:acme", "--limit", "0", "--format", "jsonl", env=s3env)
    rows = sorted((json.loads(line) for line in order.stdout.splitlines()), key=lambda r: r["seq"])
    writers = [r["actor_id"][:2] for r in rows]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches >= 2, f"the two writers did not overlap: {writers}"


def test_storage_errors_are_one_line_without_secrets(run: Run, s3env: dict[str, str]) -> None:
    down = {**s3env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    for args, env in [
        (("verify",), down),
        (("--lake", f"s3://testing:{SECRET}@bucket/audit", "search", "x"), s3env),
        (("verify",), {**s3env, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}),
        (("init",), {**s3env, "AUDITLAKE_LAKE": "s3://no-such-bucket-anywhere/audit"}),
    ]:
        result = run(*args, env=env)
        result.assert_usage_error()
        assert SECRET not in result.stderr, result
    assert not any(Path(s3env["AUDITLAKE_HOME"]).glob("keys/*"))  # init made no orphan key
