"""Signed notes, in the C2SP format (checkpoints, the notes a log signs, are in `_checkpoint`).

Why this module exists: a Merkle root only makes a log tamper-evident if someone
commits to it in a form that others can check later, and with tools that are not
ours. auditlake publishes each sealed tree head as a *checkpoint*
(https://c2sp.org/tlog-checkpoint) wrapped in a *signed note*
(https://c2sp.org/signed-note), signed with Ed25519. These are the formats used
by the Go checksum database, Sigsum, Trillian-Tessera and the witness network,
so a checkpoint we write can be verified (and cosigned) by their tooling, and
theirs by ours.

The wire details follow the specs and the reference implementation,
golang.org/x/mod/sumdb/note (`sumdb/note/note.go`):

* A note is a text ending in a newline, then a blank line, then one or more
  signature lines ``— <key name> <base64(key ID || signature)>``. The text may
  itself contain blank lines: the *last* blank line separates it from the
  signatures. The whole note must be UTF-8 without ASCII control characters
  other than newline.
* A verifier key string is ``<name>+<key ID as 8 hex digits>+<base64(0x01 ||
  32-byte Ed25519 public key)>``; the key ID is the first four bytes of
  ``SHA-256(name || "\\n" || 0x01 || public key)``.
* A checkpoint's note text is the origin line, the tree size in decimal, the
  base64 root hash, and optional non-empty extension lines.

Extension lines are signed like the rest of the text (and C2SP tlog-cosignature has
witnesses cosign them too), so auditlake puts one there: ``time <RFC 3339 UTC>``, the
moment the log signed the tree head. Key validity (rotation, revocation) is judged on
that signed time, never on a column of the checkpoints table that anyone with write
access to the lake could rewrite. Verifiers that do not know the line ignore it, as the
spec asks; ours insists that a ``time`` line, when present, is exactly one well-formed
UTC time.

Parsing is strict: anything that is not exactly the canonical form (upper-case
hex in a key ID, non-canonical or unpadded base64, ``+5`` or ``05`` as a tree
size, CR-LF line ends) is rejected with a `NoteError` that says what is wrong.
Verification fails closed: a signature by a known key that does not verify is
an error (tampering), not a skipped line, and a note that no known key signed
is rejected unless the caller explicitly asks to inspect it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from lake.contract import NoteError

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "NoteSignature",
    "NoteSigner",
    "VerifiedNote",
    "VerifierKey",
    "b64decode",
    "b64encode",
    "check_controls",
    "check_nonempty",
    "check_text",
    "check_utf8",
    "generate_signer",
    "key_hash",
    "parse_note",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 in c2sp.org/signed-note."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the spec requires accepting at least 16;
the Go reference rejects more than 100)."""

_SIG_PREFIX = "\u2014 "  # em dash, space

# Unicode White_Space, which is what Go's unicode.IsSpace tests (the reference
# implementation's definition of "Unicode spaces" in key names). Python's
# str.isspace() differs (it also matches U+001C..U+001F), so spell it out.
_WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline
_HEX8 = re.compile("[0-9a-f]{8}")


# --------------------------------------------------------------------------- helpers


