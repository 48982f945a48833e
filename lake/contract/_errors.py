"""One exception base for the core, with narrow subclasses.

Only the CLI turns these into exit codes and one-line messages; library callers catch
`LakeError` (or a subclass) and decide for themselves. Messages never carry secrets.
"""

from __future__ import annotations

# The base, the usage error and the validation types live with the wire format's
# declaration, so that code which only checks events imports them without pyarrow.
from lake.spec import Issue as Issue
from lake.spec import LakeError as LakeError
from lake.spec import UsageError as UsageError
from lake.spec import ValidationError as ValidationError


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
