"""The demo's background traffic: one tenant's people, machines, resources and events."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ingest.demo._model import (
    APPS,
    CATEGORIES,
    CATEGORY_STANDIN,
    CUM_OFF,
    CUM_ON,
    DESKTOP_UAS,
    FIRST_NAMES,
    FLAG_AREAS,
    FLAG_FEATURES,
    HOURLY,
    KEY_PURPOSES,
    LAST_NAMES,
    MACHINES,
    MOBILE_UAS,
    OUT_CUM,
    POOL_NAMES,
    POOL_OFF,
    POOL_ON,
    ROLES,
    STREAM_DAYS,
    STREAM_PROFILE,
    STREAM_TRAFFIC,
    TEMPLATES,
    TPL_CATEGORY,
    TPL_LOCAL_TIME,
    US_PER_DAY,
    US_PER_MIN,
    WEEKEND_FACTOR,
    WORK_END_H,
    WORK_START_H,
    Builder,
    Built,
    stable_hash,
    time_strings,
    uuid7_strings,
    wire_event,
    zone_for,
)


class _Draws(NamedTuple):
    """One day's random choices per event: template, outcome, actor, address, agent, ..."""

    template: npt.NDArray[np.intp]
    outcome: npt.NDArray[np.intp]
    actor: npt.NDArray[np.intp]
    ip: npt.NDArray[np.intp]
    user_agent: npt.NDArray[np.intp]
    u: npt.NDArray[np.float64]  # a uniform draw for the action's builder
    k: npt.NDArray[np.int64]  # an integer draw for the action's builder


