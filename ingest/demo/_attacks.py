"""The demo's planted attacks: one incident's events, in the shape of background traffic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from ingest.demo._model import (
    ATTACKER_COUNTRIES,
    ATTACKER_UAS,
    INCIDENT_KINDS,
    OUTCOMES,
    STREAM_INCIDENT,
    TEMPLATES,
    TPL_INDEX,
    TPL_LOCAL_TIME,
    US_PER_DAY,
    US_PER_MIN,
    Incident,
    dt_of,
    offset_suffix,
    time_strings,
    uuid7_strings,
    wire_event,
)
from ingest.demo._traffic import Tenant


class Planter:
    """Builds one incident's events with the same wire shape as background traffic."""

    def __init__(self, tenant: Tenant, kind: str) -> None:
        self.tenant = tenant
        self.kind = kind
        self.rng = np.random.default_rng(
            [tenant.seed, tenant.hash, STREAM_INCIDENT, INCIDENT_KINDS.index(kind)]
        )
        self.events: list[tuple[int, dict[str, Any]]] = []

    def attacker(self) -> tuple[str, str, str]:
        """An attacker address (203.0.113.0/24, unused by background traffic), UA, country."""
        r = self.rng
        ip = f"203.0.113.{int(r.integers(2, 255))}"
        ua = ATTACKER_UAS[int(r.integers(0, len(ATTACKER_UAS)))]
        return ip, ua, ATTACKER_COUNTRIES[int(r.integers(0, len(ATTACKER_COUNTRIES)))]

    def pick(self, who: Sequence[int]) -> int:
        return int(who[int(self.rng.integers(0, len(who)))])

    def add(
        self,
        t_us: int,
        action: str,
        outcome: str,
        actor: int | str,
        actor_type: str,
        ip: str,
        ua: str,
        *,
        target: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        severity: str | None = None,
    ) -> None:
        tp = TPL_INDEX[action]
        arr = np.array([t_us], dtype=np.int64)
        actor_id = self.tenant.actor_ids[actor] if isinstance(actor, int) else actor
        event = wire_event(
            self.tenant.name,
            uuid7_strings(arr, self.rng.bytes(10))[0],
            time_strings(arr, self.tenant.offset_min, np.array([TPL_LOCAL_TIME[tp]]))[0],
            TEMPLATES[tp],
            OUTCOMES.index(outcome),
            {"id": actor_id, "type": actor_type, "ip": ip, "user_agent": ua},
            (target, details, severity),
        )
        self.events.append((t_us, event))

    def login(
        self,
        t_us: int,
        outcome: str,
        actor: int | str,
        actor_type: str,
        ip: str,
        ua: str,
        country: str,
        **details: Any,
    ) -> None:
        """A login at the SSO portal from `country`; `details` come before the `geo`."""
        self.add(
            t_us,
            "login",
            outcome,
            actor,
            actor_type,
            ip,
            ua,
            target={"type": "application", "id": "sso-portal"},
            details={**details, "geo": {"country": country}},
        )

    def incident(self, actor_id: str, ip: str | None, description: str) -> Incident:
        self.events.sort(key=lambda pair: pair[0])
        times = [t for t, _ in self.events]
        return Incident(
            kind=self.kind,
            tenant=self.tenant.name,
            actor_id=actor_id,
            ip=ip,
            start=dt_of(times[0]),
            end=dt_of(times[-1]),
            event_ids=tuple(e["id"] for _, e in self.events),
            description=description,
        )

    def start_between(self, lo_us: int, hi_us: int) -> int:
        return int(self.rng.integers(lo_us, max(hi_us, lo_us + 1)))

    def offsets(self, n: int, span_us: int) -> list[int]:
        """`n` sorted offsets in [0, span_us], the first at 0 and the last at span_us."""
        inner = np.sort(self.rng.integers(0, span_us, max(n - 2, 0))).tolist()
        return [0, *inner, span_us][:n] if n > 1 else [0]