def check_utf8(s: str, what: str) -> None:
    """Reject strings that cannot be encoded as UTF-8 (lone surrogates)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteError(f"{what} is not valid UTF-8 (lone surrogate at offset {e.start})") from None


def check_controls(s: str, what: str) -> None:
    m = _CONTROL.search(s)
    if m is not None:
        raise NoteError(
            f"{what} contains the control character U+{ord(m.group()):04X} "
            f"at offset {m.start()} (only newline is allowed)"
        )


def check_nonempty(value: object, what: str) -> None:
    """Raises `NoteError` unless `value` is a non-empty string."""
    if not isinstance(value, str):
        raise NoteError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise NoteError(f"{what} is empty")


def _check_name(name: str, what: str = "key name") -> None:
    """Enforce the signed-note rule: non-empty, no Unicode spaces, no '+'."""
    check_nonempty(name, what)
    if "+" in name:
        raise NoteError(f"{what} {name!r} contains '+'")
    for ch in name:
        if ch in _WHITE_SPACE:
            raise NoteError(f"{what} {name!r} contains a space character (U+{ord(ch):04X})")
    check_controls(name, f"{what} {name!r}")
    check_utf8(name, what)


def check_text(text: str, what: str = "note text") -> None:
    """Check that `text` can be the text of a signed note (a checkpoint's, say)."""
    if not isinstance(text, str):
        raise NoteError(f"{what} must be a string, not {type(text).__name__}")
    if not text.endswith("\n"):
        raise NoteError(f"{what} must end with a newline")
    check_utf8(text, what)
    check_controls(text, what)


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(s: str, what: str) -> bytes:
    """Decode standard, padded, canonical base64 (RFC 4648 section 4) or raise NoteError."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        raise NoteError(f"{what} is not valid base64") from None
    if b64encode(raw) != s:
        # Unpadded input, or non-zero bits in the final group: same bytes, other text.
        raise NoteError(f"{what} is not canonical padded base64")
    return raw


def key_hash(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """Compute a signed-note key ID.

    Args:
        name: The key name.
        public_key: The encoded public key (32 bytes for Ed25519), without the type byte.
        alg: The signature type identifier byte (0x01 for Ed25519).

    Returns:
        The first 4 bytes of SHA-256(name || 0x0A || alg || public_key).
    """
    h = hashlib.sha256()
    h.update(name.encode("utf-8"))
    h.update(b"\n")
    h.update(bytes([alg]))
    h.update(public_key)
    return h.digest()[:4]


def _check_public_key(name: str, public_key: object) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise NoteError(f"Ed25519 public key for {name!r} must be 32 bytes")


def _check_key_hash(key_hash: object, what: str) -> None:
    if not isinstance(key_hash, bytes) or len(key_hash) != 4:
        raise NoteError(f"{what} must be 4 bytes")


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key that can verify note signatures.

    Construction checks the invariants: a valid name, a 32-byte public key and
    the key hash that the name and key imply, so every instance is consistent.
    """

    name: str
    key_hash: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_public_key(self.name, self.public_key)
        _check_key_hash(self.key_hash, f"key hash for {self.name!r}")
        want = key_hash(self.name, self.public_key)
        if self.key_hash != want:
            raise NoteError(
                f"key hash {self.key_hash.hex()} does not match key {self.name!r} "
                f"(it hashes to {want.hex()})"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise NoteError(f"public key for {self.name!r} is not an Ed25519 key") from None

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> VerifierKey:
        """Build a verifier key from a name and a raw 32-byte Ed25519 public key.

        Args:
            name: The key name (non-empty, no spaces, no '+'); for a log, its origin.
            public_key: The 32-byte RFC 8032 encoding of the public key.

        Returns:
            The verifier key, with its key hash computed.

        Raises:
            NoteError: If the name or the key is invalid.
        """
        _check_name(name)
        _check_public_key(name, public_key)
        return cls(name, key_hash(name, public_key), public_key)

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse a verifier key string ``<name>+<hash>+<base64(0x01 || key)>``.

        Args:
            text: The encoded verifier key, exactly (no surrounding whitespace).

        Returns:
            The verifier key.

        Raises:
            NoteError: If the string is malformed: bad name, key hash that is not 8
                lower-case hex digits or does not match the key, bad base64, a
                signature type other than Ed25519 (0x01), or a key of the wrong length.
        """
        if not isinstance(text, str):
            raise NoteError(f"verifier key must be a string, not {type(text).__name__}")
        name, sep1, rest = text.partition("+")
        hash16, sep2, key64 = rest.partition("+")
        if not sep1 or not sep2:
            raise NoteError("verifier key must have the form <name>+<hash>+<base64 key>")
        _check_name(name)
        if not _HEX8.fullmatch(hash16):
            raise NoteError(
                f"key hash {hash16!r} in verifier key {name!r} is not 8 lower-case hex digits"
            )
        if not key64:
            raise NoteError(f"verifier key {name!r} has no key data")
        key = b64decode(key64, f"key data of verifier key {name!r}")
        if key[0] != ALG_ED25519:
            raise NoteError(
                f"verifier key {name!r} has signature type 0x{key[0]:02x}; "
                f"only Ed25519 (0x{ALG_ED25519:02x}) is supported"
            )
        if len(key) != 33:
            raise NoteError(
                f"verifier key {name!r} has a {len(key) - 1}-byte public key; "
                "Ed25519 keys are 32 bytes"
            )
        return cls(name, bytes.fromhex(hash16), key[1:])

    def encode(self) -> str:
        """Return the verifier key string ``<name>+<hash>+<base64(0x01 || key)>``."""
        return (
            f"{self.name}+{self.key_hash.hex()}+{b64encode(bytes([ALG_ED25519]) + self.public_key)}"
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether `signature` is a valid Ed25519 signature of `message` by this key.

        Args:
            message: The signed bytes (for a note, its UTF-8 text).
            signature: The raw 64-byte signature (without the 4-byte key hash).

        Returns:
            True if the signature verifies, False otherwise (including wrong length).
        """
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, key hash and raw signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_key_hash(self.key_hash, f"key hash of signature by {self.name!r}")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteError(f"signature by {self.name!r} is empty")

    def line(self) -> str:
        """Return the signature line ``— <name> <base64(key hash || signature)>\\n``."""
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_hash + self.signature)}\n"


