"""The machine says no (#17 C): a full disk under a command that writes the lake is one
line on stderr and exit 2, never a traceback, and the lake is intact once space returns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from testkit import fill, small_disk

if TYPE_CHECKING:
    from cli_testkit import Run


def test_seal_on_a_full_disk_is_one_line_and_the_lake_verifies_after(
    run: Run, make_env: Callable[[Path, Path], dict[str, str]], tmp_path: Path
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text(
        "".join(
            json.dumps(
                {
                    "tenant": "acme",
                    "time": f"2026-12-01T00:00:{i % 60:02d}Z",
                    "category": "authentication",
                    "action": "login",
                    "outcome": "success",
                    "actor": {"id": f"u{i}"},
                }
            )
            + "\n"
            for i in range(300)
        )
    )
    with small_disk(tmp_path / "small", "16m") as disk:
        env = make_env(tmp_path / "home", disk / "lake")
        assert run("init", env=env).returncode == 0
        assert run("ingest", events, env=env).returncode == 0
        filler = fill(disk)

        sealed = run("seal", "--rebuild-tiles", env=env)

        sealed.assert_usage_error("No space left on device")
        filler.unlink()
        again = run("seal", "--rebuild-tiles", env=env)
        assert again.returncode == 0, again
        checked = run("verify", "--format", "json", env=env)
        assert checked.returncode == 0, checked
        assert list(disk.rglob(".tmp-*")) == []