def _plant_brute_force(p: Planter, t: Tenant, r: np.random.Generator, ws: int, we: int) -> Incident:
    victim = p.pick(t.regulars)
    ip, ua, country = p.attacker()
    n_fail = int(r.integers(24, 41))
    span = int(r.integers(300, 481)) * 1_000_000
    gap = int(r.integers(20, 91)) * 1_000_000
    start = p.start_between(ws + 3_600_000_000, we - 2 * 3_600_000_000)
    for off in p.offsets(n_fail, span):
        p.login(start + off, "failure", victim, "user", ip, ua, country,
                reason="bad_password", mfa=False)  # fmt: skip
    p.login(start + span + gap, "success", victim, "user", ip, ua, country,
            method="password", mfa=False)  # fmt: skip
    who = t.actor_ids[victim]
    return p.incident(
        who,
        ip,
        f"{n_fail} failed logins for {who} from {ip} within {span // 1_000_000} s, "
        f"then a successful login (no MFA) from the same IP {gap // 1_000_000} s later",
    )


def _plant_password_spray(
    p: Planter, t: Tenant, r: np.random.Generator, ws: int, we: int
) -> Incident:
    ip, ua, country = p.attacker()
    n_real = int(r.integers(15, min(24, t.n_humans) + 1))
    real = r.choice(t.n_humans, size=n_real, replace=False).tolist()
    fakes = r.choice(["admin", "test", "info", "support", "root", "backup"], 3, replace=False)
    accounts: list[tuple[str, str, str]] = [
        (t.actor_ids[a], t.actor_types[a], "bad_password") for a in real
    ] + [(f"{f}@{t.domain}", "user", "unknown_user") for f in fakes.tolist()]
    order = r.permutation(len(accounts)).tolist()
    attempts = [accounts[i] for i in order]
    # A second pass over a few accounts with the next password on the list.
    attempts += [accounts[i] for i in order[: int(r.integers(3, 8))]]
    span = int(r.integers(18 * 60, 27 * 60)) * 1_000_000
    start = p.start_between(ws + 3_600_000_000, we - 2 * 3_600_000_000)
    for off, (who, kind, reason) in zip(p.offsets(len(attempts), span), attempts, strict=True):
        p.login(start + off, "failure", who, kind, ip, ua, country, reason=reason, mfa=False)
    return p.incident(
        ip,
        ip,
        f"{len(attempts)} failed logins against {len(accounts)} distinct accounts "
        f"({n_real} real, {len(fakes)} non-existent) from {ip} within {span // 60_000_000} min",
    )


def _plant_recovery_spree(
    p: Planter, t: Tenant, r: np.random.Generator, ws: int, we: int
) -> Incident:
    agent = t.helpdesk
    ip, _, country = p.attacker()
    ua = t.uas[2 * agent]
    n_req = int(r.integers(9, 15))
    victims = r.choice(np.arange(1, t.n_humans), size=n_req, replace=False).tolist()
    span = int(r.integers(35 * 60, 55 * 60)) * 1_000_000
    start = p.start_between(ws + 3_600_000_000, we - 3 * 3_600_000_000)
    offs = p.offsets(n_req, span)
    completed = set(r.choice(n_req, size=int(r.integers(3, 6)), replace=False).tolist())
    for i, (off, victim) in enumerate(zip(offs, victims, strict=True)):
        target = {"type": "user", "id": t.actor_ids[victim]}
        p.add(
            start + off,
            "recovery.request",
            "success",
            agent,
            "admin",
            ip,
            ua,
            target=target,
            details={"channel": "helpdesk"},
        )
        if i in completed:
            later = start + off + int(r.integers(120, 480)) * 1_000_000
            p.add(
                later,
                "recovery.complete",
                "success",
                agent,
                "admin",
                ip,
                ua,
                target=dict(target),
                details={"channel": "helpdesk", "mfa_reset": True},
            )
    who = t.actor_ids[agent]
    return p.incident(
        who,
        ip,
        f"helpdesk agent {who} requested recovery of {n_req} different accounts from {ip} "
        f"({country}) within {span // 60_000_000} min and completed {len(completed)} of them",
    )


def _plant_mass_flag_flips(
    p: Planter, t: Tenant, r: np.random.Generator, ws: int, we: int
) -> Incident:
    dev = p.pick(t.devs)
    ip = t.ips[2 * dev + 1]
    ua = t.uas[2 * dev]
    n = int(r.integers(26, 41))
    flags = r.choice(len(t.flags), size=n, replace=False).tolist()
    span = int(r.integers(8 * 60, 13 * 60)) * 1_000_000
    start = p.start_between(ws + 3_600_000_000, we - 2 * 3_600_000_000)
    for off, f in zip(p.offsets(n, span), flags, strict=True):
        p.add(
            start + off,
            "flag.update",
            "success",
            dev,
            "user",
            ip,
            ua,
            target={"type": "flag", "id": t.flags[f]},
            details={"environment": "production", "previous": True, "value": False},
            severity="medium",
        )
    who = t.actor_ids[dev]
    return p.incident(
        who,
        ip,
        f"{who} switched off {n} production feature flags from {ip} "
        f"within {span // 60_000_000} min",
    )


