"""`auditlake search`, `sql`, `access` and `optimize` through the real console script."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/cli_testkit.py
    from cli_testkit import DemoLake, Run

MINE = "contoso"


def _grant(run: Run, *args: str) -> None:
    r = run("access", "grant", *args)
    assert r.returncode == 0, r


def test_search_formats_agree_and_round_trip(run: Run, demo_copy: DemoLake, tmp_path: Path) -> None:
    q = ("search", f"tenant:{MINE} outcome:failure", "--limit", "0")
    jsonl = run(*q, "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert rows and {r["tenant"] for r in rows} == {MINE}
    assert {r["outcome"] for r in rows} == {"failure"}
    assert all(isinstance(r["details"], (dict, type(None))) for r in rows)
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True)  # newest first
    ids = [r["event_id"] for r in rows]

    as_json = run(*q, "--format", "json").json()
    assert [r["event_id"] for r in as_json] == ids
    assert as_json == rows

    as_csv = run(*q, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["event_id"] for r in parsed] == ids

    out = tmp_path / "hits.parquet"
    as_parquet = run(*q, "--format", "parquet", "--output", str(out))
    assert as_parquet.returncode == 0, as_parquet
    assert pq.read_table(out).column("event_id").to_pylist() == ids

    table = run(*q)
    assert table.returncode == 0 and ids[0] in table.stdout


def test_query_string_and_options_are_one_filter(run: Run, demo_copy: DemoLake) -> None:
    a = run("search", f"tenant:{MINE} action:login outcome:failure", "--format", "jsonl")
    b = run(
        "search", "--tenant", MINE, "--action", "login", "--outcome", "failure",
        "--format", "jsonl",
    )  # fmt: skip
    c = run("search", "action:login", "--tenant", MINE, "--outcome", "failure", "--format", "jsonl")
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout == c.stdout and a.stdout


def test_cursor_pages_through_every_match(run: Run, demo_copy: DemoLake) -> None:
    everything = run("search", f"tenant:{MINE}", "--limit", "0", "--format", "jsonl")
    want = [json.loads(x)["event_id"] for x in everything.stdout.splitlines()]
    got: list[str] = []
    args = ["search", f"tenant:{MINE}", "--limit", "40", "--format", "jsonl"]
    cursor: list[str] = []
    for _ in range(100):
        page = run(*args, *cursor)
        assert page.returncode == 0, page
        got += [json.loads(x)["event_id"] for x in page.stdout.splitlines()]
        more = [line for line in page.stderr_lines if "--cursor" in line]
        if not more:
            break
        cursor = ["--cursor", more[0].rsplit(" ", 1)[1]]
    assert got == want


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("search", "colour:red"), ("unknown qualifier",)),
        (("search", "outcome:maybe"), ("maybe",)),
        (("search", "--category", "nope"), ("nope",)),
        (("search", "--since", "yesterday-ish"), ("yesterday-ish",)),
        (("search", "--cursor", "garbage"), ("invalid cursor",)),
        (("search", "--tenant", "../etc"), ("invalid",)),
        (("sql", "DROP VIEW events"), ("refused", "DROP")),
        (("sql", "SELECT * FROM read_csv('/etc/passwd')"), ("refused",)),
        (("sql", "SELEC 1"), ("SQL error",)),
    ],
)
def test_mistakes_are_one_line_usage_errors(
    run: Run, demo_copy: DemoLake, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    run(*args).assert_usage_error(*needles)


def test_a_viewer_sees_only_its_tenant(run: Run, demo_copy: DemoLake) -> None:
    _grant(run, "bob", "--tenant", MINE, "--role", "viewer")
    own = run("--as", "bob", "search", "--limit", "0", "--format", "jsonl")
    assert own.returncode == 0, own
    assert {json.loads(x)["tenant"] for x in own.stdout.splitlines()} == {MINE}
    run("--as", "bob", "search", "--tenant", "globex").assert_usage_error("may not read")
    counts = run("--as", "bob", "sql", "SELECT tenant, count(*) AS n FROM events GROUP BY 1",
                 "--format", "json")  # fmt: skip
    assert [r["tenant"] for r in counts.json()] == [MINE]
    # Roles gate the other read paths too.
    run("--as", "bob", "verify", "--tenant", MINE).assert_usage_error("may not verify")
    run("--as", "bob", "checkpoint", "export", "--tenant", MINE).assert_usage_error("may not")
    run("--as", "bob", "prove", "x", "--tenant", MINE).assert_usage_error("may not produce")
    # ...and writes are the operator's.
    run("--as", "bob", "access", "grant", "bob", "--tenant", "globex", "--role", "admin")\
        .assert_usage_error("local operator")  # fmt: skip
    run("--as", "bob", "ingest", "-", input="").assert_usage_error("local operator")
    # An auditor may verify its tenant, and only it.
    _grant(run, "bob", "--tenant", MINE, "--role", "auditor")
    verified = run("--as", "bob", "verify", "--format", "json")
    assert verified.returncode == 0, verified
    assert [t["tenant"] for t in verified.json()["tenants"]] == [MINE]


def test_access_list_and_revoke(run: Run, demo_copy: DemoLake) -> None:
    _grant(run, "bob", "--tenant", MINE, "--role", "investigator")
    _grant(run, "carol@example.com", "--tenant", "*", "--role", "auditor")
    listed = run("access", "list", "--format", "json").json()
    assert [(g["principal"], g["tenant"], g["role"]) for g in listed] == [
        ("bob", MINE, "investigator"),
        ("carol@example.com", "*", "auditor"),
    ]
    assert "prove" in listed[0]["permissions"] and "verify" not in listed[0]["permissions"]
    assert run("access", "revoke", "bob").returncode == 0
    run("access", "revoke", "bob").assert_usage_error("no such grant")
    assert run("access", "grant", "bob", "--tenant", MINE, "--role", "root").returncode == 2


def test_queries_land_in_the_read_audit_and_verify(run: Run, demo_copy: DemoLake) -> None:
    _grant(run, "bob", "--tenant", MINE, "--role", "viewer")
    assert run("--as", "bob", "search", "actor:alice*").returncode == 0
    assert run("--as", "bob", "sql", "SELECT 42 AS answer").returncode == 0
    assert run("--as", "bob", "sql", "ATTACH 'x.db'").returncode == 2
    audit = run(
        "sql",
        "SELECT actor_id, outcome, json_extract_string(details, '$.query') AS q "
        "FROM query_audit WHERE actor_id = 'bob' ORDER BY seq",
        "--format", "json",
    ).json()  # fmt: skip
    assert [(r["outcome"], r["q"]) for r in audit] == [
        ("success", "actor:alice*"),
        ("success", "SELECT 42 AS answer"),
        ("failure", "ATTACH 'x.db'"),
    ]
    verified = run("verify", "--format", "json")
    assert verified.returncode == 0, verified
    assert "auditlake" in [t["tenant"] for t in verified.json()["tenants"]]


def test_optimize_then_verify(run: Run, demo_copy: DemoLake) -> None:
    before = run("search", "--limit", "0", "--format", "jsonl").stdout
    result = run("optimize", "--format", "json")
    assert result.returncode == 0, result
    assert result.json()["files_removed"] >= result.json()["files_added"]
    assert run("verify").returncode == 0
    after = run("search", "--limit", "0", "--format", "jsonl").stdout
    assert sorted(after.splitlines()) == sorted(before.splitlines())


def test_search_offers_the_library_formats_and_page_size() -> None:
    from auditlake.cli.commands.query import search
    from lake.query import DEFAULT_LIMIT, FORMATS

    params = {p.name: p for p in search.params}
    assert list(params["fmt"].type.choices) == ["table", *FORMATS]  # type: ignore[attr-defined]
    assert params["limit"].default == DEFAULT_LIMIT
