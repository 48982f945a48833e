"""The `auditlake` command's contract (the CLI and trust contract), end to end.

Every test runs the installed console script in a subprocess and checks all three things
a caller sees: stdout (data only, parseable when it is JSON), stderr (diagnostics, a
one-line reason for mistakes, never a traceback) and the exit code (0 ok, 1 a check
found a problem, 2 usage or input error).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditlake.cli import cli

if TYPE_CHECKING:
    from cli_testkit import DemoLake, Result, Run

MakeEnv = Callable[[Path, Path], dict[str, str]]

ROOT = Path(__file__).resolve().parents[2]
VERIFIER_KEY_RE = re.compile(r"^acme-\d{8}\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$")
PROOF_FIELDS = {
    "tenant",
    "event_id",
    "event",
    "leaf",
    "leaf_index",
    "tree_size",
    "inclusion_path",
    "checkpoint",
    "verifier_key",
}


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMAND_PATHS = list(_walk(cli))
TOP_LEVEL = sorted(cli.commands)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _summary(result: Result) -> dict[str, tuple[int, int, int]]:
    """Per tenant (events, sealed size, checkpoints) from `verify --format json`."""
    report = result.json()
    return {
        t["tenant"]: (t["events"], t["sealed_size"], t["checkpoints"]) for t in report["tenants"]
    }


def _kinds(report: dict[str, Any], tenant: str) -> list[str]:
    return [f["kind"] for t in report["tenants"] if t["tenant"] == tenant for f in t["findings"]]


# -- events ------------------------------------------------------------------------------

BASE_TIME = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make_event(tenant: str, event_id: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid wire event; `fields` override or add top-level fields."""
    event: dict[str, Any] = {
        "tenant": tenant,
        "id": event_id,
        "time": (BASE_TIME + timedelta(minutes=n)).isoformat(),
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": f"user{n}@{tenant}.example", "type": "user", "ip": "192.0.2.10"},
        "source": "auth-service",
        "details": {"mfa": True, "n": n},
    }
    event.update(fields)
    return event


def make_events(tenant: str, count: int, prefix: str = "ev") -> list[dict[str, Any]]:
    return [make_event(tenant, f"{prefix}-{tenant}-{i}", i) for i in range(count)]


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


