"""The error types a wire-format check can raise or return, importable without pyarrow.

`LakeError` is the base of every error `lake` raises; `lake.contract` adds the narrow
subclasses of the storage and log layers. A service that only sends events gets these
from `lake.spec` without paying for pyarrow, numpy or orjson.
"""

from __future__ import annotations

from dataclasses import dataclass


class LakeError(Exception):
    """Base of every error raised by `lake`."""


class UsageError(LakeError):
    """The caller asked for something that cannot be done as asked (bad argument, bad id)."""


@dataclass(frozen=True)
class Issue:
    """One reason an input event was rejected: which event, which field, why."""

    index: int
    field: str
    message: str
    line: int | None = None  # 1-based line in a line-oriented input, where that differs

    def __str__(self) -> str:
        where = f"event {self.index}" + (f" (line {self.line})" if self.line is not None else "")
        return f"{where}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "field": self.field, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out


class ValidationError(UsageError):
    """Input events were rejected; `issues` names every event, field and reason."""

    def __init__(self, issues: list[Issue], *, source: str = "input") -> None:
        self.issues = issues
        self.source = source
        super().__init__(source)

    def __str__(self) -> str:
        # Built on demand: callers may set `source` after construction (file name, stdin).
        first = self.issues[0] if self.issues else None
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        return f"{self.source}: {first}{more}" if first else f"{self.source}: invalid input"
