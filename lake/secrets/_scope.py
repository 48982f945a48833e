"""Tenant scoping: which tenants a request may touch, from what it names and who asks."""

from __future__ import annotations

from collections.abc import Sequence

from lake.secrets._access import Permission, Principal, check_reach, logged_tenants
from lake.storage import Lake, check_tenant


def scoped_tenants(
    who: Principal, lake: Lake, given: Sequence[str], permission: Permission
) -> list[str] | None:
    """The tenants a request may touch: those given (each checked) or all `who`'s.

    None means every tenant (the local operator naming none). A named tenant `who` may
    not reach, or one the lake does not hold, raises (AccessDenied, UnknownTenant), as
    does a principal without any grant.
    """
    for tenant in given:
        check_tenant(tenant)
    existing = logged_tenants(lake)
    check_reach(who, permission, existing, list(given))
    if given:
        return list(given)
    if who.operator:
        return None
    return who.tenants(permission, existing)
