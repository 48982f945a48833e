"""`auditlake detect …` and `auditlake alerts list` through the real console script."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The console script beside this interpreter (tests import no conftest by name:
# with several test folders, `conftest` is whichever pytest loaded last).
AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run


BAD_RULE = """
id: broken.rule
title: Broken
kind: threshold
window: soon
"""

FAILING_CASE = """
id: t.never
title: Never fires
kind: threshold
match: "action:login outcome:failure"
group_by: [actor_id]
threshold: 3
tests:
  - name: claims an alert that cannot happen
    events:
      - {outcome: failure}
    expect:
      - {event_count: 1}
"""


def test_demo_lake_has_alerts_with_provable_evidence(run: Run, demo_copy: DemoLake) -> None:
    listed = run("alerts", "list", "--format", "json")
    assert listed.returncode == 0, listed
    alerts = listed.json()
    assert alerts, "the demo's planted attacks must raise alerts"
    keys = {"alert_id", "rule_id", "tenant", "severity", "title", "group", "first_seen",
            "last_seen", "event_count", "event_ids"}  # fmt: skip
    assert all(set(a) == keys for a in alerts)
    assert "auth.brute_force" in {a["rule_id"] for a in alerts}
    first = alerts[0]
    proof = run("prove", first["event_ids"][0], "--tenant", first["tenant"])
    assert proof.returncode == 0, proof
    assert json.loads(proof.stdout)["event_id"] == first["event_ids"][0]


def test_rerun_adds_nothing(run: Run, demo_copy: DemoLake) -> None:
    before = run("alerts", "list", "--format", "json").json()
    again = run("detect", "run", "--format", "json")
    assert again.returncode == 0, again
    summary = again.json()
    assert summary["new_alerts"] == 0 and summary["changed_alerts"] == 0
    backfill = run("detect", "run", "--since", "2020-01-01", "--format", "json").json()
    assert backfill["new_alerts"] == 0 and backfill["changed_alerts"] == 0
    assert run("alerts", "list", "--format", "json").json() == before


def test_new_attack_reaches_a_jsonl_sink(run: Run, demo_copy: DemoLake, tmp_path: Path) -> None:
    events = [
        {"tenant": "contoso", "time": f"2026-11-20T03:{k:02d}:00Z", "category": "authentication",
         "action": "login", "outcome": "failure",
         "actor": {"id": "cli.victim@contoso.example", "ip": "203.0.113.200"}}
        for k in range(12)
    ]  # fmt: skip
    src = tmp_path / "attack.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert run("ingest", src).returncode == 0
    sink = tmp_path / "alerts.jsonl"
    result = run("detect", "run", "--sink", f"jsonl:{sink}", "--format", "json")
    assert result.returncode == 0, result
    sent = [json.loads(line) for line in sink.read_text().splitlines()]
    assert any(
        a["rule_id"] == "auth.brute_force"
        and a["group"] == {"actor_id": "cli.victim@contoso.example"}
        for a in sent
    ), sent
    assert (sink.stat().st_mode & 0o777) == 0o600


def test_detect_test_passes_on_the_pack_and_fails_a_bad_case(run: Run, tmp_path: Path) -> None:
    ok = run("detect", "test", "--format", "json")
    assert ok.returncode == 0, ok
    cases = ok.json()
    assert len(cases) >= 16 and all(c["ok"] for c in cases)
    failing = tmp_path / "failing.yaml"
    failing.write_text(FAILING_CASE)
    bad = run("detect", "test", "--rules", failing, "--no-builtin")
    assert bad.returncode == 1, bad
    assert "expected 1 alert(s), got 0" in bad.stdout


def test_a_broken_rule_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BAD_RULE)
    run("detect", "list", "--rules", broken).assert_usage_error("broken.rule", "window", "soon")


def test_detect_list_and_schedule(run: Run, demo_copy: DemoLake) -> None:
    listed = run("detect", "list", "--format", "json").json()
    assert {"auth.brute_force", "ingest.silence"} <= {r["id"] for r in listed}
    schedule = run("detect", "schedule", "--every", "5m")
    assert schedule.returncode == 0
    assert "*/5 * * * *" in schedule.stdout and "detect run" in schedule.stdout
    assert "OnUnitActiveSec=300s" in schedule.stdout


def test_schedule_keeps_an_object_store_lake_uri_as_it_is(run: Run) -> None:
    # Resolving `s3://bucket/prod` as a local path would schedule runs on a wrong lake.
    schedule = run("--lake", "s3://audit-bucket/prod", "detect", "schedule", "--every", "5m")
    assert schedule.returncode == 0, schedule
    assert "AUDITLAKE_LAKE=s3://audit-bucket/prod " in schedule.stdout
    assert "Environment=AUDITLAKE_LAKE=s3://audit-bucket/prod" in schedule.stdout


def test_alerts_are_scoped_and_detection_is_the_operators(run: Run, demo_copy: DemoLake) -> None:
    everything = run("alerts", "list", "--format", "json").json()
    tenant = everything[0]["tenant"]
    assert (
        run("access", "grant", "ivy", "--tenant", tenant, "--role", "investigator").returncode == 0
    )
    mine = run("--as", "ivy", "alerts", "list", "--format", "json").json()
    assert mine and {a["tenant"] for a in mine} == {tenant}
    assert run("access", "grant", "vic", "--tenant", tenant, "--role", "viewer").returncode == 0
    # a viewer may read no alerts: refused with the reason, not an empty list (#17 B14)
    run("--as", "vic", "alerts", "list", "--format", "json").assert_usage_error(
        "may read the alerts of no tenant"
    )
    run("--as", "vic", "alerts", "list", "--tenant", tenant).assert_usage_error("may not read")
    run("--as", "ivy", "detect", "run").assert_usage_error("local operator")


def test_watch_runs_until_sigterm(demo_copy: DemoLake, env: dict[str, str], tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    state = demo_copy.lake / "_auditlake" / "detect" / "state.json"
    before = state.stat().st_mtime_ns
    assert AUDITLAKE
    log = (tmp_path / "watch.log").open("wb")
    proc = subprocess.Popen(
        [AUDITLAKE, "detect", "watch", "--every", "1s"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while state.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.stat().st_mtime_ns != before, "no run happened"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    out = (tmp_path / "watch.log").read_text()
    assert code == 0, out
    assert "detect watch stopped" in out and "Traceback" not in out


def test_evidence_pack_of_an_alert_checks_offline_and_catches_tampering(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    import zipfile

    alert = run("alerts", "list", "--format", "json").json()[0]
    pack = tmp_path / "case.zip"
    made = run("evidence", "--alert", alert["alert_id"], "--note", "case 42", "-o", pack)
    assert made.returncode == 0, made
    with zipfile.ZipFile(pack) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"README.txt", "events.jsonl", "verifier_keys.txt"} <= names
    assert len([n for n in names if n.startswith("proofs/")]) == alert["event_count"]
    assert manifest["event_ids"] == alert["event_ids"] and manifest["note"] == "case 42"
    ok = run("verify-proof", pack, "--key", demo_copy.verifier_key)
    assert ok.returncode == 0, ok
    assert ok.stdout.splitlines()[-1] == f"evidence pack OK: {alert['event_count']} proof(s)"
    # Alter one event inside the pack: the check must fail, naming the proof.
    altered = tmp_path / "altered.zip"
    done = False
    with zipfile.ZipFile(pack) as src, zipfile.ZipFile(altered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.startswith("proofs/") and not done:
                proof = json.loads(data)
                proof["event"]["actor_id"] = "someone.else@example.com"
                data = json.dumps(proof).encode()
                done = True
            dst.writestr(name, data)
    bad = run("verify-proof", altered, "--key", demo_copy.verifier_key)
    assert bad.returncode == 1, bad
    assert "evidence pack FAILED: proofs/" in bad.stderr and "altered" in bad.stderr


def test_a_far_dated_stored_event_neither_crashes_nor_blinds_detect_run(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    # Written before ingest refused such times: the row is appended as validated.
    import pyarrow as pa

    from lake.contract import validate
    from lake.log import generate_signer
    from lake.storage import Lake
    from lake.write import append

    ghost = {"tenant": "far-away", "time": "2026-11-20T03:00:00Z", "category": "authentication",
             "action": "login", "outcome": "failure", "actor": {"id": "ghost"}}  # fmt: skip
    table = validate([ghost], namespace=b"far").table
    year_9999 = 253_402_300_799_000_000
    i, j = table.schema.get_field_index("time"), table.schema.get_field_index("event_date")
    table = table.set_column(i, table.schema.field(i), pa.array([year_9999], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")))  # fmt: skip
    table = table.set_column(j, table.schema.field(j), pa.array([year_9999 // 86_400_000_000],
        pa.int32()).cast(pa.date32()))  # fmt: skip
    append(Lake.open(demo_copy.lake), table, generate_signer("elsewhere"))
    first = run("detect", "run", "--format", "json")
    assert first.returncode == 0, first
    events = [
        {"tenant": "contoso", "time": f"2026-11-20T04:{k:02d}:00Z", "category": "authentication",
         "action": "login", "outcome": "failure",
         "actor": {"id": "after.the.ghost@contoso.example"}}
        for k in range(12)
    ]  # fmt: skip
    src = tmp_path / "attack.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert run("ingest", src).returncode == 0
    second = run("detect", "run", "--format", "json")
    assert second.returncode == 0, second
    assert second.json()["new_alerts"] >= 1
    alerts = run("alerts", "list", "--tenant", "contoso", "--format", "json").json()
    assert {"actor_id": "after.the.ghost@contoso.example"} in [a["group"] for a in alerts]


CRON_LINES = {
    "1m": "* * * * *", "2m": "*/2 * * * *", "5m": "*/5 * * * *", "15m": "*/15 * * * *",
    "30m": "*/30 * * * *", "60m": "0 * * * *", "1h": "0 * * * *", "2h": "0 */2 * * *",
    "3h": "0 */3 * * *", "6h": "0 */6 * * *", "12h": "0 */12 * * *", "24h": "0 0 * * *",
    "1d": "0 0 * * *", "7d": "0 0 * * 0", "1w": "0 0 * * 0", "120s": "*/2 * * * *",
}  # fmt: skip


@pytest.mark.parametrize("every", sorted(CRON_LINES))
def test_schedule_prints_a_cron_line_that_runs_that_often(run: Run, every: str) -> None:
    # `*/120` in the minute field runs hourly, `*/1440` too: hours and days go elsewhere.
    schedule = run("detect", "schedule", "--every", every)
    assert schedule.returncode == 0, schedule
    crontab = schedule.stdout.splitlines()[1]
    assert crontab.startswith(CRON_LINES[every] + " AUDITLAKE_HOME="), crontab


@pytest.mark.parametrize("every", ["90s", "30s", "7m", "45m", "90m", "5h", "7h", "2d", "3d", "2w"])
def test_schedule_refuses_what_cron_cannot_run(run: Run, every: str) -> None:
    # `--every 90s` used to become every minute, `7m` ran at :56 then :00 again.
    refused = run("detect", "schedule", "--every", every)
    refused.assert_usage_error(f"--every {every}", "minutes dividing 60", "hours dividing 24")


def _attack(run: Run, tmp_path: Path, actor: str, hour: int) -> None:
    events = [
        {"tenant": "contoso", "time": f"2026-11-20T{hour:02d}:{k:02d}:00Z",
         "category": "authentication", "action": "login", "outcome": "failure",
         "actor": {"id": actor, "ip": "203.0.113.200"}}
        for k in range(12)
    ]  # fmt: skip
    src = tmp_path / f"{actor}.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert run("ingest", src).returncode == 0


@pytest.mark.slow  # the dead webhook is retried with the CLI's backoff (~15 s)
def test_a_dead_webhook_does_not_silence_other_sinks_and_gets_its_alerts_later(
    run: Run, demo_copy: DemoLake, tmp_path: Path
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from testkit import free_port

    _attack(run, tmp_path, "dead.hook@contoso.example", 5)
    port = free_port()  # bound and closed: refused
    hook = f"webhook:http://127.0.0.1:{port}/hook"
    sink = tmp_path / "alerts.jsonl"
    args = ("detect", "run", "--sink", hook, "--sink", f"jsonl:{sink}", "--format", "json")
    first = run(*args)
    assert first.returncode == 1, first  # delivery failed: not a usage error (2)
    summary = first.json()
    new = summary["new_alerts"]
    assert new >= 1
    assert [(s["sink"], s["status"], s["delivered"], s["spooled"]) for s in summary["sinks"]] == [
        (f"webhook:http://127.0.0.1:{port}", "failed", 0, new),
        (f"jsonl:{sink}", "ok", new, 0),
    ]
    assert len(first.stderr_lines) == 1, first
    assert "delivery failed" in first.stderr and f"{new} alert(s) spooled" in first.stderr
    sent = [json.loads(line)["alert_id"] for line in sink.read_text().splitlines()]
    assert len(sent) == new
    listed = {a["alert_id"] for a in run("alerts", "list", "--format", "json").json()}
    assert set(sent) <= listed  # the alerts table has them whatever the sinks did

    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.extend(a["alert_id"] for a in json.loads(body)["alerts"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        second = run(*args)
        assert second.returncode == 0, second
        assert second.stderr == "", second
        statuses = [(s["status"], s["delivered"]) for s in second.json()["sinks"]]
        assert statuses == [("ok", new), ("ok", 0)]
        assert sorted(got) == sorted(sent)
        assert run(*args).returncode == 0 and sorted(got) == sorted(sent)  # at most once
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert len(sink.read_text().splitlines()) == new


def test_detect_run_json_is_one_line_per_run(run: Run, demo_copy: DemoLake, tmp_path: Path) -> None:
    _attack(run, tmp_path, "one.line@contoso.example", 6)
    result = run("detect", "run", "--format", "json")
    assert result.returncode == 0, result
    assert len(result.stdout.splitlines()) == 1, result.stdout
    summary = json.loads(result.stdout)
    assert summary["new_alerts"] >= 1
    assert {"auth.brute_force", "ingest.silence"} <= {r["rule_id"] for r in summary["rules"]}
    assert result.stderr == ""  # no progress bar or note in a pipe


def test_watch_prints_one_json_line_per_run(
    demo_copy: DemoLake, env: dict[str, str], tmp_path: Path
) -> None:
    import signal
    import subprocess
    import time

    assert AUDITLAKE
    out_path, err_path = tmp_path / "watch.out", tmp_path / "watch.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [AUDITLAKE, "detect", "watch", "--every", "1s"], env=env, stdout=out, stderr=err
        )
        try:
            deadline = time.monotonic() + 90
            while out_path.read_text().count("\n") < 3 and time.monotonic() < deadline:
                time.sleep(0.1)  # waits for the runs' own output, the signal that they ran
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    lines = out_path.read_text().splitlines()
    assert code == 0 and len(lines) >= 3, (lines, err_path.read_text())
    runs = [json.loads(line) for line in lines]
    assert all({"rules", "new_alerts", "version"} <= set(r) for r in runs)
    assert err_path.read_text() == "auditlake: detect watch stopped\n"
