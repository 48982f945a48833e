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
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from lake.secrets._access import check_principal
from lake.secrets._private import read_private_json, write_private_json
from lake.spec import utc_text

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


def _tokens(doc: Any) -> dict[str, SigninToken]:
    """The tokens of a sign-in token document, by digest, each principal checked."""
    return {
        str(d): SigninToken(str(d), check_principal(str(e["principal"])), str(e["created_at"]))
        for d, e in dict(doc["tokens"]).items()
    }


class SigninStore:
    """Token hashes and their principals in `<home>/signin_tokens.json` (mode 0600).

    File format: `{"version": 1, "tokens": {sha256_hex: {"principal": P, "created_at": T}}}`.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / SIGNIN_FILE

    def _load(self) -> dict[str, SigninToken]:
        return read_private_json(self.path, "sign-in tokens", _tokens) or {}

    def _save(self, tokens: dict[str, SigninToken]) -> None:
        doc = {
            "version": _VERSION,
            "tokens": {
                t.digest: {"principal": t.principal, "created_at": t.created_at}
                for t in sorted(tokens.values(), key=lambda t: (t.principal, t.created_at))
            },
        }
        write_private_json(self.path, doc)

    def create(self, principal: str) -> str:
        """A new sign-in token for `principal`; returns the secret (shown once, never stored)."""
        check_principal(principal)
        token = SIGNIN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip(
            "="
        )
        tokens = self._load()
        stamp = utc_text(datetime.now(UTC), micros=False)
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
