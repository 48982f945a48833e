"""The config home: signing keys and trusted verifier keys, kept outside every lake.

`AUDITLAKE_HOME` names it; otherwise the platform's user config dir. Private keys are
PKCS#8 PEM files created with mode 0600 in a 0700 directory and refused when anyone else
can read them (as ssh does). The lake only ever sees verifier (public) keys.
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

from lake.errors import ConfigError, NoteError, SigningKeyError
from lake.note import NoteSigner, VerifierKey

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
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir.chmod(0o700)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
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
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SigningKeyError(
                f"the signing key {path} is accessible by other users (mode {mode:o}); "
                f"run: chmod 600 {path}"
            )
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise SigningKeyError(f"the signing key {path} could not be read") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyError(f"the signing key {path} is not an Ed25519 key")
        return NoteSigner(name, private)

    def active(self) -> NoteSigner:
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
        out = []
        for lineno, line in enumerate(self.path.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                out.append(VerifierKey.parse(line))
            except NoteError as exc:
                raise ConfigError(f"{self.path}:{lineno}: {exc}") from None
        return out

    def add(self, key: VerifierKey) -> bool:
        """Trust `key`; False when it already was."""
        if any(k.encode() == key.encode() for k in self.keys()):
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.path.open("a") as fh:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"# added {stamp}\n{key.encode()}\n")
        return True


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
