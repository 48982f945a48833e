"""Collector tokens: bearer secrets bound to tenants, of which only a hash is kept.

`auditlake token create --tenant T` prints a token once; the config home stores the
SHA-256 of it with its tenants, so a stolen config home cannot be replayed as tokens. A
token is 32 random bytes (256 bits), so a fast hash is the right tool: there is nothing
to brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lake.contract import READ_AUDIT_TENANT, RESERVED_TENANT_MESSAGE, UsageError
from lake.secrets import read_private_json, write_private_json
from lake.spec import utc_text
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


def _entries(doc: Any) -> dict[str, dict[str, Any]]:
    """The token file's entries, token hash → `{name, tenants, created_at}`, as stored.

    Kept as the file has them (a rewrite adding a token leaves the others' bytes alone);
    each must be an object with a tenant list.
    """
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    for digest, entry in doc.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("tenants"), list):
            raise ValueError(f"entry {digest[:8]}… has no tenant list")
    return doc


class TokenStore:
    """Token hashes and their tenants in `<home>/tokens.json` (mode 0600)."""

    def __init__(self, home: Path) -> None:
        self.path = home / TOKENS_FILE

    def _load(self) -> dict[str, dict[str, Any]]:
        return read_private_json(self.path, "token file", _entries) or {}

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
        stamp = utc_text(datetime.now(UTC), micros=False)
        data[_digest(token)] = {
            "name": name or f"token-{len(data) + 1}",
            "tenants": sorted(set(tenants)),
            "created_at": stamp,
        }
        write_private_json(self.path, data)
        return token

    def grants(self) -> dict[str, TokenGrant]:
        """Token hash → grant, for the collector to check requests against."""
        return {
            digest: TokenGrant(
                str(entry.get("name", "")),
                frozenset(map(str, entry["tenants"])),
                str(entry.get("created_at")),
            )
            for digest, entry in self._load().items()
        }


def lookup(grants: Mapping[str, TokenGrant], token: str) -> TokenGrant | None:
    """The grant of a presented token, or None."""
    return grants.get(_digest(token))
