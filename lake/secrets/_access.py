"""Who may read what: principals, per-tenant roles, and the permissions each role carries.

The access policy lives in the config home (`access.json`, mode 0600), never in the lake,
so a copy of the lake carries no grants. Every read path asks a `Principal` for the
tenants it may read before it touches data; nothing below this module decides access.

Roles are cumulative:

    viewer        read events
    investigator  + read alerts, produce inclusion proofs and evidence
    auditor       + read checkpoints, run verification
    admin         + manage retention and legal holds, manage keys

The local operator, principal `admin`, holds every permission on every tenant, including
the reserved tenant that records who queried what (`READ_AUDIT_TENANT`). Any other
principal sees the reserved tenant only through an explicit grant on it.

`check_reach` is the one check every read path makes before it answers (CLI, TUI,
notebook, dashboard): a request that could only come back empty because of who asks
(an unknown principal, every grant revoked, no grant on any tenant of the lake) or
because a tenant is misspelt is refused with the reason, never answered with nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lake.contract import READ_AUDIT_TENANT, UsageError, is_valid_tenant
from lake.secrets._private import read_private_json, write_private_json

if TYPE_CHECKING:
    from lake.storage import Lake

LOCAL_OPERATOR: Final = "admin"
ALL_TENANTS: Final = "*"
POLICY_FILE: Final = "access.json"
PRINCIPAL_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
_PRINCIPAL_RE: Final = re.compile(PRINCIPAL_PATTERN)


class Permission(StrEnum):
    READ_EVENTS = "read_events"
    READ_ALERTS = "read_alerts"
    PROVE = "prove"
    READ_CHECKPOINTS = "read_checkpoints"
    VERIFY = "verify"
    MANAGE_RETENTION = "manage_retention"
    MANAGE_KEYS = "manage_keys"


class Role(StrEnum):
    VIEWER = "viewer"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    ADMIN = "admin"


ROLES: Final = tuple(r.value for r in Role)
_VIEWER = frozenset({Permission.READ_EVENTS})
_INVESTIGATOR = _VIEWER | {Permission.READ_ALERTS, Permission.PROVE}
_AUDITOR = _INVESTIGATOR | {Permission.READ_CHECKPOINTS, Permission.VERIFY}
_ADMIN = _AUDITOR | {Permission.MANAGE_RETENTION, Permission.MANAGE_KEYS}
ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.VIEWER: _VIEWER,
    Role.INVESTIGATOR: _INVESTIGATOR,
    Role.AUDITOR: _AUDITOR,
    Role.ADMIN: _ADMIN,
}


def check_principal(name: str) -> str:
    """Validate a principal name (it is written into audit events and the policy file)."""
    if not isinstance(name, str) or not _PRINCIPAL_RE.fullmatch(name):
        raise UsageError(
            f"invalid principal {name!r}: letters, digits, '.', '_', '@', '+' and '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UsageError(f"unknown role {role!r}: use one of {', '.join(ROLES)}") from None


def _check_grant_tenant(tenant: str) -> str:
    if tenant == ALL_TENANTS or is_valid_tenant(tenant):
        return tenant
    raise UsageError(
        f"invalid tenant id {tenant!r}: lower-case letters, digits, '_' and '-', starting "
        f"with a letter or digit, at most 63 characters (or {ALL_TENANTS!r} for every tenant)"
    )


@dataclass(frozen=True)
class Principal:
    """Someone asking: a name and a role per tenant (`*` = every tenant but the reserved one)."""

    name: str
    grants: dict[str, Role] = field(default_factory=dict)
    operator: bool = False

    def role_for(self, tenant: str) -> Role | None:
        if self.operator:
            return Role.ADMIN
        if tenant in self.grants:
            return self.grants[tenant]
        if tenant != READ_AUDIT_TENANT and ALL_TENANTS in self.grants:
            return self.grants[ALL_TENANTS]
        return None

    def may(self, permission: Permission, tenant: str) -> bool:
        role = self.role_for(tenant)
        return role is not None and permission in ROLE_PERMISSIONS[role]

    def tenants(self, permission: Permission, existing: list[str]) -> list[str]:
        """The tenants among `existing` on which this principal holds `permission`."""
        return [t for t in existing if self.may(permission, t)]

    def require(self, permission: Permission, tenant: str) -> None:
        """Raise AccessDenied unless the principal holds `permission` on `tenant`.

        The message is the same whether the tenant exists or not, so a refusal does not
        reveal which tenants the lake holds.
        """
        if not self.may(permission, tenant):
            raise AccessDenied(
                f"principal {self.name!r} may not {_VERBS[permission]} of tenant {tenant!r} "
                "(no such grant; an admin can run `auditlake access grant`)"
            )


_VERBS: Final = {
    Permission.READ_EVENTS: "read the events",
    Permission.READ_ALERTS: "read the alerts",
    Permission.PROVE: "produce proofs",
    Permission.READ_CHECKPOINTS: "read the checkpoints",
    Permission.VERIFY: "verify the log",
    Permission.MANAGE_RETENTION: "manage retention",
    Permission.MANAGE_KEYS: "manage the keys",
}


class AccessDenied(UsageError):
    """The principal lacks the permission for this tenant (or the tenant does not exist)."""


class UnknownTenant(AccessDenied):
    """A tenant the principal may read is not in the lake (a misspelt --tenant): refused
    like a missing grant, so every refusal is recorded the same way."""


def check_reach(
    principal: Principal,
    permission: Permission,
    existing: Iterable[str],
    requested: Sequence[str] = (),
) -> None:
    """Refuse a request that can only come back empty for a reason other than the data.

    Args:
        principal: who asks.
        permission: what the request needs on each tenant.
        existing: the tenants the lake holds (a log: events or checkpoints).
        requested: the tenants asked for by name (`prefix*` patterns are not checked);
            none means every tenant the principal may reach.

    Raises AccessDenied for a principal without any grant or without `permission` on a
    requested tenant (the same message whether that tenant exists), UnknownTenant for a
    requested tenant it may reach that the lake does not hold, and AccessDenied when
    nothing was requested and no tenant of the lake is within its grants.
    """
    if not principal.operator and not principal.grants:
        raise AccessDenied(
            f"principal {principal.name!r} holds no grant (unknown, or every grant was "
            "revoked); an admin can run `auditlake access grant`"
        )
    known = set(existing)
    for tenant in requested:
        if tenant.endswith("*"):
            continue
        principal.require(permission, tenant)
        if tenant not in known:
            raise UnknownTenant(
                f"no tenant {tenant!r} in this lake (misspelt? `auditlake retention status` "
                "lists the tenants)"
            )
    if (
        not requested
        and not principal.operator
        and not principal.tenants(permission, sorted(known))
    ):
        held = ", ".join(f"{r} on {t}" for t, r in sorted(principal.grants.items()))
        raise AccessDenied(
            f"principal {principal.name!r} may {_VERBS[permission]} of no tenant in this "
            f"lake (its grants: {held})"
        )


def logged_tenants(lake: Lake) -> list[str]:
    """Tenants with a log in the lake: events, or checkpoints left after retention.

    A table whose Delta log cannot be read adds none (`verify` reports it as a finding).
    """
    from contextlib import suppress

    from deltalake.exceptions import DeltaError

    from lake.contract import LakeError

    tenants: set[str] = set()
    with suppress(LakeError, DeltaError, OSError):
        tenants.update(lake.tenants())
    with suppress(LakeError, DeltaError, OSError):
        tenants.update(p["tenant"] for p in lake.checkpoints_table().partitions())
    return sorted(tenants)


def _principals(doc: Any) -> dict[str, dict[str, Role]]:
    """The grants of an access policy document, each name, tenant and role checked."""
    return {
        check_principal(p): {_check_grant_tenant(t): check_role(r) for t, r in dict(grants).items()}
        for p, grants in dict(doc["principals"]).items()
    }


class AccessPolicy:
    """The grants in `<home>/access.json`: `{"version": 1, "principals": {P: {T: role}}}`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / POLICY_FILE

    def _load(self) -> dict[str, dict[str, Role]]:
        return read_private_json(self.path, "access policy", _principals) or {}

    def _save(self, principals: dict[str, dict[str, Role]]) -> None:
        doc: dict[str, Any] = {
            "version": 1,
            "principals": {
                p: {t: str(r) for t, r in sorted(g.items())}
                for p, g in sorted(principals.items())
                if g
            },
        }
        write_private_json(self.path, doc)

    def principal(self, name: str) -> Principal:
        """The principal `name` with its grants; the local operator holds everything."""
        check_principal(name)
        if name == LOCAL_OPERATOR:
            return Principal(name, {}, operator=True)
        return Principal(name, dict(self._load().get(name, {})))

    def grant(self, name: str, tenant: str, role: str) -> Principal:
        """Give `name` the role on `tenant` (replacing the role it had there)."""
        check_principal(name)
        if name == LOCAL_OPERATOR:
            raise UsageError(f"{LOCAL_OPERATOR!r} is the local operator and holds every role")
        grants = self._load()
        grants.setdefault(name, {})[_check_grant_tenant(tenant)] = check_role(role)
        self._save(grants)
        return self.principal(name)

    def revoke(self, name: str, tenant: str | None = None) -> int:
        """Remove the grant on `tenant` (or all grants of `name`); returns how many went."""
        check_principal(name)
        grants = self._load()
        held = grants.get(name, {})
        if tenant is None:
            removed = len(held)
            grants.pop(name, None)
        else:
            removed = 1 if held.pop(_check_grant_tenant(tenant), None) is not None else 0
        if removed:
            self._save(grants)
        return removed

    def list(self) -> list[tuple[str, str, Role]]:
        """Every grant as (principal, tenant, role), sorted."""
        return sorted((p, t, r) for p, g in self._load().items() for t, r in g.items())
