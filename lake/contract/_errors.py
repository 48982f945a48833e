"""One exception base for the core, with narrow subclasses.

Only the CLI turns these into exit codes and one-line messages; library callers catch
`LakeError` (or a subclass) and decide for themselves. Messages never carry secrets.
"""

from __future__ import annotations

from dataclasses import dataclass


class LakeError(Exception):
    """Base of every error raised by `lake`."""


class UsageError(LakeError):
    """The caller asked for something that cannot be done as asked (bad argument, bad id)."""


class LakeNotFoundError(UsageError):
    """The path is not an auditlake lake."""


class ConfigError(LakeError):
    """The config home (keys, trusted keys, policy) is missing, unreadable or invalid."""


class SigningKeyError(LakeError):
    """A signing or verifier key is missing, malformed or unusable."""


class NoteError(LakeError):
    """A signed note, checkpoint or verifier key string is malformed."""


class ProofError(LakeError):
    """A proof is malformed, or cannot be produced (unknown event, unsealed log)."""


class StorageError(LakeError):
    """The lake's storage could not be read or written as expected."""


class ConcurrentAppendError(StorageError):
    """Another writer kept winning the per-tenant sequencer; nothing was written."""


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
