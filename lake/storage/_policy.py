"""The lake's retention policy document: per-tenant retention and legal holds.

Read by retention (which changes it) and by crypto-shredding (which a hold refuses), so it
lives below both. On disk it is `_auditlake/retention.json`, sorted keys, two-space indent:

    {"holds": {"<tenant>": {"reason": ..., "set_at": ..., "set_by": ...}},
     "tenants": {"<tenant>": {"days": 365, "preset": null, "set_at": ..., "set_by": ...}}}

`Policy.from_json`/`to_json` are the only readers and writers of that shape; keys this code
does not know are kept as they are, so a document written by a newer version survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from lake.contract import StorageError
from lake.storage import _paths as paths
from lake.storage._lake import Lake

__all__ = ["POLICY_PATH", "Hold", "Policy", "TenantRetention", "load_policy", "save_policy"]

POLICY_PATH: Final = paths.RETENTION


@dataclass(frozen=True)
class TenantRetention:
    """How long a tenant's events are kept, and who set that when (ISO 8601 time)."""

    days: int
    preset: str | None
    set_by: str
    set_at: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TenantRetention:
        return cls(int(doc["days"]), doc.get("preset"), str(doc["set_by"]), str(doc["set_at"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "preset": self.preset,
            "set_by": self.set_by,
            "set_at": self.set_at,
        }


@dataclass(frozen=True)
class Hold:
    """A legal hold on a tenant: nothing of it is removed or shredded while it stands."""

    reason: str
    set_by: str
    set_at: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Hold:
        return cls(str(doc["reason"]), str(doc["set_by"]), str(doc["set_at"]))

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "set_by": self.set_by, "set_at": self.set_at}


@dataclass
class Policy:
    """The whole document: retention per tenant, holds per tenant."""

    tenants: dict[str, TenantRetention] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_json(cls, doc: Any) -> Policy:
        """The policy in a parsed document; StorageError when it is not one."""
        try:
            rest = dict(doc)
            tenants = rest.pop("tenants", {})
            holds = rest.pop("holds", {})
            return cls(
                {t: TenantRetention.from_json(e) for t, e in tenants.items()},
                {t: Hold.from_json(h) for t, h in holds.items()},
                rest,
            )
        except (TypeError, ValueError, KeyError, AttributeError):
            raise StorageError(f"{POLICY_PATH} in the lake is not a retention policy") from None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.other,
            "tenants": {t: e.to_json() for t, e in self.tenants.items()},
            "holds": {t: h.to_json() for t, h in self.holds.items()},
        }


def load_policy(lake: Lake) -> Policy:
    """The lake's policy (empty when it has none yet)."""
    try:
        doc = orjson.loads(lake.read_bytes(POLICY_PATH))
    except FileNotFoundError:
        return Policy()
    except orjson.JSONDecodeError:
        raise StorageError(f"{POLICY_PATH} in the lake is not valid JSON") from None
    return Policy.from_json(doc)


def save_policy(lake: Lake, policy: Policy) -> None:
    lake.write_bytes(
        POLICY_PATH,
        orjson.dumps(policy.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
    )