# -- help and docs -----------------------------------------------------------------------


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "auditlake")
def test_every_command_has_help_that_states_its_purpose(run: Run, path: tuple[str, ...]) -> None:
    command = _command(path)
    assert command.help and command.help.strip(), f"{path} has no docstring"
    undocumented = [
        p.name for p in command.params if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert not undocumented, f"options without help: {undocumented}"

    result = run(*path, "--help")

    assert result.returncode == 0, result
    assert result.stderr == ""
    assert result.stdout.startswith(" ".join(("Usage: auditlake", *path)))
    purpose = command.help.strip().split("\n\n", 1)[0]
    assert _squash(purpose) in _squash(result.stdout)


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_every_top_level_command_is_in_the_readme(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = rf"\bauditlake\b[^\n]*?\s{re.escape(name)}(?=[\s`]|$)"
    assert re.search(pattern, readme, re.MULTILINE), f"`auditlake {name}` is not in README.md"


# -- init ----------------------------------------------------------------------------------


def test_init_prints_one_verifier_key_and_keeps_the_private_key_outside(
    run: Run, home: Path, lake: Path
) -> None:
    result = run("init", "--name", "acme")

    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout.endswith("\n")
    assert VERIFIER_KEY_RE.match(lines[0]), lines
    assert "created lake 'acme'" in result.stderr

    key_files = list((home / "keys").glob("*.key"))
    assert len(key_files) == 1
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert lines[0] in (home / "trusted_keys").read_text()
    for f in lake.rglob("*"):
        if f.is_file():
            assert b"PRIVATE KEY" not in f.read_bytes(), f
    assert not list(lake.rglob("*.key"))
    assert lines[0] in (lake / "_auditlake" / "lake.json").read_text()


def test_init_twice_is_refused(run: Run, home: Path) -> None:
    assert run("init", "--name", "acme").returncode == 0
    keys_before = sorted((home / "keys").iterdir())

    again = run("init", "--name", "acme")

    again.assert_usage_error("already holds a lake")
    assert sorted((home / "keys").iterdir()) == keys_before


def test_init_refuses_a_config_home_inside_the_lake(
    run: Run, lake: Path, make_env: MakeEnv
) -> None:
    result = run("init", "--name", "acme", env=make_env(lake / "home", lake))

    result.assert_usage_error("inside the lake")
    assert not list(lake.rglob("*.key"))


def test_init_on_a_file_is_a_usage_error_and_makes_no_key(
    run: Run, tmp_path: Path, home: Path
) -> None:
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("not a lake")

    result = run("--lake", in_the_way, "init", "--name", "acme")

    result.assert_usage_error(str(in_the_way))
    assert not home.exists()


# -- ingest ------------------------------------------------------------------------------


@pytest.fixture
def acme(run: Run) -> Run:
    """An initialised, empty lake named acme; returns `run`."""
    assert run("init", "--name", "acme").returncode == 0
    return run


def test_ingest_jsonl_then_again_appends_nothing(acme: Run, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "events.jsonl", make_events("acme", 4) + make_events("beta", 2))

    first = acme("ingest", src, "--output-format", "json")

    assert first.returncode == 0, first
    summary = first.json()
    assert (summary["appended"], summary["duplicates"], summary["rejected"]) == (6, 0, 0)
    (entry,) = summary["inputs"]
    assert entry["format"] == "jsonl" and entry["events"] == 6
    sizes = {t: v["tree_size"] for b in entry["batches"] for t, v in b["tenants"].items()}
    assert sizes == {"acme": 4, "beta": 2}

    again = acme("ingest", src, "--output-format", "json")

    assert again.returncode == 0, again
    assert (again.json()["appended"], again.json()["duplicates"]) == (0, 6)
    verified = acme("verify", "--format", "json")
    assert verified.returncode == 0, verified
    assert {t: v[0] for t, v in _summary(verified).items()} == {"acme": 4, "beta": 2}


def test_ingest_table_output_goes_to_stdout_and_the_tally_to_stderr(
    acme: Run, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "events.jsonl", make_events("acme", 3))

    result = acme("ingest", src)

    assert result.returncode == 0, result
    assert "acme" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        "3 event(s) appended, 0 already present, 0 rejected"
    )
    assert "Warning" not in result.stderr  # e.g. click's duplicate-parameter warning


def test_ingest_from_stdin(acme: Run) -> None:
    data = "".join(json.dumps(e) + "\n" for e in make_events("acme", 3, prefix="stdin"))

    result = acme("ingest", "-", "--output-format", "json", input=data)

    assert result.returncode == 0, result
    summary = result.json()
    assert summary["appended"] == 3
    assert summary["inputs"][0]["input"] == "stdin"


def test_ingest_format_overrides_the_extension(acme: Run, tmp_path: Path) -> None:
    as_text = write_jsonl(tmp_path / "events.txt", make_events("acme", 2))
    as_array = tmp_path / "array.data"
    as_array.write_text(json.dumps(make_events("acme", 2, prefix="arr")))

    unknown = acme("ingest", as_text)
    unknown.assert_usage_error("--format", "events.txt")

    jsonl = acme("ingest", as_text, "--format", "jsonl", "--output-format", "json")
    assert jsonl.returncode == 0, jsonl
    assert jsonl.json()["inputs"][0]["format"] == "jsonl"
    array = acme("ingest", as_array, "--format", "json", "--output-format", "json")
    assert array.returncode == 0, array
    assert array.json()["inputs"][0]["format"] == "json"
    assert array.json()["appended"] == 2


def _with_bad_time(tmp_path: Path) -> Path:
    events = make_events("acme", 3, prefix="mixed")
    events[1]["time"] = "2026-03-01 10:00"
    return write_jsonl(tmp_path / "mixed.jsonl", events)


def test_one_invalid_event_rejects_the_whole_ingest(acme: Run, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "ok.jsonl", make_events("acme", 2))
    assert acme("ingest", good).returncode == 0
    before = acme("verify", "--format", "json")

    result = acme("ingest", _with_bad_time(tmp_path))

    assert result.returncode == 2, result
    assert result.stdout == ""
    issue = result.stderr_lines[0]
    assert "event 1" in issue and "time" in issue and "RFC 3339" in issue, issue
    assert "nothing was written" in result.stderr_lines[-1]
    after = acme("verify", "--format", "json")
    assert after.returncode == 0, after
    assert _summary(after) == _summary(before)
    assert not (tmp_path / "mixed.jsonl.rejects.jsonl").exists()


def test_skip_invalid_ingests_the_rest_and_writes_rejects(acme: Run, tmp_path: Path) -> None:
    src = _with_bad_time(tmp_path)

    result = acme("ingest", src, "--skip-invalid", "--output-format", "json")

    assert result.returncode == 0, result
    summary = result.json()
    assert (summary["appended"], summary["rejected"]) == (2, 1)
    rejects = Path(f"{src}.rejects.jsonl")
    assert summary["inputs"][0]["rejects_file"] == str(rejects)
    (line,) = rejects.read_text().splitlines()
    reject = json.loads(line)
    assert reject["index"] == 1 and reject["event"]["id"] == "mixed-acme-1"
    assert [e["field"] for e in reject["errors"]] == ["time"]
    assert "rejects" in result.stderr


def test_invalid_tenant_in_an_event_is_rejected(acme: Run, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "evil.jsonl", [make_event("../etc", "x1")])

    result = acme("ingest", src)

    assert result.returncode == 2, result
    assert "event 0" in result.stderr and "tenant" in result.stderr


def test_unknown_top_level_field_is_rejected(acme: Run, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "extra.jsonl", [make_event("acme", "x1", colour="blue")])

    result = acme("ingest", src)

    assert result.returncode == 2, result
    assert "event 0" in result.stderr and "colour" in result.stderr


def _not_parquet(d: Path) -> Path:
    path = d / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    return path


@pytest.mark.parametrize(
    ("make_input", "needles"),
    [
        (lambda d: d / "missing.jsonl", ("missing.jsonl", "no such file")),
        (lambda d: d, ("is a directory",)),
        (_not_parquet, ("broken.parquet", "Parquet")),
    ],
    ids=["missing", "directory", "not-parquet"],
)
def test_unreadable_input_is_a_one_line_usage_error(
    acme: Run, tmp_path: Path, make_input: Callable[[Path], Path], needles: tuple[str, ...]
) -> None:
    acme("ingest", make_input(tmp_path)).assert_usage_error(*needles)


def test_ingest_without_a_lake_says_how_to_make_one(run: Run, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "events.jsonl", make_events("acme", 1))

    run("ingest", src).assert_usage_error("auditlake init")


# -- verify and trust ----------------------------------------------------------------------


def test_verify_demo_lake(demo_lake: DemoLake, run: Run) -> None:
    table = run("verify", env=demo_lake.env)
    assert table.returncode == 0, table
    assert all(t in table.stdout for t in demo_lake.tenants())

    result = run("verify", "--format", "json", env=demo_lake.env)

    assert result.returncode == 0, result
    report = result.json()
    assert report["ok"] is True and report["findings"] == 0
    assert sorted(t["tenant"] for t in report["tenants"]) == demo_lake.tenants()
    for t in report["tenants"]:
        assert t["ok"] is True and t["findings"] == []
        assert t["events"] == t["sealed_size"] > 0
        assert t["checkpoints"] >= 1
        assert t["key_names"] == ["demo-signing-key"]
    assert report["events"] == sum(t["events"] for t in report["tenants"])


def test_verify_names_a_modified_event(demo_copy: DemoLake, run: Run) -> None:
    tenant = "globex"
    data_file = sorted((demo_copy.lake / "events" / f"tenant={tenant}").rglob("*.parquet"))[0]
    table = pq.ParquetFile(data_file).read()
    actors = table.column("actor_id").to_pylist()
    actors[3] = "mallory@evil.example"
    i = table.schema.get_field_index("actor_id")
    table = table.set_column(i, table.schema.field(i), pa.array(actors, pa.string()))
    pq.write_table(table, data_file)
    event_id = table.column("event_id")[3].as_py()
    seq = table.column("seq")[3].as_py()

    result = run("verify", "--format", "json")

    assert result.returncode == 1, result
    assert "finding" in result.stderr
    report = result.json()
    assert report["ok"] is False
    (finding,) = [f for t in report["tenants"] for f in t["findings"]]
    assert finding["tenant"] == tenant and finding["kind"] == "modified"
    assert (finding["event_id"], finding["seq"]) == (event_id, seq)
    assert all(t["ok"] for t in report["tenants"] if t["tenant"] != tenant)


def test_verify_distrusts_keys_found_only_in_the_lake(
    demo_lake: DemoLake, run: Run, tmp_path: Path, make_env: MakeEnv
) -> None:
    empty_home = make_env(tmp_path / "empty-home", demo_lake.lake)

    untrusted = run("verify", "--format", "json", env=empty_home)

    assert untrusted.returncode == 1, untrusted
    assert "no trusted keys" in untrusted.stderr
    report = untrusted.json()
    for tenant in demo_lake.tenants():
        kinds = _kinds(report, tenant)
        assert kinds and set(kinds) == {"untrusted_key"}, (tenant, kinds)

    exported = run("keys", "export", env=demo_lake.env)
    assert exported.returncode == 0, exported
    trusted = run(
        "verify", "--trusted-key", exported.stdout.strip(), "--format", "json", env=empty_home
    )
    assert trusted.returncode == 0, trusted
    assert trusted.json()["ok"] is True


def test_verify_with_a_malformed_trusted_key_is_a_usage_error(
    demo_lake: DemoLake, run: Run
) -> None:
    result = run("verify", "--trusted-key", "not-a-key", env=demo_lake.env)

    result.assert_usage_error("not-a-key")


def test_verify_one_tenant(demo_lake: DemoLake, run: Run) -> None:
    result = run("verify", "--tenant", "contoso", "--format", "json", env=demo_lake.env)

    assert result.returncode == 0, result
    assert [t["tenant"] for t in result.json()["tenants"]] == ["contoso"]


# -- proofs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(demo_lake: DemoLake) -> tuple[str, str]:
    """A (tenant, event id) from the middle of a demo tenant's log."""
    ids = demo_lake.event_ids("contoso")
    return "contoso", ids[len(ids) // 2]


@pytest.fixture
def proof_file(demo_copy: DemoLake, run: Run, sample: tuple[str, str], tmp_path: Path) -> Path:
    tenant, event_id = sample
    result = run("prove", event_id, "--tenant", tenant)
    assert result.returncode == 0, result
    path = tmp_path / "proof.json"
    path.write_text(result.stdout)
    return path


def test_prove_prints_exactly_the_design_fields(
    demo_copy: DemoLake, run: Run, sample: tuple[str, str]
) -> None:
    tenant, event_id = sample

    result = run("prove", event_id, "--tenant", tenant)

    assert result.returncode == 0, result
    assert result.stderr == ""
    proof = result.json()  # stdout is one JSON document, nothing else
    assert set(proof) == PROOF_FIELDS
    assert (proof["tenant"], proof["event_id"]) == (tenant, event_id)
    assert proof["event"]["event_id"] == event_id and proof["event"]["tenant"] == tenant
    assert proof["leaf_index"] == proof["event"]["seq"]
    assert 0 <= proof["leaf_index"] < proof["tree_size"]
    assert base64.b64decode(proof["leaf"])[:1] == b"\x01"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in proof["inclusion_path"])
    assert proof["checkpoint"].startswith(f"auditlake/demo/{tenant}\n{proof['tree_size']}\n")
    assert proof["verifier_key"] == demo_copy.verifier_key


def test_verify_proof_accepts_an_intact_proof(
    demo_lake: DemoLake, run: Run, proof_file: Path, tmp_path: Path, make_env: MakeEnv
) -> None:
    result = run(
        "verify-proof",
        proof_file,
        "--key",
        demo_lake.verifier_key,
        env=make_env(tmp_path / "no-home", tmp_path / "no-lake"),
    )

    assert result.returncode == 0, result
    assert result.stdout.startswith("proof OK: ")
    assert result.stderr == ""


def test_verify_proof_from_stdin_with_the_home_trust_store(
    demo_lake: DemoLake, run: Run, proof_file: Path
) -> None:
    result = run("verify-proof", "-", input=proof_file.read_bytes(), env=demo_lake.env)

    assert result.returncode == 0, result
    assert result.stdout.startswith("proof OK: ")


def _flip_hex(text: str) -> str:
    return ("0" if text[0] != "0" else "1") + text[1:]


ALTERATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "event.actor_id": lambda p: p["event"].update(actor_id="mallory@evil.example"),
    "event.time": lambda p: p["event"].update(time="2020-01-01T00:00:00.000000Z"),
    "inclusion_path": lambda p: p["inclusion_path"].__setitem__(
        0, _flip_hex(p["inclusion_path"][0])
    ),
    "tree_size": lambda p: p.update(tree_size=p["tree_size"] + 1),
    "leaf_index": lambda p: p.update(leaf_index=p["leaf_index"] + 1),
    "checkpoint": lambda p: p.update(
        checkpoint=p["checkpoint"].replace(f"\n{p['tree_size']}\n", f"\n{p['tree_size'] + 1}\n")
    ),
}


