"""Streaming ingest: inputs are read, validated and spooled a chunk at a time.

The library tests force chunks of a few KiB (`CHUNK_BYTES`) so that a small input spans
many of them; the CLI tests do the same through AUDITLAKE_INGEST_CHUNK_BYTES, since the
command runs in its own process. The reference for every result is `lake.contract.validate`
over the whole input at once, which is what ingest did before it streamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pyarrow as pa
import pytest

import ingest.files as files
from ingest.fingerprints import fingerprints
from lake.contract import parse_jsonl, validate
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake

EXE = str(Path(sys.executable).with_name("auditlake"))
CHUNK = 2048  # bytes: each chunk holds about five events


def event(n: int, tenant: str = "acme", **overrides: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "tenant": tenant,
        "time": f"2026-03-01T12:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z",
        "category": "authentication",
        "action": "login",
        "outcome": "success" if n % 3 else "failure",
        "actor": {"id": f"user-{n % 7}", "ip": f"10.0.0.{n % 250}"},
        "details": {"n": n, "method": "password", "note": "x" * (n % 40)},
    }
    e.update(overrides)
    return e


def jsonl(events: list[Any]) -> bytes:
    return b"".join((e if isinstance(e, bytes) else orjson.dumps(e)) + b"\n" for e in events)


def messy_input() -> bytes:
    """About 200 events over many chunks: assigned and client ids, blank lines, a line
    that is not JSON, an invalid event, and an id repeated across chunks (the first
    copy is kept, the second rejected and quoted as sent)."""
    events: list[Any] = []
    for n in range(200):
        e = event(n, tenant="acme" if n % 2 else "beta")
        if n % 4 == 0:
            e["id"] = f"client-{n}"
        events.append(e)
    events[150] = b"{not json"
    events[170] = event(170, outcome="maybe")
    events[180] = event(180, tenant="beta", id="client-8")  # event 8 is beta's client-8
    events[181] = event(181, tenant="acme", id="client-8")  # another tenant: no clash
    lines: list[Any] = []
    for n, e in enumerate(events):
        lines.append(e)
        if n % 37 == 0:
            lines.append(b"")  # after events 0, 37, 74, 111, 148, 185
    return jsonl(lines)


def reference(data: bytes) -> tuple[pa.Table, list[Any], int]:
    """The whole input validated in one call, as ingest did before it streamed."""
    records, lines, issues = parse_jsonl(data)
    namespace = hashlib.sha256(data).hexdigest().encode()
    v = validate(records, namespace=namespace, lines=lines, pre_issues=issues)
    return v.table, v.rejected, len(records)


def summary_of(rejected: list[Any]) -> list[tuple[int, int | None, Any, list[str]]]:
    return [(r.index, r.line, r.raw, [str(i) for i in r.issues]) for r in rejected]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "CHUNK_BYTES", CHUNK)


# ---------------------------------------------------------------------------------------
# The library: open_input and its spool.


class Feed:
    """A pipe-like stdin that logs each read, to see when the input is consumed."""

    def __init__(self, data: bytes, log: list[tuple[str, int]]) -> None:
        self.data, self.pos, self.log = data, 0, log

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n < 0 else n
        self.log.append(("read", n))
        piece = self.data[self.pos : self.pos + n]
        self.pos += len(piece)
        return piece


def test_stdin_is_read_a_chunk_at_a_time_and_validated_as_it_arrives(
    small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = messy_input()
    log: list[tuple[str, int]] = []
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=Feed(data, log)))

    def progress(stage: str, done: int, total: int) -> None:
        log.append((stage, done))

    with files.open_input("-", progress=progress) as spooled:
        table = spooled.read_all()
        rejected = spooled.rejected
        assert spooled.spool_batches > 10  # one per chunk: the input went through in pieces

    reads = [n for kind, n in log if kind == "read"]
    assert max(reads) <= CHUNK  # never the whole input at once
    assert len(data) > 20 * CHUNK
    first_validated = next(i for i, (kind, _) in enumerate(log) if kind == "validate")
    last_read = max(i for i, (kind, _) in enumerate(log) if kind == "read")
    assert first_validated < last_read  # validation began long before the end of input
    want_table, want_rejected, _ = reference(data)
    assert table.equals(want_table)
    assert summary_of(rejected) == summary_of(want_rejected)


def test_many_chunks_give_exactly_the_one_call_result(tmp_path: Path, small_chunks: None) -> None:
    data = messy_input()
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    want_table, want_rejected, total = reference(data)

    with files.open_input(str(path)) as spooled:
        assert spooled.spool_batches > 10
        assert (spooled.total, spooled.rows) == (total, want_table.num_rows)
        assert spooled.digest == hashlib.sha256(data).hexdigest()
        assert spooled.read_all().equals(want_table)
        got_rejected = spooled.rejected

    assert summary_of(got_rejected) == summary_of(want_rejected)
    # What the reference says, spelled out: a bad line, an invalid event, and the repeat
    # of beta's client-8 (quoted as sent, pointing at the first use).
    assert [(r.index, [i.field for i in r.issues]) for r in got_rejected] == [
        (150, ["(event)"]),
        (170, ["outcome"]),
        (180, ["id"]),
    ]
    dup = got_rejected[-1]
    assert dup.raw == event(180, tenant="beta", id="client-8")
    assert "duplicate id 'client-8': event 8 of this input already uses it" in str(dup.issues[0])
    assert dup.line == 186  # five blank lines before it


def test_batches_follow_input_order_with_ids_assigned(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = messy_input()
    with files.open_input("-", data=data) as spooled:
        whole = spooled.read_all()
        parts = list(spooled.batches(7))
    assert [p.num_rows for p in parts[:-1]] == [7] * (len(parts) - 1)
    assert 0 < parts[-1].num_rows <= 7
    assert pa.concat_tables(parts).equals(whole)
    assert whole.column("event_id").null_count == 0
    # Read again (a file this time, cut differently): the same ids, so re-ingest dedupes.
    path = tmp_path / "again.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(files, "CHUNK_BYTES", 5000)
    assert files.load(str(path)).validated.table.column("event_id").equals(whole.column("event_id"))


def test_the_spool_is_private_and_leaves_nothing_behind(tmp_path: Path, small_chunks: None) -> None:
    before = set(tmp_path.iterdir())
    with files.open_input("-", data=messy_input(), spool_dir=tmp_path) as spooled:
        info = os.fstat(spooled._spool.fileno())
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_nlink == 0  # unlinked from the start: a crash cannot leave it behind
        assert info.st_size > 0
    assert spooled._spool.closed
    assert set(tmp_path.iterdir()) == before


def test_fingerprints_are_equal_for_equal_keys_only() -> None:
    tenants = pa.array(["acme", "acme", "beta", "acme", "acme", "acme"])
    ids = pa.array(["a", "b", "a", None, "a" * 100, "a"])
    prints = fingerprints(tenants, ids, seed=42)
    assert len(prints) == 5  # rows without an id have none
    assert prints[0] == prints[4]  # acme/a twice
    assert len({int(p) for p in prints[:4]}) == 4
    assert fingerprints(tenants, ids, seed=43)[0] != prints[0]


# ---------------------------------------------------------------------------------------
# The command: all or nothing over many chunks, and re-ingest.


@dataclass
class Cli:
    """`auditlake` over one lake, its config home and a small ingest chunk size."""

    lake: Lake
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [EXE, *args],
            input=stdin.decode() if stdin is not None else None,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def sizes(self) -> dict[str, int]:
        """Each tenant's number of events in the lake."""
        table = self.lake.events_table()
        return {t: Lake.tree_size(table, t) for t in self.lake.tenants(table)}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    signer = KeyStore(home).generate("k")
    TrustStore(home).add(signer.verifier_key)
    lake = Lake.init(tmp_path / "lake", "s", signer.verifier_key.encode())
    env = {
        **os.environ,
        "AUDITLAKE_HOME": str(home),
        "AUDITLAKE_LAKE": lake.root,
        "AUDITLAKE_INGEST_CHUNK_BYTES": str(CHUNK),
    }
    return Cli(lake, env, tmp_path)