def _night_at_three(p: Planter, ws: int, we: int) -> int:
    """03:00 local on a night inside the window (a weekend one if any), in UTC micros."""
    off_us = p.tenant.offset_min * US_PER_MIN
    r = p.rng
    # Candidate nights: 03:00 local on each local date, weekends first, that fit the window.
    first_local_day = (ws + off_us) // US_PER_DAY - 1
    last_local_day = (we + off_us) // US_PER_DAY + 1
    fits: list[tuple[bool, int]] = []
    for day in range(first_local_day, last_local_day + 1):
        at = day * US_PER_DAY + 3 * 3_600_000_000 - off_us
        if at - 3_600_000_000 >= ws and at + 3_600_000_000 <= we:
            fits.append(((day + 3) % 7 >= 5, at))
    weekend = [at for is_weekend, at in fits if is_weekend]
    choices = weekend or [at for _, at in fits]
    # A window too short to hold 03:00 local with margin: stay inside it.
    base = choices[int(r.integers(0, len(choices)))] if choices else ws + (we - ws) // 2
    return base


def _plant_off_hours_key_export(
    p: Planter, t: Tenant, r: np.random.Generator, ws: int, we: int
) -> Incident:
    granter = p.pick(t.general_admins or t.admins[:1])
    actor = p.pick(t.regulars[len(t.devs) :] or t.regulars)
    ip, ua, country = p.attacker()
    off_us = t.offset_min * US_PER_MIN
    base = _night_at_three(p, ws, we)

    def seconds(lo: int, hi: int) -> int:
        """A random duration in [lo, hi) seconds, with microseconds."""
        return int(r.integers(lo * 1_000_000, hi * 1_000_000))

    base += seconds(0, 15 * 60)
    t_grant_login = base - seconds(32 * 60, 40 * 60)
    t_grant = t_grant_login + seconds(60, 180)
    t_login = base - seconds(5 * 60, 12 * 60)
    t_export = base + seconds(90, 360)
    key_id = f"kms://{t.name}/export-tmp-{int(r.integers(0, 16**4)):04x}"
    p.login(t_grant_login, "success", granter, "admin", ip, ua, country,
            method="password", mfa=True)  # fmt: skip

    def admin(t_us: int, action: str, who: int, target: dict[str, str], **extra: Any) -> None:
        """A successful admin action from the attacker's address."""
        p.add(t_us, action, "success", who, "admin", ip, ua, target=target, **extra)

    admin(t_grant, "role.grant", granter, {"type": "user", "id": t.actor_ids[actor]},
          details={"role": "kms-admin"})  # fmt: skip
    p.login(t_login, "success", actor, "admin", ip, ua, country, method="password", mfa=True)
    key = {"type": "key", "id": key_id}
    admin(base, "key.create", actor, key, details={"algorithm": "rsa-3072", "version": 1})
    admin(t_export, "key.export", actor, dict(key), severity="critical",
          details={"format": "pkcs8", "wrapped": False, "destination": "external"})  # fmt: skip
    local = dt_of(base + off_us)
    who = t.actor_ids[actor]
    return p.incident(
        who,
        ip,
        f"{t.actor_ids[granter]} granted kms-admin to {who} (never seen doing key actions), "
        f"who created and exported key {key_id} unwrapped from {ip} at "
        f"{local:%A %H:%M} local ({offset_suffix(t.offset_min)})",
    )


Plant = Callable[[Planter, Tenant, np.random.Generator, int, int], Incident]
"""Plants one incident kind between two UTC instants (micros), with the planter's tenant
and random generator; returns the incident."""

PLANTERS: Final[dict[str, Plant]] = {
    "brute_force": _plant_brute_force,
    "password_spray": _plant_password_spray,
    "recovery_spree": _plant_recovery_spree,
    "mass_flag_flips": _plant_mass_flag_flips,
    "off_hours_key_export": _plant_off_hours_key_export,
}
