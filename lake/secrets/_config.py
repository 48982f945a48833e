"""The config home: signing keys and trusted verifier keys, kept outside every lake.

`AUDITLAKE_HOME` names it; otherwise the platform's user config dir. Private keys are
PKCS#8 PEM files created with mode 0600 in a 0700 directory. One rule (`check_private`,
in `_private` with the one reader and writer of the home's JSON files) holds for the home
and every file in it (keys, master key, trusted keys, access policy, token files): refused
when group or others may read or write it, as ssh does. The lake
only ever sees verifier (public) keys.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lake.contract import ConfigError, NoteError, SigningKeyError
from lake.log import NoteSigner, VerifierKey
from lake.secrets._private import check_private, create_private, make_home
from lake.spec import utc_text

KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TRUSTED_KEYS_FILE = "trusted_keys"
ACTIVE_FILE = "ACTIVE"


def config_home() -> Path:
    """Where keys and policy live: $AUDITLAKE_HOME, else the user config dir."""
    env = os.environ.get("AUDITLAKE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_config_dir("auditlake")).resolve()


def ensure_outside(home: Path, lake_path: Path) -> None:
    """Refuse a config home inside the lake (or the lake inside it): keys must not leak."""
    home = home.resolve()
    lake_path = lake_path.resolve()
    if home == lake_path or home.is_relative_to(lake_path):
        raise ConfigError(
            f"the config home {home} is inside the lake {lake_path}; private keys must live "
            "outside it (set AUDITLAKE_HOME elsewhere)"
        )


@dataclass(frozen=True)
class KeyInfo:
    """A signing key as listed: its name, its verifier key, whether it signs new batches."""

    name: str
    verifier_key: str
    active: bool


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write an Ed25519 key as PKCS#8 PEM: created 0600, never over an existing file."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_private(path, pem)


def read_private_key(path: Path, what: str) -> Ed25519PrivateKey:
    """Read an Ed25519 PEM key, refusing a file that other users can access (as ssh does)."""
    check_private(path, what, SigningKeyError, home=False)
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"the {what} {path} could not be read") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"the {what} {path} is not an Ed25519 key")
    return private


class KeyStore:
    """Signing keys in `<home>/keys`, one PEM file per key, plus the name of the active key."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "keys"

    def _key_path(self, name: str) -> Path:
        if not KEY_NAME_RE.fullmatch(name):
            raise SigningKeyError(
                f"invalid key name {name!r}: use letters, digits, '.', '_' and '-' (≤128)"
            )
        return self.dir / f"{name}.key"

    def generate(self, name: str, *, activate: bool = True) -> NoteSigner:
        """Create a new Ed25519 signing key (mode 0600) and, by default, make it active."""
        path = self._key_path(name)
        if path.exists():
            raise SigningKeyError(f"a key named {name!r} already exists in {self.dir}")
        make_home(self.home)
        self.dir.mkdir(exist_ok=True, mode=0o700)
        self.dir.chmod(0o700)
        private = Ed25519PrivateKey.generate()
        write_private_key(path, private)
        signer = NoteSigner(name, private)
        (self.dir / f"{name}.pub").write_text(signer.verifier_key.encode() + "\n")
        if activate:
            (self.dir / ACTIVE_FILE).write_text(name + "\n")
        return signer

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.key"))

    def active_name(self) -> str | None:
        marker = self.dir / ACTIVE_FILE
        if marker.is_file():
            name = marker.read_text().strip()
            return name or None
        names = self.names()
        return names[-1] if names else None

    def load(self, name: str) -> NoteSigner:
        """Load a signing key, refusing files that others can read."""
        path = self._key_path(name)
        if not path.is_file():
            raise SigningKeyError(f"no signing key named {name!r} in {self.dir}")
        check_private(self.dir, "key directory", SigningKeyError)
        private = read_private_key(path, "signing key")
        return NoteSigner(name, private)

    def active(self) -> NoteSigner:
        """The signing key: a configured backend's, else the environment's, else the file."""
        backend = os.environ.get("AUDITLAKE_KEY_BACKEND")
        if backend:
            return _plugin_signer(backend, self.home)
        if os.environ.get("AUDITLAKE_SIGNING_KEY"):
            return _env_signer()
        return self.file_active()

    def activate(self, name: str) -> None:
        self.load(name)  # must exist and be usable
        (self.dir / ACTIVE_FILE).write_text(name + "\n")

    def retire(self, name: str) -> None:
        """Destroy a private key (overwrite, then unlink); its public half stays.

        Forward security: once retired, a later compromise of this machine cannot sign
        anything in that key's name, so the history it signed cannot be rewritten.
        """
        if name == self.active_name():
            raise SigningKeyError(f"{name!r} is the active key: rotate to another key first")
        path = self._key_path(name)
        if not path.is_file():
            raise SigningKeyError(f"no signing key named {name!r} in {self.dir}")
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(os.urandom(size))
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
        with (self.dir / "RETIRED").open("a") as fh:
            fh.write(f"{name} {utc_text(datetime.now(UTC), micros=False)}\n")

    def file_active(self) -> NoteSigner:
        name = self.active_name()
        if name is None:
            raise SigningKeyError(
                f"no signing key in {self.dir}; run `auditlake init` or `auditlake keys generate`"
            )
        return self.load(name)

    def list(self) -> list[KeyInfo]:
        active = self.active_name()
        out = []
        for name in self.names():
            pub = self.dir / f"{name}.pub"
            vkey = (
                pub.read_text().strip() if pub.is_file() else self.load(name).verifier_key.encode()
            )
            out.append(KeyInfo(name, vkey, name == active))
        return out


