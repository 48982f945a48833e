"""Hostile values on their way out (#17 C): a terminal table shows them, never obeys them,
and a CSV export does not hand a spreadsheet a formula.

Each event is ingested through the real `auditlake ingest` and read back through the real
`search`/`sql`, as an attacker with an ingest token and an investigator would.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cli_testkit import Run

ESC_TITLE = "\x1b]0;pwned\x07"  # OSC: sets the terminal's title
ESC_COLOUR = "\x1b[31mred\x1b[0m"
BIDI = "admin\u202egnp.exe"
MARKUP = "[bold red]alert[/bold red]"


def _event(n: int, target: str, actor: str = "mallory@acme.example") -> dict[str, Any]:
    return {
        "tenant": "acme",
        "id": f"hostile-{n}",
        "time": f"2026-03-01T09:0{n}:00Z",
        "category": "authentication",
        "action": "login",
        "outcome": "failure",
        "actor": {"id": actor, "type": "user", "ip": "192.0.2.10"},
        "target": {"id": target, "type": "service"},
        "source": "auth-service",
    }


@pytest.fixture
def hostile(run: Run, tmp_path: Path) -> Run:
    assert run("init", "--name", "acme").returncode == 0
    events = [
        _event(1, f"a{ESC_TITLE}b"),
        _event(2, ESC_COLOUR),
        _event(3, "line1\nline2\rline3\ttab"),
        _event(4, BIDI),
        _event(5, MARKUP),
        _event(6, '=HYPERLINK("http://evil.example","x")', actor="+cmd|' /C calc'!A0"),
        _event(7, "@SUM(1+1)", actor="-2+3"),
    ]
    src = tmp_path / "hostile.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    ingested = run("ingest", str(src))
    assert ingested.returncode == 0, ingested
    return run


def test_a_search_table_escapes_controls_bidi_and_markup(hostile: Run) -> None:
    result = hostile("search", "tenant:acme", "--format", "table")
    assert result.returncode == 0, result
    out = result.stdout
    for raw in ("\x1b", "\x07", "\u202e", "\r", "\t"):
        assert raw not in out, repr(raw)
    assert "a\\x1b]0;pwned\\x07b" in out
    assert "\\x1b[31mred\\x1b[0m" in out
    assert "line1\\nline2\\rline3\\ttab" in out
    assert "admin\\u202egnp.exe" in out
    assert MARKUP in out  # printed as typed, not turned into bold red "alert"
    # one line per row: a newline in a value does not split the table
    body = [line for line in out.splitlines() if line.startswith("│")]
    assert len(body) == 7


def test_an_sql_table_escapes_values_and_column_names(hostile: Run) -> None:
    result = hostile("sql", 'SELECT target_id AS "x\x1b[2Jy" FROM events WHERE seq = 0')
    assert result.returncode == 0, result
    assert "\x1b" not in result.stdout
    assert "x\\x1b[2Jy" in result.stdout


def test_csv_cells_that_start_a_formula_are_quoted(hostile: Run, tmp_path: Path) -> None:
    result = hostile("search", "tenant:acme", "--format", "csv", "--limit", "0")
    assert result.returncode == 0, result
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    targets = {r["event_id"]: r["target_id"] for r in rows}
    actors = {r["event_id"]: r["actor_id"] for r in rows}
    assert targets["hostile-6"] == '\'=HYPERLINK("http://evil.example","x")'
    assert actors["hostile-6"] == "'+cmd|' /C calc'!A0"
    assert targets["hostile-7"] == "'@SUM(1+1)"
    assert actors["hostile-7"] == "'-2+3"
    assert targets["hostile-3"] == "line1\nline2\rline3\ttab"  # not at the start: as is
    assert actors["hostile-1"] == "mallory@acme.example"
    # numbers stay numbers
    seqs = [r["seq"] for r in rows]
    assert all(s.lstrip("-").isdigit() and not s.startswith("'") for s in seqs)
