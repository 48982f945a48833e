"""Every `auditlake` line of README.md runs, in order, on a fresh demo lake (#17 B15).

The README's first tour command failed as written (`auditlake demo --lake DIR`), and its
search examples matched nothing on the demo lake. This test reads the ```sh blocks of
README.md, runs each `auditlake ...` line through bash as a reader would type it (with
`export` lines applied, AUDITLAKE_HOME in tmp_path and /tmp paths moved into tmp_path),
and checks its exit code: 0, or N for a line that ends in `# exits N`. Every `search`
example must return at least one event. Lines that never return or need a service this
machine does not run are in SKIP, each with its reason; anything else in the README that
stops working fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cli_testkit import TIMEOUT, clean_env

README = Path(__file__).resolve().parents[2] / "README.md"

# A part of a README line -> why that line is not run here.
SKIP: dict[str, str] = {
    "auditlake serve": "a collector runs until stopped (tests/ingest run it as a process)",
    "auditlake tui": "an interactive terminal UI (tests/tui drive it headless)",
    "auditlake dashboard": "a web server runs until stopped (tests/dashboards run it)",
    "auditlake witness serve": "a witness runs until stopped (test_witness_cli runs one)",
    "auditlake witness add": "names a witness host that does not exist here",
    "auditlake witness ask": "needs a running witness (test_witness_cli runs one)",
    "--witness-key": "needs a witness's cosignatures (test_witness_cli)",
    "auditlake detect watch": "runs until stopped",
    "auditlake consume": "needs a NATS JetStream broker (tests/ingest start one)",
    "--engine ray": "needs a Ray cluster (the 'scale' extra)",
    "s3://": "needs an object store (test_object_store_cli runs moto)",
    "webhook:https://hooks.example": "posts to a host that does not exist",
}

_EXITS = re.compile(r"#.*\bexits (\d)\b")
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")
_EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)")


@dataclass(frozen=True)
class Line:
    """One command of the README: its text (continuations joined) and expected exit."""

    text: str
    exit_code: int

    @property
    def skip_reason(self) -> str | None:
        return next((why for part, why in SKIP.items() if part in self.text), None)


def _comment(text: str) -> str:
    """The trailing `# ...` of a shell line, outside quotes."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[i:]
    return ""


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def readme_lines(text: str) -> Iterator[Line | tuple[str, str]]:
    """The README's `auditlake` lines in order, and its `export` lines as (name, value)."""
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            while not _complete(line) and i + 1 < len(lines):
                i += 1
                line += "\n" + lines[i]
            i += 1
            if m := _EXPORT.match(line):
                yield m.group(1), m.group(2)
            elif line.startswith("auditlake "):
                m = _EXITS.search(_comment(line))
                yield Line(line, int(m.group(1)) if m else 0)


def test_the_readme_parser_reads_markers_quotes_and_continuations() -> None:
    text = (
        "```sh\nexport AUDITLAKE_LAKE=/tmp/x\n"
        'auditlake sql "SELECT 1\n  AS a"   # exits 2\n'
        "auditlake search 'a # b'\n"
        "auditlake witness serve --x \\\n    --y  # long\nmake demo\n```\n"
    )
    got = list(readme_lines(text))
    assert got == [
        ("AUDITLAKE_LAKE", "/tmp/x"),
        Line('auditlake sql "SELECT 1\n  AS a"   # exits 2', 2),
        Line("auditlake search 'a # b'", 0),
        Line("auditlake witness serve --x \\\n    --y  # long", 0),
    ]
    assert got[3].skip_reason == SKIP["auditlake witness serve"]  # type: ignore[union-attr]


def _events(path: Path) -> None:
    rows = [
        {"tenant": "acme", "id": f"readme-{n}", "time": f"2026-11-2{n}T10:00:00Z",
         "category": "authentication", "action": "login", "outcome": "success",
         "actor": {"id": f"user{n}@acme.example"}}
        for n in range(3)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_every_readme_command_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _events(work / "events.jsonl")
    env = clean_env(tmp_path / "home", tmp_path / "unused")
    del env["AUDITLAKE_LAKE"]  # the README's own `export` sets it
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")

    def local(text: str) -> str:  # /tmp/... of the README -> inside tmp_path
        return re.sub(r"/tmp/", f"{tmp_path}/", text)

    def sh(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command], env=env, cwd=work, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )  # fmt: skip

    def first_alert() -> dict[str, str]:
        out = sh("auditlake alerts list --format json")
        assert out.returncode == 0, out
        alert = json.loads(out.stdout)[0]
        return {"id": alert["alert_id"], "event": alert["event_ids"][0], "tenant": alert["tenant"]}

    def event_id() -> str:
        out = sh("auditlake search --tenant northwind --limit 1 --format json")
        assert out.returncode == 0, out
        return str(json.loads(out.stdout)[0]["event_id"])

    def verifier_key() -> str:
        out = sh("auditlake keys export")
        assert out.returncode == 0, out
        return out.stdout.splitlines()[0]

    values: dict[str, Callable[[], str]] = {
        "<event-id>": event_id,
        "<verifier key>": verifier_key,
        "<alert_id>": lambda: first_alert()["id"],
        "<alert event-id>": lambda: first_alert()["event"],
        "<alert tenant>": lambda: first_alert()["tenant"],
    }
    ran = 0
    skipped: set[str] = set()
    for item in readme_lines(README.read_text(encoding="utf-8")):
        if isinstance(item, tuple):
            name, value = item
            if name != "AUDITLAKE_HOME":  # keys stay in tmp_path, never the user's
                env[name] = local(value)
            continue
        if item.skip_reason:
            skipped.update(part for part in SKIP if part in item.text)
            continue
        command = local(item.text)
        for placeholder in set(_PLACEHOLDER.findall(command)):
            assert placeholder in values, f"README placeholder {placeholder} has no value here"
            command = command.replace(placeholder, values[placeholder]())
        done = sh(command)
        assert done.returncode == item.exit_code, (item.text, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (item.text, done.stderr)
        ran += 1
        if re.match(r"auditlake (--as \S+ )?search ", command) and item.exit_code == 0:
            # each documented search finds something in the demo lake
            probe = re.sub(r"\s>\s*\S+\s*$", "", command.split("  #")[0].rstrip())
            found = sh(probe + " --format jsonl --limit 1")
            assert found.returncode == 0 and found.stdout.strip(), (item.text, found.stderr)
    assert ran >= 40, ran
    assert skipped == set(SKIP), f"SKIP entries no README line needs: {set(SKIP) - skipped}"
