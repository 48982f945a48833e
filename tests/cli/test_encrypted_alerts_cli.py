"""Alerts on an encrypted lake (found by the red team after #17 A7/A8): a title or group
quotes the events' sealed fields ("Password spray from 203.0.113.99"), so the alerts
table and the sink spool hold them sealed too, readers decrypt them for those allowed,
and `keys shred` erases them with the events' fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from testkit import free_port

if TYPE_CHECKING:
    from cli_testkit import Run

ADDRESS = "203.0.113.99"


def spray(tmp_path: Path) -> Path:
    src = tmp_path / "spray.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    "tenant": "acme",
                    "time": f"2026-11-27T10:{i:02d}:00Z",
                    "category": "authentication",
                    "action": "login",
                    "outcome": "failure",
                    "actor": {"id": f"user{i}@acme.example", "ip": ADDRESS},
                }
            )
            + "\n"
            for i in range(12)
        )
    )
    return src


def files_holding(root: Path, needle: str) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            yield path


def test_alerts_keep_no_plaintext_of_sealed_fields_and_shred_erases_them(
    run: Run, lake: Path, tmp_path: Path
) -> None:
    assert run("init", "--name", "enc", "--encrypt").returncode == 0
    assert run("ingest", spray(tmp_path)).returncode == 0
    dead = f"webhook:http://127.0.0.1:{free_port()}/alerts"  # refused: its alerts spool

    ran = run("detect", "run", "--sink", dead, "--format", "json")

    assert ran.returncode == 1, ran  # the sink failed; the alert is committed regardless
    assert list(files_holding(lake, ADDRESS)) == []
    listed = run("alerts", "list", "--format", "json").json()
    assert [a["title"] for a in listed] == [f"Password spray from {ADDRESS}"]
    assert listed[0]["group"] == {"actor_ip": ADDRESS}
    seen = run("sql", 'SELECT title, "group" FROM alerts', "--format", "json").json()
    assert seen == [{"title": f"Password spray from {ADDRESS}", "group": json.dumps(
        {"actor_ip": ADDRESS}, separators=(",", ":"))}]  # fmt: skip
    # A backfill evaluates the rule again: the stored alert, compared in the clear, is
    # unchanged (its sealed form differs at every write).
    again = run("detect", "run", "--since", "2026-11-27", "--format", "json")
    assert again.returncode == 0, again
    summary = json.loads(again.stdout)
    assert (summary["new_alerts"], summary["changed_alerts"]) == (0, 0)

    assert run("keys", "shred", "--tenant", "acme", "--yes").returncode == 0

    erased = run("alerts", "list", "--format", "json").json()
    assert [a["title"] for a in erased] == ["(erased by keys shred)"]
    assert erased[0]["group"] == {}
    assert run("verify").returncode == 0
