"""A service that only sends events imports the SDK without the lake's heavy packages.

Each check runs in a fresh interpreter, since this test process has imported everything.
The import time itself is measured by `python -m benchmarks.sdk_import`, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["pyarrow", "deltalake", "duckdb", "polars", "numpy", "streamlit", "textual"]

# Prints what importing the SDK's names, and logging one event with it, added to sys.modules.
PROBE = """
import json, sys
before = set(sys.modules)
from ingest.sdk import (
    AuditClient, ClientStats, EventHelpers, EventOptions, InvalidEventError, build_event,
    format_time, uuid7,
)
client = AuditClient("http://127.0.0.1:9", "alk_test", spool_dir=sys.argv[1], timeout_s=0.5)
client.login("northwind", "alice", outcome="success", ip="192.0.2.1")
spooled = client.close(timeout_s=10)
added = sorted(set(sys.modules) - before)
import ingest.sdk
direct = ingest.sdk.DirectWriter.__module__
print(json.dumps({"added": added, "spooled": spooled, "direct": direct,
                  "after_direct": sorted(set(sys.modules) - before)}))
"""


def fresh_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -c code args...` in a fresh interpreter from the repository's root."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


class Probe(NamedTuple):
    added: list[str]  # modules the SDK's names and one logged event loaded
    spooled: bool  # close() put the event in the spool (no collector listens)
    direct: str  # the module DirectWriter comes from
    after_direct: list[str]  # modules loaded once DirectWriter was touched


def probe(tmp_path: Path) -> Probe:
    done = fresh_python(PROBE, str(tmp_path / "spool"))
    assert done.returncode == 0, done.stderr
    return Probe(**json.loads(done.stdout))


def top(modules: list[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules}


def public(module: str) -> str:
    """The module's package as users import it: `lake.spec._rules` -> `lake.spec`."""
    return ".".join(part for part in module.split(".") if not part.startswith("_"))


def test_the_sdk_imports_and_sends_with_the_standard_library_and_orjson_only(
    tmp_path: Path,
) -> None:
    result = probe(tmp_path)
    added = top(result.added)
    assert not added & set(HEAVY), sorted(added & set(HEAVY))
    third_party = added - set(sys.stdlib_module_names) - {"ingest", "lake", "orjson"}
    assert third_party == set(), sorted(third_party)
    # Of our own modules only the SDK, the three standard-library helpers it shares with the
    # collector, and the wire format's declaration (with the Retry-After parser): the
    # package __init__ files of `ingest` and `lake` import nothing.
    ours = {public(m) for m in result.added if top([m]) & {"ingest", "lake"}}
    assert ours == {
        "ingest", "ingest.sdk", "ingest.durable", "ingest.batching", "ingest.closing",
        "lake", "lake.spec",
    }  # fmt: skip
    # The event was checked and, with no collector listening, spooled for a later client.
    assert result.spooled is True
    assert len(list((tmp_path / "spool").glob("*.ndjson"))) == 1


def test_direct_mode_loads_the_lake_only_when_used(tmp_path: Path) -> None:
    result = probe(tmp_path)
    assert result.direct == "ingest.sdk._direct"
    assert {"pyarrow", "deltalake"} <= top(result.after_direct)


def test_direct_mode_without_the_lake_names_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['pyarrow'] = None  # an SDK-only install\n"
        "import ingest.sdk\n"
        "try:\n"
        "    ingest.sdk.DirectWriter\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, exc)\n"
    )
    done = fresh_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pyarrow ")
    assert "pip install 'auditlake[lake]'" in done.stdout
