"""What the CLI tests share at run time: the console script, the result of one run.

A module of its own (not conftest.py) so test modules can import it by a name no other
test folder uses: `from conftest import ...` resolves to whichever folder's conftest was
imported first when several folders run in one session.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AUDITLAKE = shutil.which("auditlake", path=os.path.dirname(sys.executable))
TIMEOUT = 120
# Environment variables that change what auditlake (or rich, for its output) does.
_DROP = ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES")


@dataclass(frozen=True)
class Result:
    """What one run of the command left behind."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document (fails the test if it is anything else)."""
        return json.loads(self.stdout)

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def assert_usage_error(self, *needles: str) -> None:
        """Exit 2, nothing on stdout, a one-line `auditlake: ...` reason naming `needles`."""
        assert self.returncode == 2, self
        assert self.stdout == "", self
        assert len(self.stderr_lines) == 1, self
        assert self.stderr.startswith("auditlake: "), self
        for needle in needles:
            assert needle in self.stderr, (needle, self)


Run = Callable[..., Result]