class NoteSigner:
    """Signs note texts with a named Ed25519 private key.

    The private key is held privately and never appears in `repr` or in errors.
    """

    __slots__ = ("_name", "_private_key", "_verifier_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Create a signer.

        Args:
            name: The key name (non-empty, no spaces, no '+'); for a log, its origin.
            private_key: The Ed25519 private key.

        Raises:
            NoteError: If the name is invalid or the key is not an Ed25519 private key.
        """
        _check_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise NoteError(f"signer {name!r} needs an Ed25519 private key")
        self._name = name
        self._private_key = private_key
        self._verifier_key = VerifierKey.from_public_key(
            name, private_key.public_key().public_bytes_raw()
        )

    @property
    def name(self) -> str:
        """The key name used in signature lines."""
        return self._name

    @property
    def verifier_key(self) -> VerifierKey:
        """The matching verifier key, to publish or hand to verifiers."""
        return self._verifier_key

    def sign(self, text: str) -> NoteSignature:
        """Sign a note text.

        Args:
            text: The note text (UTF-8, ending in a newline, no control characters).

        Returns:
            The signature, ready to be written as a signature line.

        Raises:
            NoteError: If `text` cannot be the text of a signed note.
        """
        check_text(text)
        sig = self._private_key.sign(text.encode("utf-8"))
        return NoteSignature(self._name, self._verifier_key.key_hash, sig)

    def __repr__(self) -> str:
        return f"NoteSigner({self._verifier_key.encode()!r})"


def generate_signer(name: str) -> NoteSigner:
    """Create a signer with a fresh random Ed25519 key.

    Args:
        name: The key name.

    Returns:
        The new signer; its `verifier_key` is the public half.
    """
    return NoteSigner(name, Ed25519PrivateKey.generate())


# --------------------------------------------------------------------------- notes


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign a text with one or more keys and encode it as a signed note.

    Args:
        text: The note text; must end with a newline, be UTF-8 and contain no
            control characters other than newline.
        signers: The signers, in the order their lines should appear (at least one).

    Returns:
        ``text + "\\n" + signature lines``.

    Raises:
        NoteError: If the text is not a valid note text, there are no signers,
            too many, or two signers share a key name and key hash.
    """
    check_text(text)
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")
    seen: set[tuple[str, bytes]] = set()
    lines = []
    for signer in signers:
        ident = (signer.name, signer.verifier_key.key_hash)
        if ident in seen:
            raise NoteError(
                f"two signers share key name {signer.name!r} and key hash {ident[1].hex()}"
            )
        seen.add(ident)
        lines.append(signer.sign(text).line())
    return text + "\n" + "".join(lines)


def _decode_note(note: str | bytes) -> str:
    if isinstance(note, bytes):
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError(f"note is not valid UTF-8 (at byte {e.start})") from None
    if not isinstance(note, str):
        raise NoteError(f"note must be str or bytes, not {type(note).__name__}")
    check_utf8(note, "note")
    return note


def parse_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signatures, without verifying anything.

    Args:
        note: The encoded note; bytes must be UTF-8.

    Returns:
        The note text (including its final newline, excluding the blank line)
        and the signatures in the order they appear.

    Raises:
        NoteError: If the note is malformed: invalid UTF-8, a control character,
            no blank line before the signatures, no signatures, more than
            `MAX_SIGNATURES`, or any signature line that does not parse.
    """
    s = _decode_note(note)
    check_controls(s, "note")
    split = s.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line separating the text from the signatures")
    text, block = s[: split + 1], s[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    if not block.endswith("\n"):
        raise NoteError("the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signature lines; at most {MAX_SIGNATURES} allowed")
    sigs: list[NoteSignature] = []
    for i, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"signature line {i} does not start with an em dash and a space")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        _check_name(name, f"key name on signature line {i}")
        if not b64:
            raise NoteError(f"signature line {i} ({name}) has no signature")
        raw = b64decode(b64, f"signature on line {i} ({name})")
        if len(raw) < 5:
            raise NoteError(f"signature on line {i} ({name}) is shorter than key hash + 1 byte")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return text, sigs


@dataclass(frozen=True)
class VerifiedNote:
    """The outcome of `verify_note`.

    Attributes:
        text: The note text (only to be trusted if `verified` is non-empty).
        verified: Known keys whose signatures verified, in order of first appearance.
        unverified: Signatures by keys not in the given set (duplicates dropped).
    """

    text: str
    verified: list[VerifierKey]
    unverified: list[NoteSignature]


def verify_note(
    note: str | bytes, keys: Sequence[VerifierKey], *, allow_unverified: bool = False
) -> VerifiedNote:
    """Parse a signed note and verify its signatures by known keys.

    A signature whose (key name, key hash) matches one of `keys` must verify;
    one that does not is treated as tampering and raises. Signatures by other
    keys are not checked (the spec requires ignoring them) and are reported in
    `VerifiedNote.unverified`.

    Args:
        note: The encoded note; bytes must be UTF-8.
        keys: The trusted verifier keys.
        allow_unverified: Return even if no known key signed the note. The spec
            requires clients to reject such a note, so only set this to inspect
            a note (`verified` will then be empty and the text untrusted).

    Returns:
        The text, the keys that verified and the unknown signatures.

    Raises:
        NoteError: If the note is malformed, a signature by a known key does not
            verify (``"signature by <name> does not verify"``), `keys` holds two
            different keys with the same name and hash, or (unless
            `allow_unverified`) no known key signed the note.
    """
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for key in keys:
        ident = (key.name, key.key_hash)
        other = known.setdefault(ident, key)
        if other != key:
            raise NoteError(
                f"ambiguous verifier keys: two different keys named {key.name!r} "
                f"with key hash {key.key_hash.hex()}"
            )
    text, sigs = parse_note(note)
    message = text.encode("utf-8")
    verified: list[VerifierKey] = []
    unverified: list[NoteSignature] = []
    for sig in sigs:
        found = known.get((sig.name, sig.key_hash))
        if found is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        # Every signature by a known key is checked, including repeats.
        if not found.verify(message, sig.signature):
            raise NoteError(f"signature by {sig.name} does not verify")
        if found not in verified:
            verified.append(found)
    if not verified and not allow_unverified:
        who = ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in unverified)
        raise NoteError(f"note has no signature by a known key (signed by: {who})")
    return VerifiedNote(text, verified, unverified)
