"""Red-team checks through the real command (#17 B18 and its neighbours).

A lake whose `_auditlake/lake.json` held valid JSON of the wrong shape (a list, null, an
object without a name, published_keys that is not a list) made every command, verify
included, die with a traceback and exit 1 ("a problem found") instead of saying what is
wrong with the lake's description.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures' types only; see tests/cli/conftest.py
    from cli_testkit import Run
    from conftest import DemoLake


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[]", "not a JSON object"),
        ("null", "not a JSON object"),
        ('{"format": 1}', "name"),
        ('{"format": 1, "name": "demo", "published_keys": 5}', "published_keys"),
        ('{"format": 1, "name": "demo", "published_keys": [5]}', "published_keys"),
        ('{"format": 1, "name": "demo", "encryption": 5}', "encryption"),
    ],
)
def test_a_malformed_lake_description_is_a_one_line_error(
    run: Run, demo_copy: DemoLake, text: str, named: str
) -> None:
    (demo_copy.lake / "_auditlake" / "lake.json").write_text(text)
    for args in (("verify", "--format", "json"), ("search", "--tenant", "contoso")):
        result = run(*args)  # run() fails the test on a traceback
        assert result.returncode == 2, result
        (line,) = result.stderr.strip().splitlines()
        assert "lake.json" in line and named in line
