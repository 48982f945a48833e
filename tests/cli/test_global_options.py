"""`--lake` and `--as` before or after any subcommand (#17 B15).

The README writes `auditlake demo --lake DIR`; click took the global options only before
the subcommand. Each test runs the real command with the environment pointing elsewhere,
so only the option's place decides which lake or principal is used.
"""

from __future__ import annotations

from pathlib import Path

from cli_testkit import DemoLake, Run, clean_env


def test_demo_accepts_lake_after_the_subcommand(run: Run, tmp_path: Path) -> None:
    where = tmp_path / "after"
    result = run("demo", "--days", "1", "--events-per-day", "10", "--lake", str(where))
    assert result.returncode == 0, result
    assert (where / "events").is_dir()


def test_lake_after_a_nested_subcommand(demo_lake: DemoLake, run: Run, tmp_path: Path) -> None:
    env = clean_env(demo_lake.home, tmp_path / "nowhere")
    for args in (("keys", "list"), ("detect", "list"), ("retention", "status")):
        result = run(*args, "--lake", str(demo_lake.lake), "--format", "json", env=env)
        assert result.returncode == 0, result
    searched = run("search", "--limit", "1", "--lake", str(demo_lake.lake), "--format", "json",
                   env=env)  # fmt: skip
    assert len(searched.json()) == 1


def test_after_the_subcommand_wins_over_before_and_env(
    demo_lake: DemoLake, run: Run, tmp_path: Path
) -> None:
    env = clean_env(demo_lake.home, tmp_path / "env-lake")
    result = run("--lake", str(tmp_path / "before"), "search", "--limit", "1",
                 "--lake", str(demo_lake.lake), "--format", "json", env=env)  # fmt: skip
    assert result.returncode == 0, result
    assert len(result.json()) == 1
    before = run("--lake", str(demo_lake.lake), "search", "--limit", "1", "--format", "json",
                 env=env)  # fmt: skip
    assert before.returncode == 0, before


def test_as_after_the_subcommand(demo_lake: DemoLake, run: Run) -> None:
    env = demo_lake.env
    refused = run("optimize", "--as", "bob", env=env)
    refused.assert_usage_error("local operator")
    nested = run("access", "grant", "carol", "--tenant", "acme", "--role", "viewer", "--as",
                 "bob", env=env)  # fmt: skip
    nested.assert_usage_error("local operator")
    bad = run("search", "--as", "not a name", env=env)
    bad.assert_usage_error("invalid principal")