class TrustStore:
    """Verifier keys the operator trusts, one `name+hash+base64` line each."""

    def __init__(self, home: Path) -> None:
        self.path = home / TRUSTED_KEYS_FILE

    def keys(self) -> list[VerifierKey]:
        if not self.path.is_file():
            return []
        check_private(self.path, "trusted keys")
        out = []
        for lineno, line in enumerate(self.path.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                out.append(VerifierKey.parse(line.split()[0]))
            except NoteError as exc:
                raise ConfigError(f"{self.path}:{lineno}: {exc}") from None
        return out

    def windows(self) -> dict[str, KeyWindow]:
        """Validity of each trusted key (by its encoded form), from `k=v` after the key."""
        out: dict[str, KeyWindow] = {}
        if not self.path.is_file():
            return out
        check_private(self.path, "trusted keys")
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            attrs = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            out[parts[0]] = KeyWindow(
                _when(attrs.get("not-before")),
                _when(attrs.get("not-after")),
                _when(attrs.get("revoked")),
            )
        return out

    def set_attr(self, key: VerifierKey, attr: str, value: datetime) -> None:
        """Set not-before / not-after / revoked on a trusted key's line."""
        if attr not in ("not-before", "not-after", "revoked"):
            raise ConfigError(f"unknown key attribute {attr!r}")
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        # Microseconds kept when there are any: checkpoints sign their time to the
        # microsecond, and a window cut to the second would misjudge that second.
        stamp = utc_text(value, micros=bool(value.microsecond))
        found = False
        for i, line in enumerate(lines):
            parts = line.split()
            if parts and parts[0] == key.encode():
                parts = [p for p in parts if not p.startswith(attr + "=")] + [f"{attr}={stamp}"]
                lines[i] = " ".join(parts)
                found = True
        if not found:
            lines.append(f"{key.encode()} {attr}={stamp}")
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        create_private(tmp, ("\n".join(lines) + "\n").encode())
        tmp.replace(self.path)

    def add(self, key: VerifierKey) -> bool:
        """Trust `key`; False when it already was."""
        if any(k.encode() == key.encode() for k in self.keys()):
            return False
        make_home(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            stamp = utc_text(datetime.now(UTC), micros=False)
            fh.write(f"# added {stamp}\n{key.encode()}\n")
        return True


@dataclass(frozen=True)
class KeyWindow:
    """When a trusted key may sign: [not_before, not_after), and never after `revoked`."""

    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked: datetime | None = None

    def allows(self, moment: datetime) -> bool:
        m = moment.astimezone(UTC)
        if self.not_before is not None and m < self.not_before:
            return False
        if self.not_after is not None and m >= self.not_after:
            return False
        return self.revoked is None or m < self.revoked

    def describe(self) -> str:
        if self.revoked is not None:
            return f"revoked at {utc_text(self.revoked, micros=False)}"
        parts = []
        if self.not_before is not None:
            parts.append(f"valid from {utc_text(self.not_before, micros=False)}")
        if self.not_after is not None:
            parts.append(f"until {utc_text(self.not_after, micros=False)}")
        return ", ".join(parts) or "always valid"


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise ConfigError(f"trusted_keys: {text!r} is not an RFC 3339 time") from None


def _env_signer() -> NoteSigner:
    """AUDITLAKE_SIGNING_KEY (base64 of the 32-byte Ed25519 seed) with ..._NAME."""
    import base64
    import binascii

    name = os.environ.get("AUDITLAKE_SIGNING_KEY_NAME", "")
    if not KEY_NAME_RE.fullmatch(name):
        raise SigningKeyError("AUDITLAKE_SIGNING_KEY needs AUDITLAKE_SIGNING_KEY_NAME (a key name)")
    try:
        seed = base64.b64decode(os.environ["AUDITLAKE_SIGNING_KEY"], validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("AUDITLAKE_SIGNING_KEY is not base64") from None
    if len(seed) != 32:
        raise SigningKeyError("AUDITLAKE_SIGNING_KEY must hold a 32-byte Ed25519 seed")
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


def _plugin_signer(spec: str, home: Path) -> NoteSigner:
    """AUDITLAKE_KEY_BACKEND=module:factory — a KMS/HSM hook (docs: README, "Keys").

    `factory(home)` returns an object whose `active()` returns a signer: anything with
    `.name`, `.verifier_key` (a VerifierKey) and `.sign(text) -> NoteSignature`, e.g. one
    that asks a KMS to sign `text.encode()` with an Ed25519 key that never leaves it.
    """
    import importlib

    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or "backend")
        signer: NoteSigner = factory(home).active()
    except (ImportError, AttributeError) as exc:
        raise SigningKeyError(f"AUDITLAKE_KEY_BACKEND={spec!r}: {exc}") from None
    return signer


def parse_verifier_keys(texts: list[str], option: str = "--trusted-key") -> list[VerifierKey]:
    """Parse verifier keys given on the command line (several may share one argument)."""
    out = []
    for text in texts:
        for part in text.split():
            try:
                out.append(VerifierKey.parse(part))
            except NoteError as exc:
                raise ConfigError(f"{option} {part[:40]!r}: {exc}") from None
    return out
