"""Collector tokens: bearer secrets bound to tenants, of which only a hash is kept.

`auditlake token create --tenant T` prints a token once; the config home stores the
SHA-256 of it with its tenants, so a stolen config home cannot be replayed as tokens. A
token is 32 random bytes (256 bits), so a fast hash is the right tool: there is nothing
to brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.durable import write_durably
from lake.contract import READ_AUDIT_TENANT, RESERVED_TENANT_MESSAGE, ConfigError, UsageError
from lake.secrets import check_private
from lake.storage import check_tenant

TOKENS_FILE = "tokens.json"
PREFIX = "alk_"


@dataclass(frozen=True)
class TokenGrant:
    """What a token may do: write events of these tenants."""

    name: str
    tenants: frozenset[str]
    created_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Token hashes and their tenants in `<home>/tokens.json` (mode 0600)."""

    def __init__(self, home: Path) -> None:
        self.path = home / TOKENS_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        if not self.path.is_file():
            return {}
        check_private(self.path, "token file")
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            raise ConfigError(f"{self.path} is unreadable or not JSON") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path} is not a JSON object")
        return data

    def create(self, tenants: list[str], name: str | None = None) -> str:
        """A new token for `tenants`; returns the secret (shown once, never stored)."""
        if not tenants:
            raise UsageError("a token needs at least one --tenant")
        for tenant in tenants:
            check_tenant(tenant)
            if tenant == READ_AUDIT_TENANT:
                raise UsageError(RESERVED_TENANT_MESSAGE)
        token = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        data = self._load()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data[_digest(token)] = {
            "name": name or f"token-{len(data) + 1}",
            "tenants": sorted(set(tenants)),
            "created_at": stamp,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_durably(
            self.path, json.dumps(data, indent=2).encode(), tmp=self.path.with_suffix(".tmp")
        )
        return token

    def grants(self) -> dict[str, TokenGrant]:
        """Token hash → grant, for the collector to check requests against."""
        out = {}
        for digest, entry in self._load().items():
            tenants = entry.get("tenants")
            if not isinstance(tenants, list):
                raise ConfigError(f"{self.path}: entry {str(digest)[:8]}… has no tenant list")
            out[digest] = TokenGrant(
                str(entry.get("name", "")),
                frozenset(map(str, tenants)),
                str(entry.get("created_at")),
            )
        return out


def lookup(grants: Mapping[str, TokenGrant], token: str) -> TokenGrant | None:
    """The grant of a presented token, or None."""
    return grants.get(_digest(token))
