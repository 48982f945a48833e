"""Sign-in tokens: how a person proves to the dashboard which principal they are.

The access policy names principals, but a name is no proof: a sign-in box that took a
name would let anyone be anyone. So the operator hands each person a token
(`auditlake access token PRINCIPAL`), and the dashboard resolves a presented token to its
principal; the principal's grants then decide what it shows.

Only the SHA-256 of a token is kept, in `<home>/signin_tokens.json` (mode 0600, refused
when others may write it, as the access policy is), so a copy of the config home cannot
be replayed as sign-ins. A token is 32 random bytes, so a fast hash is the right tool:
there is nothing to brute-force that a slow password hash would protect (as for the
collector's tokens in `ingest/tokens.py`, which this mirrors; `lake` cannot import it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from lake.contract import ConfigError, UsageError
from lake.secrets._access import check_principal
from lake.secrets._config import check_private

SIGNIN_FILE: Final = "signin_tokens.json"
SIGNIN_PREFIX: Final = "als_"  # "auditlake sign-in": tells it apart from a collector token (alk_)
_VERSION: Final = 1


@dataclass(frozen=True)
class SigninToken:
    """What the store knows of one token: whose it is and when it was made (never the secret)."""

    digest: str
    principal: str
    created_at: str


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SigninStore:
    """Token hashes and their principals in `<home>/signin_tokens.json` (mode 0600).

    File format: `{"version": 1, "tokens": {sha256_hex: {"principal": P, "created_at": T}}}`.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / SIGNIN_FILE

    def _load(self) -> dict[str, SigninToken]:
        if not self.path.is_file():
            return {}
        check_private(self.path, "sign-in tokens")
        try:
            doc: Any = json.loads(self.path.read_text())
            entries = doc["tokens"]
            return {
                str(d): SigninToken(
                    str(d), check_principal(str(e["principal"])), str(e["created_at"])
                )
                for d, e in dict(entries).items()
            }
        except (OSError, ValueError, KeyError, TypeError, UsageError) as exc:
            raise ConfigError(f"the sign-in tokens {self.path} are unreadable: {exc}") from None

    def _save(self, tokens: dict[str, SigninToken]) -> None:
        doc = {
            "version": _VERSION,
            "tokens": {
                t.digest: {"principal": t.principal, "created_at": t.created_at}
                for t in sorted(tokens.values(), key=lambda t: (t.principal, t.created_at))
            },
        }
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".signin-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:  # mkstemp creates it 0600
                json.dump(doc, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create(self, principal: str) -> str:
        """A new sign-in token for `principal`; returns the secret (shown once, never stored)."""
        check_principal(principal)
        token = SIGNIN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip(
            "="
        )
        tokens = self._load()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = SigninToken(digest(token), principal, stamp)
        tokens[entry.digest] = entry
        self._save(tokens)
        return token

    def resolve(self, token: str) -> str | None:
        """The principal a presented token signs in as, or None for an unknown token."""
        token = token.strip()
        if not token.startswith(SIGNIN_PREFIX):
            return None
        wanted = digest(token)
        found = None
        for d, entry in self._load().items():
            # Constant-time, and over every entry, so timing tells nothing about the file.
            if hmac.compare_digest(d, wanted):
                found = entry.principal
        return found

    def revoke(self, principal: str) -> int:
        """Remove every token of `principal`; returns how many went."""
        check_principal(principal)
        tokens = self._load()
        kept = {d: t for d, t in tokens.items() if t.principal != principal}
        removed = len(tokens) - len(kept)
        if removed:
            self._save(kept)
        return removed

    def list(self) -> list[SigninToken]:
        """Every token's principal and creation time, sorted (digests, never secrets)."""
        return sorted(self._load().values(), key=lambda t: (t.principal, t.created_at))
