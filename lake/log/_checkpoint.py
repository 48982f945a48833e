"""Transparency-log checkpoints (c2sp.org/tlog-checkpoint): the signed tree heads of a log.

A checkpoint's note text is the origin line, the tree size in decimal, the base64 root
hash, and optional non-empty extension lines; auditlake adds one, ``time <RFC 3339 UTC>``,
the moment the log signed the tree head (see `_note` for the signed-note wrapping and the
strict parsing rules both share).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lake.contract import NoteError
from lake.log._note import (
    NoteSigner,
    VerifiedNote,
    VerifierKey,
    b64decode,
    b64encode,
    check_controls,
    check_nonempty,
    check_text,
    check_utf8,
    sign_note,
    verify_note,
)
from lake.spec import utc_text

__all__ = ["TIME_PREFIX", "Checkpoint", "open_checkpoint", "sign_checkpoint", "time_line"]

TIME_PREFIX = "time "
"""Start of the checkpoint extension line that carries the signed time."""

_MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 in every implementation we interoperate with
_DECIMAL = re.compile("0|[1-9][0-9]*")
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")


def _check_line(line: str, what: str) -> None:
    check_nonempty(line, what)
    if "\n" in line:
        raise NoteError(f"{what} contains a newline")
    check_controls(line, what)
    check_utf8(line, what)


def time_line(moment: datetime) -> str:
    """The extension line that signs a moment: ``time 2026-12-08T02:30:00.123456Z``.

    Args:
        moment: An aware datetime (converted to UTC; microseconds kept).

    Raises:
        NoteError: If `moment` is naive (its zone would be a guess).
    """
    if moment.tzinfo is None:
        raise NoteError("a checkpoint's signed time must be timezone-aware")
    return TIME_PREFIX + utc_text(moment)


def _parse_time_line(line: str) -> datetime:
    stamp = line[len(TIME_PREFIX) :]
    if not _RFC3339_UTC.fullmatch(stamp):
        raise NoteError(
            f"checkpoint time line {line!r} is not 'time YYYY-MM-DDTHH:MM:SS[.ffffff]Z' (UTC)"
        )
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC)
    except ValueError:
        raise NoteError(f"checkpoint time line {line!r} is not a valid time") from None


@dataclass(frozen=True)
class Checkpoint:
    """A transparency-log checkpoint: the note text committing to a tree head.

    Attributes:
        origin: The log's unique identity (non-empty; by convention a schema-less URL).
        tree_size: Number of leaves, 0 <= tree_size < 2**64.
        root_hash: The 32-byte RFC 6962 Merkle tree hash at `tree_size`.
        extensions: Optional extra lines, each non-empty (the spec discourages them).
            At most one may be a ``time`` line (see `time_line`); it must parse.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "checkpoint origin")
        if (
            not isinstance(self.tree_size, int)
            or isinstance(self.tree_size, bool)
            or not 0 <= self.tree_size <= _MAX_TREE_SIZE
        ):
            raise NoteError(
                f"checkpoint tree size must be an integer in [0, 2**64), not {self.tree_size!r}"
            )
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError("checkpoint root hash must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of strings")
        for i, ext in enumerate(self.extensions, 1):
            _check_line(ext, f"checkpoint extension line {i}")
        times = [_parse_time_line(e) for e in self.extensions if e.startswith(TIME_PREFIX)]
        if len(times) > 1:
            raise NoteError(f"checkpoint has {len(times)} time lines; at most one is allowed")

    @classmethod
    def at(cls, origin: str, tree_size: int, root_hash: bytes, moment: datetime) -> Checkpoint:
        """A checkpoint that signs the moment it was made (a ``time`` extension line)."""
        return cls(origin, tree_size, root_hash, (time_line(moment),))

    @property
    def signed_time(self) -> datetime | None:
        """The time in the checkpoint's ``time`` line (UTC), or None for a checkpoint without one.

        Signed with the tree head, so unlike a stored column it cannot be changed
        without the log's key.
        """
        for ext in self.extensions:
            if ext.startswith(TIME_PREFIX):
                return _parse_time_line(ext)
        return None

    def body(self) -> str:
        """Return the note text: origin, size, base64 root hash, extensions, one per line."""
        lines = [self.origin, str(self.tree_size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text.

        Args:
            text: The note text (as returned by `verify_note`), ending in a newline.

        Returns:
            The checkpoint.

        Raises:
            NoteError: If the text is not exactly a checkpoint body: missing final
                newline, fewer than three lines, an empty line, a tree size that is
                not plain ASCII decimal without leading zeros (or is >= 2**64), a
                root hash that is not canonical base64 of 32 bytes, or control characters.
        """
        check_text(text, "checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(
                f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash"
            )
        origin, size, root, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin line is empty")
        if not _DECIMAL.fullmatch(size):
            raise NoteError(
                f"checkpoint tree size {size!r} is not a decimal number without leading zeros"
            )
        tree_size = int(size)
        if tree_size > _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {size} does not fit in 64 bits")
        root_hash = b64decode(root, "checkpoint root hash")
        if len(root_hash) != 32:
            raise NoteError(f"checkpoint root hash is {len(root_hash)} bytes; it must be 32")
        for i, ext in enumerate(extensions, 1):
            if not ext:
                raise NoteError(f"checkpoint extension line {i} is empty")
        return cls(origin, tree_size, root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signers: Sequence[NoteSigner]) -> str:
    """Sign a checkpoint and encode it as a signed note.

    Args:
        cp: The checkpoint.
        signers: The signers (at least one); by convention the log's key is named
            after its origin.

    Returns:
        The signed note.

    Raises:
        NoteError: As `sign_note`.
    """
    return sign_note(cp.body(), signers)


def open_checkpoint(
    note: str | bytes,
    keys: Sequence[VerifierKey],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, VerifiedNote]:
    """Verify a signed checkpoint and parse its body.

    Args:
        note: The signed note.
        keys: The trusted verifier keys; at least one must have signed.
        origin: If given, the checkpoint's origin must equal it (guards against a
            checkpoint of another log signed by the same key).

    Returns:
        The checkpoint and the verification outcome.

    Raises:
        NoteError: If verification fails (see `verify_note`), the body is not a
            checkpoint, or the origin differs from `origin`.
    """
    verified = verify_note(note, keys)
    cp = Checkpoint.parse(verified.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    return cp, verified
