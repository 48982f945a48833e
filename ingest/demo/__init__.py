"""Deterministic demo traffic: realistic audit events for several tenants, with planted attacks.

Used by `auditlake demo`, by the test suite and by the benchmarks, so it has to be three
things at once:

* **Realistic enough** to exercise the pipeline and the detections: every tenant has its
  own people (a few of them admins, one a helpdesk agent, one or two key custodians, some
  developers who flip feature flags), a few services and a system key rotator, a timezone,
  a working-hours diurnal pattern with quiet weekends, mostly successful logins with some
  ordinary failures, logouts, MFA challenges, and the occasional admin action, key
  operation, flag update and account recovery. All five categories appear for every tenant.
* **Reproducible**: the same arguments give the same events byte for byte (numpy
  `Generator`s seeded from `seed` and a stable hash of the tenant name; no wall clock).
  Each tenant's traffic depends only on `seed`, its name and the window, never on the other
  tenants, and the background traffic is identical whether or not incidents are planted.
* **Fast**: attributes are drawn in vectorised batches per tenant-day, timestamps and v7
  UUIDs are formatted by numpy; only the final dict assembly is per-event Python
  (about a million events in a few seconds).

Planted incidents (`incidents=True`) are returned as `Incident` records naming their
events, so detection tests can assert on them. They go to tenants by position (the first,
second and third tenant, cycling when there are fewer), which with the default tenants is:

=====================  =========  =====================================================
kind                   tenant     what
=====================  =========  =====================================================
brute_force            northwind  ≥ 20 failed logins for one account from one IP within
                                  10 minutes, then a successful login from that IP
password_spray         contoso    one IP failing logins against ≥ 15 distinct accounts
                                  within 30 minutes
recovery_spree         globex     one actor/IP requesting recovery of ≥ 8 different
                                  accounts within an hour, completing some of them
mass_flag_flips        contoso    ≥ 25 flag updates by one actor within 15 minutes
off_hours_key_export   globex     a role.grant to a user never seen doing key actions,
                                  who then creates and exports a key around 03:00 local
                                  on a weekend night
=====================  =========  =====================================================

Conventions a detector can rely on: for authentication events `actor` is the account
being authenticated (so a brute force is many failures with the same `actor.id` and
`actor.ip`); attackers use addresses in 203.0.113.0/24, which background traffic never
uses (people use 10.x office addresses and 192.0.2.0/24 or 198.51.100.0/24 at home); in
background traffic only key custodians and the system key rotator perform key actions,
and `key.export` happens only in local working hours. Times are UTC (`Z`) except that the
admin console stamps its events in the tenant's local offset (e.g. `+09:00`), as some
real emitters do; both express the same instant.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from ingest.demo._model import (
    ACTIONS,
    CATEGORIES,
    DEFAULT_END,
    DEFAULT_TENANTS,
    INCIDENT_KINDS,
    DemoData,
    Incident,
    zone_for,
)
from ingest.demo._plan import Plan
from ingest.demo._writer import to_jsonl_bytes, write_jsonl
from lake.spec import gc_paused

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "DEFAULT_END",
    "DEFAULT_TENANTS",
    "INCIDENT_KINDS",
    "DemoData",
    "Incident",
    "generate",
    "iter_events",
    "tenant_utc_offset",
    "to_jsonl_bytes",
    "write_jsonl",
]


def generate(
    *,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    days: int = 7,
    end: date = DEFAULT_END,
    events_per_tenant_per_day: int = 400,
    seed: int = 7,
    incidents: bool = True,
) -> DemoData:
    """Generate `days` UTC days ending on `end` (inclusive) of traffic for `tenants`.

    Each tenant gets exactly `days * events_per_tenant_per_day` background events (fewer
    on its local weekends, more on weekdays), plus the events of any incidents planted in
    it. Raises `ValueError` for invalid tenant names, duplicate tenants, `days < 1`, a
    negative event rate or a negative seed.
    """
    plan = Plan(tenants, days, end, events_per_tenant_per_day, seed, incidents)
    events: list[dict[str, Any]] = []
    with gc_paused():
        for batch in plan.day_batches():
            events += batch
    return DemoData(events=events, incidents=list(plan.incidents))


def iter_events(
    *,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    days: int = 7,
    end: date = DEFAULT_END,
    events_per_tenant_per_day: int = 400,
    seed: int = 7,
    incidents: bool = True,
) -> Iterator[dict[str, Any]]:
    """Stream the same events as `generate(...)`, one UTC day at a time, in time order.

    Memory stays proportional to one day of traffic, so benchmarks can pipe very large
    runs straight to disk. Argument errors are raised at the call, not on first `next`.
    """
    plan = Plan(tenants, days, end, events_per_tenant_per_day, seed, incidents)
    return plan.stream()


def tenant_utc_offset(tenant: str) -> timedelta:
    """The fixed UTC offset the generator uses as `tenant`'s local time (no DST).

    Depends on the name only (not the seed), so tests can check diurnal and off-hours
    behaviour: northwind +01:00, contoso -05:00, globex +09:00; others hash to a zone.
    """
    return timedelta(minutes=zone_for(tenant)[0])