@pytest.mark.parametrize("field", sorted(ALTERATIONS))
def test_verify_proof_rejects_an_altered_proof(
    demo_lake: DemoLake, run: Run, proof_file: Path, field: str
) -> None:
    proof = json.loads(proof_file.read_text())
    ALTERATIONS[field](proof)
    proof_file.write_text(json.dumps(proof))

    result = run("verify-proof", proof_file, "--key", demo_lake.verifier_key, env=demo_lake.env)

    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("proof FAILED: ")
    assert len(result.stderr_lines) == 1


def test_verify_proof_rejects_a_proof_under_another_key(run: Run, proof_file: Path) -> None:
    other = run("keys", "generate", "--name", "stranger")
    assert other.returncode == 0, other

    result = run("verify-proof", proof_file, "--key", other.stdout.strip())

    assert result.returncode == 1, result
    assert result.stderr.startswith("proof FAILED: ")


def test_verify_proof_of_a_non_json_file_is_a_usage_error(
    demo_lake: DemoLake, run: Run, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("this is not json\n")

    result = run("verify-proof", junk, "--key", demo_lake.verifier_key)

    result.assert_usage_error("junk.json", "not JSON")


def test_verify_proof_of_a_missing_file_is_a_usage_error(demo_lake: DemoLake, run: Run) -> None:
    run("verify-proof", "nope.json", "--key", demo_lake.verifier_key).assert_usage_error(
        "nope.json"
    )


def test_verify_proof_without_any_key_is_a_usage_error(
    run: Run, proof_file: Path, make_env: Callable[[Path, Path], dict[str, str]], tmp_path: Path
) -> None:
    empty = make_env(tmp_path / "empty-home", tmp_path / "no-lake")  # no trusted keys here
    run("verify-proof", proof_file, env=empty).assert_usage_error("--key")


def test_prove_unknown_event_is_a_usage_error(demo_copy: DemoLake, run: Run) -> None:
    result = run("prove", "no-such-event", "--tenant", "contoso")

    result.assert_usage_error("no-such-event", "contoso")


def test_prove_needs_an_event_or_consistency(demo_copy: DemoLake, run: Run) -> None:
    run("prove", "--tenant", "contoso").assert_usage_error("EVENT_ID")


def test_consistency_proof_is_accepted(demo_copy: DemoLake, run: Run, tmp_path: Path) -> None:
    result = run("prove", "--consistency", "5", "--tenant", "globex")

    assert result.returncode == 0, result
    proof = result.json()
    assert proof["tenant"] == "globex" and proof["old_size"] == 5
    assert proof["new_size"] > 5
    path = tmp_path / "consistency.json"
    path.write_text(result.stdout)

    checked = run("verify-proof", path, "--key", demo_copy.verifier_key)

    assert checked.returncode == 0, checked
    assert checked.stdout.startswith("proof OK: ") and "size 5" in checked.stdout

    proof["consistency_path"][0] = _flip_hex(proof["consistency_path"][0])
    path.write_text(json.dumps(proof))
    altered = run("verify-proof", path, "--key", demo_copy.verifier_key)
    assert altered.returncode == 1, altered


def test_consistency_past_the_log_is_a_usage_error(demo_copy: DemoLake, run: Run) -> None:
    result = run("prove", "--consistency", "999999", "--tenant", "globex")

    result.assert_usage_error("old size")


# -- checkpoints and rollback ----------------------------------------------------------


def _check_note(text: str, lake_name: str, tenant: str, size: int, key_name: str) -> None:
    lines = text.split("\n")
    assert text.endswith("\n") and lines[-1] == ""
    origin, tree_size, root, signed_time, blank, *signatures = lines[:-1]
    assert origin == f"auditlake/{lake_name}/{tenant}"
    assert tree_size == str(size)
    assert len(base64.b64decode(root, validate=True)) == 32
    assert re.fullmatch(r"time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", signed_time)
    assert blank == ""
    assert signatures and all(s.startswith("— ") for s in signatures)
    assert signatures[0].split(" ")[1] == key_name


def test_checkpoint_export_is_a_signed_note(demo_lake: DemoLake, run: Run, tmp_path: Path) -> None:
    sizes = _summary(run("verify", "--format", "json", env=demo_lake.env))

    result = run("checkpoint", "export", "--tenant", "northwind", env=demo_lake.env)

    assert result.returncode == 0, result
    assert result.stderr == ""
    _check_note(result.stdout, "demo", "northwind", sizes["northwind"][1], "demo-signing-key")
    cp = tmp_path / "cp.txt"
    cp.write_text(result.stdout)
    again = run("verify", "--since-checkpoint", cp, "--format", "json", env=demo_lake.env)
    assert again.returncode == 0, again
    assert again.json()["ok"] is True


def test_checkpoint_export_of_an_unknown_tenant_is_a_usage_error(
    demo_lake: DemoLake, run: Run
) -> None:
    run("checkpoint", "export", "--tenant", "nosuch", env=demo_lake.env).assert_usage_error(
        "nosuch"
    )


@pytest.mark.slow
def test_rollback_is_detected_against_an_exported_checkpoint(
    demo_copy: DemoLake, run: Run, tmp_path: Path
) -> None:
    tenant = "contoso"
    old_cp = tmp_path / "cp-old.txt"
    old_cp.write_text(run("checkpoint", "export", "--tenant", tenant).stdout)
    before = tmp_path / "lake-before"
    shutil.copytree(demo_copy.lake, before)
    src = write_jsonl(tmp_path / "more.jsonl", make_events(tenant, 5, prefix="later"))
    assert run("ingest", src).returncode == 0
    new_export = run("checkpoint", "export", "--tenant", tenant)
    assert new_export.returncode == 0, new_export
    new_cp = tmp_path / "cp-new.txt"
    new_cp.write_text(new_export.stdout)
    old_size = int(old_cp.read_text().split("\n")[1])
    assert int(new_export.stdout.split("\n")[1]) == old_size + 5

    grown = run("verify", "--since-checkpoint", old_cp, "--format", "json")
    assert grown.returncode == 0, grown

    old_lake = ("--lake", before)
    same = run(*old_lake, "verify", "--since-checkpoint", old_cp, "--format", "json")
    assert same.returncode == 0, same

    rolled_back = run(*old_lake, "verify", "--since-checkpoint", new_cp, "--format", "json")

    assert rolled_back.returncode == 1, rolled_back
    report = rolled_back.json()
    assert _kinds(report, tenant) == ["rollback"]
    (finding,) = [f for t in report["tenants"] for f in t["findings"]]
    assert finding["tree_size"] == old_size + 5
    assert all(t["ok"] for t in report["tenants"] if t["tenant"] != tenant)


def test_since_checkpoint_of_a_missing_or_bogus_file_is_a_usage_error(
    demo_lake: DemoLake, run: Run, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.txt"
    bogus.write_text("hello\n")

    missing = run("verify", "--since-checkpoint", tmp_path / "nope.txt", env=demo_lake.env)
    missing.assert_usage_error("nope.txt")
    run("verify", "--since-checkpoint", bogus, env=demo_lake.env).assert_usage_error(
        "--since-checkpoint"
    )


# -- keys ----------------------------------------------------------------------------------


def test_keys_list_and_export(demo_lake: DemoLake, run: Run) -> None:
    listed = run("keys", "list", "--format", "json", env=demo_lake.env)
    exported = run("keys", "export", env=demo_lake.env)

    assert listed.returncode == 0 and exported.returncode == 0, (listed, exported)
    assert listed.stderr == "" and exported.stderr == ""
    assert listed.json() == [
        {"name": "demo-signing-key", "verifier_key": demo_lake.verifier_key, "active": True}
    ]
    assert exported.stdout == demo_lake.verifier_key + "\n"


def test_keys_generate_makes_the_new_key_active(
    demo_copy: DemoLake, run: Run, home: Path, tmp_path: Path
) -> None:
    generated = run("keys", "generate", "--name", "x")

    assert generated.returncode == 0, generated
    (key_line,) = generated.stdout.splitlines()
    assert key_line.startswith("x+")
    assert stat.S_IMODE((home / "keys" / "x.key").stat().st_mode) == 0o600
    listed = run("keys", "list", "--format", "json")
    assert listed.returncode == 0, listed
    assert {k["name"]: k["active"] for k in listed.json()} == {
        "demo-signing-key": False,
        "x": True,
    }
    table = run("keys", "list")
    assert table.returncode == 0 and "x" in table.stdout
    exported = run("keys", "export")
    assert exported.stdout.splitlines() == sorted(
        [demo_copy.verifier_key, key_line], key=lambda k: k.split("+")[0]
    )

    # Batches signed by the new key verify beside the old ones.
    src = write_jsonl(tmp_path / "after.jsonl", make_events("contoso", 2, prefix="rot"))
    assert run("ingest", src).returncode == 0
    verified = run("verify", "--format", "json")
    assert verified.returncode == 0, verified
    contoso = next(t for t in verified.json()["tenants"] if t["tenant"] == "contoso")
    assert set(contoso["key_names"]) == {"demo-signing-key", "x"}


@pytest.mark.parametrize("name", ["../evil", "has space", ""])
def test_keys_generate_refuses_a_bad_name(run: Run, name: str, home: Path) -> None:
    run("keys", "generate", "--name", name).assert_usage_error("invalid key name")
    assert not list(home.rglob("*.key"))


def test_keys_export_without_keys_is_a_usage_error(run: Run) -> None:
    run("keys", "export").assert_usage_error("no signing keys")


# -- tenants, streams ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "--tenant", "../etc"),
        ("prove", "some-id", "--tenant", "../etc"),
        ("prove", "--consistency", "1", "--tenant", "../etc"),
        ("checkpoint", "export", "--tenant", "../etc"),
        ("checkpoint", "export", "--tenant", "Contoso"),
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_tenant_id_is_a_usage_error(
    demo_lake: DemoLake, run: Run, args: tuple[str, ...]
) -> None:
    run(*args, env=demo_lake.env).assert_usage_error("invalid tenant id")


def test_piped_output_carries_no_progress_or_colour(
    demo_copy: DemoLake, run: Run, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "more.jsonl", make_events("globex", 3, prefix="pipe"))
    results = [
        run("ingest", src, "--output-format", "json"),
        run("verify", "--format", "json"),
        run("prove", "--consistency", "1", "--tenant", "globex"),
        run("keys", "list", "--format", "json"),
    ]
    for result in results:
        assert result.returncode == 0, result
        result.json()  # the whole of stdout is one JSON document
        assert "\x1b" not in result.stdout + result.stderr, result
        assert "\r" not in result.stderr, result
    assert results[0].stderr == "" and results[1].stderr == ""


def test_unknown_command_is_a_usage_error(run: Run) -> None:
    result = run("bogus")

    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "No such command" in result.stderr


# -- demo ----------------------------------------------------------------------------------


def test_demo_refuses_a_path_that_is_not_a_directory(run: Run, tmp_path: Path, home: Path) -> None:
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("not a lake")

    result = run("--lake", in_the_way, "demo", "--days", "1", "--events-per-day", "10")

    result.assert_usage_error(str(in_the_way))
    assert not home.exists()


def test_demo_refuses_a_negative_seed_before_touching_anything(
    run: Run, home: Path, lake: Path
) -> None:
    result = run("demo", "--seed", "-1", "--days", "1", "--events-per-day", "10")

    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "--seed" in result.stderr
    assert not home.exists() and not lake.exists()


def test_verify_of_an_unknown_tenant_is_a_usage_error(run, demo_lake) -> None:  # type: ignore[no-untyped-def]
    # A misspelt tenant in a cron job must not read as "ok".
    result = run("verify", "--tenant", "northwnd", env=demo_lake.env)
    result.assert_usage_error("northwnd")


def test_unknown_principal_is_refused_not_given_operator_rights(run, demo_lake) -> None:  # type: ignore[no-untyped-def]
    result = run("--as", "mallory", "verify", env=demo_lake.env)
    result.assert_usage_error("mallory")
    env = {**demo_lake.env, "AUDITLAKE_PRINCIPAL": "viewer"}
    run("checkpoint", "export", "--tenant", "northwind", env=env).assert_usage_error("viewer")


def test_init_with_a_bad_name_creates_no_key(run, env) -> None:  # type: ignore[no-untyped-def]
    run("init", "--name", "Bad_Name", env=env).assert_usage_error("Bad_Name")
    keys_dir = Path(env["AUDITLAKE_HOME"]) / "keys"
    assert not keys_dir.exists() or not list(keys_dir.glob("*.key"))