def test_an_error_in_the_last_chunk_rejects_the_whole_ingest(cli: Cli, tmp_path: Path) -> None:
    events = [event(n) for n in range(60)]
    events[-1]["time"] = "2026-03-01 12:00"
    src = tmp_path / "late-error.jsonl"
    src.write_bytes(jsonl(events))
    assert src.stat().st_size > 5 * CHUNK

    result = cli.run("ingest", str(src))

    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "event 59 (line 60): time" in result.stderr
    assert "nothing was written" in result.stderr.splitlines()[-1]
    assert cli.sizes() == {}
    assert not Path(f"{src}.rejects.jsonl").exists()


def test_reingest_of_a_many_chunk_input_appends_nothing(cli: Cli, tmp_path: Path) -> None:
    data = jsonl([event(n, tenant="acme" if n % 3 else "beta") for n in range(90)])
    src = tmp_path / "events.jsonl"
    src.write_bytes(data)

    first = cli.run("ingest", str(src), "--batch-size", "25", "--output-format", "json")
    assert first.returncode == 0, first
    summary = json.loads(first.stdout)
    assert (summary["appended"], summary["duplicates"]) == (90, 0)
    assert [b["appended"] for b in summary["inputs"][0]["batches"]] == [25, 25, 25, 15]
    assert cli.sizes() == {"acme": 60, "beta": 30}

    # The same bytes again, from the file and from stdin: ids come from the input's
    # digest and positions, so every event is recognised and nothing is appended.
    for args, stdin in (((str(src),), None), (("-",), data)):
        again = cli.run("ingest", *args, "--output-format", "json", stdin=stdin)
        assert again.returncode == 0, again
        assert (json.loads(again.stdout)["appended"], json.loads(again.stdout)["duplicates"]) == (
            0,
            90,
        )
    assert cli.sizes() == {"acme": 60, "beta": 30}


def test_skip_invalid_over_many_chunks_writes_the_rest_and_the_rejects(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "messy.jsonl"
    src.write_bytes(messy_input())

    result = cli.run("ingest", str(src), "--skip-invalid", "--output-format", "json")

    assert result.returncode == 0, result
    summary = json.loads(result.stdout)
    assert (summary["appended"], summary["rejected"]) == (197, 3)
    rejects = [json.loads(line) for line in Path(f"{src}.rejects.jsonl").read_text().splitlines()]
    assert [(r["index"], r["line"]) for r in rejects] == [(150, 156), (170, 176), (180, 186)]
    assert rejects[2]["event"] == event(180, tenant="beta", id="client-8")
    assert cli.sizes() == {"acme": 100, "beta": 97}


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_lines_are_found_again_wherever_the_chunks_cut(
    monkeypatch: pytest.MonkeyPatch, trailing_newline: bool
) -> None:
    # Duplicates are quoted as sent, read again by line number: every line must be found
    # intact, whether it starts a chunk, ends one or ends the input without a newline.
    monkeypatch.setattr(files, "CHUNK_BYTES", 16)
    lines = [b"x" * (n % 11) + b"%d" % n for n in range(1, 60)]
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    assert files._lines_as_sent(set(range(1, 60)), None, "-", data) == dict(enumerate(lines, 1))
    for n in range(1, 60):  # one at a time: the search stops as soon as it has them all
        assert files._lines_as_sent({n}, None, "-", data) == {n: lines[n - 1]}