class Tenant:
    """Everything fixed about one tenant for a given seed, plus its per-day traffic."""

    def __init__(self, name: str, seed: int, window_start_us: int, days: int) -> None:
        self.name = name
        self.seed = seed
        self.hash = stable_hash(name)
        self.offset_min, self.country = zone_for(name)
        self.domain = name.replace("_", "-") + ".example"
        rng = np.random.default_rng([seed, self.hash, STREAM_PROFILE])
        self._people(rng)
        self._pools(rng)
        self._resources(rng)
        self.builders: list[Builder] = [
            getattr(self, "_b_" + t.action.replace(".", "_")) for t in TEMPLATES
        ]
        self._shape(window_start_us, days)

    def _people(self, rng: np.random.Generator) -> None:
        """People, then machines: ids, types, two addresses and two user agents each."""
        # Positions are random names, so slicing by position carries no bias.
        n_humans = int(rng.integers(20, 61))
        pairs = rng.choice(len(FIRST_NAMES) * len(LAST_NAMES), size=n_humans, replace=False)
        human_ids = [
            f"{FIRST_NAMES[p // len(LAST_NAMES)]}.{LAST_NAMES[p % len(LAST_NAMES)]}@{self.domain}"
            for p in pairs.tolist()
        ]
        n_admins = int(rng.integers(3, 6))
        n_custodians = int(rng.integers(1, 3))
        self.helpdesk = 0
        self.custodians = list(range(1, 1 + n_custodians))
        self.general_admins = list(range(1 + n_custodians, n_admins))
        self.admins = list(range(n_admins))
        self.regulars = list(range(n_admins, n_humans))
        n_devs = max(3, int(0.3 * len(self.regulars)))
        self.devs = self.regulars[:n_devs]
        self.n_humans = n_humans

        net = 1 + self.hash % 250
        home_hosts = rng.choice(2 * 254, size=n_humans, replace=False).tolist()
        office_hosts = rng.choice(254 * 200, size=n_humans, replace=False).tolist()
        desktop = rng.integers(0, len(DESKTOP_UAS), n_humans).tolist()
        mobile = rng.integers(0, len(MOBILE_UAS), n_humans).tolist()

        self.actor_ids: list[str] = list(human_ids)
        self.actor_types: list[str] = ["admin"] * n_admins + ["user"] * (n_humans - n_admins)
        self.ips: list[str] = []  # two per actor: office, home
        self.uas: list[str] = []  # two per actor: desktop, mobile
        for i in range(n_humans):
            office = office_hosts[i]
            home = home_hosts[i]
            home_net = "192.0.2" if home < 254 else "198.51.100"
            self.ips += [
                f"10.{net}.{office // 254}.{office % 254 + 1}",
                f"{home_net}.{home % 254 + 1}",
            ]
            self.uas += [DESKTOP_UAS[desktop[i]], MOBILE_UAS[mobile[i]]]
        self.machine: dict[str, int] = {}
        for j, (mname, mtype, mua) in enumerate(MACHINES):
            self.machine[mname] = len(self.actor_ids)
            self.actor_ids.append(
                f"{mname}@{'system' if mtype == 'system' else 'svc'}.{self.domain}"
            )
            self.actor_types.append(mtype)
            self.ips += [f"10.{net}.250.{10 + j}"] * 2
            self.uas += [mua] * 2
        n_actors = len(self.actor_ids)
        self.is_human = np.zeros(n_actors, dtype=bool)
        self.is_human[:n_humans] = True
        self.is_human_l: list[bool] = self.is_human.tolist()

    def _pools(self, rng: np.random.Generator) -> None:
        """Actor pools of the templates: (members, cumulative weights normalised to 1)."""
        n_humans = self.n_humans
        activity = rng.lognormal(0.0, 0.8, n_humans)
        services = [
            self.machine["deploy-bot"],
            self.machine["scim-sync"],
            self.machine["ci-runner"],
        ]
        humans = list(range(n_humans))

        def mix(*parts: tuple[list[int], npt.ArrayLike, float]) -> tuple[Any, Any]:
            members: list[int] = []
            weights: list[float] = []
            for who, w, share in parts:
                arr = np.broadcast_to(np.asarray(w, dtype=float), (len(who),))
                members += who
                weights += (share * arr / arr.sum()).tolist()
            cum = np.cumsum(weights)
            return np.array(members, dtype=np.intp), cum / cum[-1]

        act = activity
        regs = self.regulars
        rotator = [self.machine["kms-rotator"]]
        deploy = [self.machine["deploy-bot"]]
        pools = {
            "humans": mix((humans, act, 1.0)),
            "auth_on": mix((humans, act, 0.95), (services, 1.0, 0.05)),
            "auth_off": mix((humans, act, 0.6), (services, 1.0, 0.4)),
            "admins": mix((self.admins, 1.0, 1.0)),
            "scim": mix(([self.machine["scim-sync"]], 1.0, 1.0)),
            "custodians": mix((self.custodians, 1.0, 1.0)),
            "rotate_on": mix((self.custodians, 1.0, 0.4), (rotator, 1.0, 0.6)),
            "rotator": mix((rotator, 1.0, 1.0)),
            "flaggers": mix((self.devs, act[self.devs], 0.8), (deploy, 1.0, 0.2)),
            "deploy": mix((deploy, 1.0, 1.0)),
            "recovery_on": mix((regs, act[regs], 0.75), ([self.helpdesk], 1.0, 0.25)),
            "regulars": mix((regs, act[regs], 1.0)),
        }
        self.pools = [pools[name] for name in POOL_NAMES]
        self.home_share = np.where(self.is_human, 0.35, 0.0)

    def _resources(self, rng: np.random.Generator) -> None:
        """The tenant's keys and feature flags."""
        name = self.name
        n_keys = int(rng.integers(5, len(KEY_PURPOSES) + 1))
        keys = rng.choice(len(KEY_PURPOSES), size=n_keys, replace=False).tolist()
        self.keys = [(f"kms://{name}/{KEY_PURPOSES[k][0]}", KEY_PURPOSES[k][1]) for k in keys]
        n_flags = int(rng.integers(40, 71))
        flags = rng.choice(len(FLAG_AREAS) * len(FLAG_FEATURES), size=n_flags, replace=False)
        self.flags = [
            f"{FLAG_AREAS[f // len(FLAG_FEATURES)]}.{FLAG_FEATURES[f % len(FLAG_FEATURES)]}"
            for f in flags.tolist()
        ]

    def _shape(self, window_start_us: int, days: int) -> None:
        """Traffic over the window: per UTC minute, its weight and whether it is off-hours."""
        minutes = np.arange(days * 1440, dtype=np.int64)
        local_min = window_start_us // US_PER_MIN + minutes + self.offset_min
        local_day = local_min // 1440
        local_mod = local_min % 1440
        weekend = (local_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)
        hour_curve = np.interp(local_mod / 60.0, np.arange(24) + 0.5, np.array(HOURLY), period=24)
        weights = hour_curve * np.where(weekend, WEEKEND_FACTOR, 1.0)
        local_hour = local_mod // 60
        off = weekend | (local_hour < WORK_START_H) | (local_hour >= WORK_END_H)
        self.minute_w = weights.reshape(days, 1440)
        self.minute_off = off.reshape(days, 1440)

    # -- traffic -------------------------------------------------------------------------

    def day_counts(self, total: int) -> list[int]:
        """Split the tenant's background events over the window's days by traffic weight."""
        rng = np.random.default_rng([self.seed, self.hash, STREAM_DAYS])
        per_day = self.minute_w.sum(axis=1)
        counts: list[int] = rng.multinomial(total, per_day / per_day.sum()).tolist()
        return counts

    def traffic(
        self, day_index: int, day_us: int, n: int, ensure_categories: bool
    ) -> tuple[npt.NDArray[np.int64], list[dict[str, Any]]]:
        """`n` background events on one UTC day, sorted by time; vectorised draws."""
        rng = np.random.default_rng([self.seed, self.hash, STREAM_TRAFFIC, day_us // US_PER_DAY])
        w = self.minute_w[day_index]
        counts = rng.multinomial(n, w / w.sum())
        minute = np.repeat(np.arange(1440, dtype=np.int64), counts)
        t_us = day_us + minute * US_PER_MIN + rng.integers(0, US_PER_MIN, n, dtype=np.int64)
        order = np.argsort(t_us, kind="stable")
        t_us = t_us[order]
        off = self.minute_off[day_index][minute[order]]
        u = rng.random((n, 6))
        k = rng.integers(0, 2**31, n, dtype=np.int64)
        uuid_rand = rng.bytes(10 * n)

        tpl = np.where(
            off,
            np.searchsorted(CUM_OFF, u[:, 0], side="right"),
            np.searchsorted(CUM_ON, u[:, 0], side="right"),
        )
        np.minimum(tpl, len(TEMPLATES) - 1, out=tpl)
        if ensure_categories:
            self._ensure_categories(tpl, off, rng)
        cum = OUT_CUM[tpl]
        outcome = (u[:, 1] >= cum[:, 0]).astype(np.intp) + (u[:, 1] >= cum[:, 1])
        np.minimum(outcome, 2, out=outcome)
        pool = np.where(off, POOL_OFF[tpl], POOL_ON[tpl])
        actor = np.zeros(n, dtype=np.intp)
        for p in np.unique(pool).tolist():
            mask = pool == p
            members, cw = self.pools[p]
            pick = np.searchsorted(cw, u[mask, 2], side="right")
            actor[mask] = members[np.minimum(pick, len(members) - 1)]
        ip_idx = 2 * actor + (u[:, 3] < self.home_share[actor])
        ua_idx = 2 * actor + ((u[:, 4] < 0.25) & self.is_human[actor])
        draws = _Draws(tpl, outcome, actor, ip_idx, ua_idx, u[:, 5], k)
        ids = uuid7_strings(t_us, uuid_rand)
        times = time_strings(t_us, self.offset_min, TPL_LOCAL_TIME[tpl])
        return t_us, self._events(ids, times, draws)

    def _events(self, ids: list[str], times: list[str], d: _Draws) -> list[dict[str, Any]]:
        """The wire events of one day's draws (the only per-event Python of the traffic)."""
        ips, uas = self.ips, self.uas
        actor_ids, actor_types = self.actor_ids, self.actor_types
        builders, name, templates = self.builders, self.name, TEMPLATES
        return [
            wire_event(
                name,
                eid,
                ts,
                templates[tp],
                o,
                {
                    "id": actor_ids[a],
                    "type": actor_types[a],
                    "ip": ips[ipi],
                    "user_agent": uas[uai],
                },
                builders[tp](o, a, uu, kk),
            )
            for eid, ts, tp, o, a, ipi, uai, uu, kk in zip(
                ids,
                times,
                d.template.tolist(),
                d.outcome.tolist(),
                d.actor.tolist(),
                d.ip.tolist(),
                d.user_agent.tolist(),
                d.u.tolist(),
                d.k.tolist(),
                strict=True,
            )
        ]

    def _ensure_categories(
        self, tpl: npt.NDArray[np.intp], off: npt.NDArray[np.bool_], rng: np.random.Generator
    ) -> None:
        """Swap in one stand-in event per category missing from this day (working hours first)."""
        present = set(TPL_CATEGORY[tpl].tolist())
        missing = [c for c in range(len(CATEGORIES)) if c not in present]
        if not missing or len(tpl) < len(CATEGORIES):
            return
        work = np.flatnonzero(~off)
        candidates = work if len(work) >= len(missing) else np.arange(len(tpl))
        # Never overwrite the last event of a category that is present only once.
        cats = TPL_CATEGORY[tpl[candidates]]
        singles = {c for c in present if int((TPL_CATEGORY[tpl] == c).sum()) == 1}
        keep = ~np.isin(cats, list(singles)) if singles else np.ones(len(candidates), bool)
        usable = candidates[keep] if int(keep.sum()) >= len(missing) else candidates
        spots = rng.choice(usable, size=len(missing), replace=False)
        for spot, cat in zip(spots.tolist(), missing, strict=True):
            tpl[spot] = CATEGORY_STANDIN[cat]

    # -- per-action targets and details --------------------------------------------------

    def _human(self, k: int) -> dict[str, str]:
        return {"type": "user", "id": self.actor_ids[k % self.n_humans]}

    def _contractor(self, k: int) -> dict[str, str]:
        return {"type": "user", "id": f"contractor-{10 + k % 90:02d}@{self.domain}"}

    def _key(self, k: int) -> tuple[dict[str, str], str]:
        key_id, algorithm = self.keys[k % len(self.keys)]
        return {"type": "key", "id": key_id}, algorithm

    def _b_login(self, o: int, a: int, u: float, k: int) -> Built:
        if not self.is_human_l[a]:
            details: dict[str, Any] = {"method": "api_key", "mfa": False}
            if o == 1:
                details["reason"] = "expired_token"
            return {"type": "application", "id": "api"}, details, None
        if o == 0:
            method = "sso" if u < 0.35 else "passkey" if u < 0.5 else "password"
            mfa = method == "passkey" or (k >> 4) % 10 < 8
            return (
                {"type": "application", "id": APPS[k % len(APPS)]},
                {"method": method, "mfa": mfa, "geo": {"country": self.country}},
                None,
            )
        if o == 1:
            reason = (
                "bad_password"
                if u < 0.7
                else "mfa_timeout"
                if u < 0.82
                else "expired_password"
                if u < 0.92
                else "account_locked"
            )
            return (
                {"type": "application", "id": APPS[k % len(APPS)]},
                {"reason": reason, "mfa": False, "geo": {"country": self.country}},
                None,
            )
        return (
            {"type": "application", "id": APPS[k % len(APPS)]},
            {"reason": "upstream_timeout", "geo": {"country": self.country}},
            None,
        )

    def _b_logout(self, o: int, a: int, u: float, k: int) -> Built:
        reason = "idle_timeout" if u < 0.3 else "user"
        return None, {"reason": reason, "session_seconds": 30 + k % 28_800}, None

    def _b_mfa_challenge(self, o: int, a: int, u: float, k: int) -> Built:
        method = "push" if u < 0.45 else "totp" if u < 0.8 else "webauthn" if u < 0.95 else "sms"
        details: dict[str, Any] = {"method": method}
        if o == 1:
            details["reason"] = ("wrong_code", "denied", "timeout")[(k >> 8) % 3]
        return {"type": "application", "id": APPS[k % len(APPS)]}, details, None

    def _b_role_grant(self, o: int, a: int, u: float, k: int) -> Built:
        details: dict[str, Any] = {"role": ROLES[(k >> 8) % len(ROLES)]}
        if o == 1:
            details["reason"] = "insufficient_privilege"
        return self._human(k), details, None

    _b_role_revoke = _b_role_grant

    def _b_user_create(self, o: int, a: int, u: float, k: int) -> Built:
        via = "scim" if self.actor_types[a] == "service" else "invite"
        details: dict[str, Any] = {"role": "member", "via": via}
        if o == 1:
            details["reason"] = "already_exists"
        return self._contractor(k), details, None

    def _b_user_delete(self, o: int, a: int, u: float, k: int) -> Built:
        return self._contractor(k), {"reason": "offboarding" if u < 0.6 else "contract_ended"}, None

    def _b_key_create(self, o: int, a: int, u: float, k: int) -> Built:
        target, algorithm = self._key(k)
        return target, {"algorithm": algorithm, "version": 1 + (k >> 8) % 12}, None

    def _b_key_rotate(self, o: int, a: int, u: float, k: int) -> Built:
        target, algorithm = self._key(k)
        previous = 1 + (k >> 8) % 12
        scheduled = self.actor_types[a] == "system"
        details = {
            "algorithm": algorithm,
            "previous_version": previous,
            "new_version": previous + 1,
            "scheduled": scheduled,
        }
        return target, details, None

    def _b_key_revoke(self, o: int, a: int, u: float, k: int) -> Built:
        target, _ = self._key(k)
        return target, {"reason": "superseded" if u < 0.8 else "decommissioned"}, None

    def _b_key_export(self, o: int, a: int, u: float, k: int) -> Built:
        target, _ = self._key(k)
        details = {
            "format": "jwk" if u < 0.5 else "pkcs8",
            "wrapped": True,
            "destination": "backup-vault",
        }
        return target, details, None

    def _b_flag_update(self, o: int, a: int, u: float, k: int) -> Built:
        env = "production" if u < 0.45 else "staging"
        previous = bool((k >> 3) & 1)
        target = {"type": "flag", "id": self.flags[k % len(self.flags)]}
        details = {"environment": env, "previous": previous, "value": not previous}
        return target, details, "medium" if env == "production" and o == 0 else None

    def _recovery_target(self, a: int, k: int) -> tuple[dict[str, str], str]:
        if a == self.helpdesk:
            return self._human(k), "helpdesk"
        return {"type": "user", "id": self.actor_ids[a]}, ("email", "email", "sms")[k % 3]

    def _b_recovery_request(self, o: int, a: int, u: float, k: int) -> Built:
        target, channel = self._recovery_target(a, k)
        details: dict[str, Any] = {"channel": channel}
        if o == 1:
            details["reason"] = "rate_limited" if u < 0.6 else "unknown_account"
        return target, details, None

    def _b_recovery_complete(self, o: int, a: int, u: float, k: int) -> Built:
        target, channel = self._recovery_target(a, k)
        details: dict[str, Any] = {"channel": channel, "mfa_reset": u < 0.4}
        if o == 1:
            details["reason"] = "token_expired" if u < 0.7 else "invalid_token"
        return target, details, None
