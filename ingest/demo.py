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

import gc
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

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

DEFAULT_TENANTS: Final[tuple[str, ...]] = ("northwind", "contoso", "globex")
DEFAULT_END: Final[date] = date(2026, 11, 27)

CATEGORIES: Final[tuple[str, ...]] = (
    "authentication",
    "admin_action",
    "key_change",
    "flag_change",
    "account_recovery",
)
ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "authentication": ("login", "logout", "mfa.challenge"),
    "admin_action": ("role.grant", "role.revoke", "user.create", "user.delete"),
    "key_change": ("key.create", "key.rotate", "key.revoke", "key.export"),
    "flag_change": ("flag.update",),
    "account_recovery": ("recovery.request", "recovery.complete"),
}
INCIDENT_KINDS: Final[tuple[str, ...]] = (
    "brute_force",
    "password_spray",
    "recovery_spree",
    "mass_flag_flips",
    "off_hours_key_export",
)
# Which tenant (by position, modulo the number of tenants) receives each incident kind.
_INCIDENT_SLOT: Final[dict[str, int]] = {
    "brute_force": 0,
    "password_spray": 1,
    "recovery_spree": 2,
    "mass_flag_flips": 1,
    "off_hours_key_export": 2,
}

_TENANT_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_OUTCOMES: Final[tuple[str, str, str]] = ("success", "failure", "unknown")
_US_PER_MIN: Final = 60_000_000
_US_PER_DAY: Final = 86_400_000_000
_EPOCH: Final = date(1970, 1, 1)
_EPOCH_DT: Final = datetime(1970, 1, 1, tzinfo=UTC)

# RNG streams per tenant: entropy is [seed, tenant hash, stream, ...].
_STREAM_PROFILE: Final = 0
_STREAM_DAYS: Final = 1
_STREAM_TRAFFIC: Final = 2
_STREAM_INCIDENT: Final = 3

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

_FIRST_NAMES: Final = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "wendy", "yara", "zoe", "amir", "bianca", "chen", "dmitri", "elena", "farah", "goran",
    "hana", "igor", "jonas", "kira", "lars", "maya", "nikos", "oskar", "priya", "quinn",
    "rosa", "sanjay", "tomas", "uma", "vera", "wei", "ximena", "yusuf", "zainab", "aiko",
    "bruno", "chloe", "diego", "emeka", "fatima", "gustav", "hiro", "ines", "jamal",
    "keiko", "lucia", "marek", "noor", "pablo", "sofia",
)  # fmt: skip
_LAST_NAMES: Final = (
    "smith", "jones", "garcia", "mueller", "tanaka", "kowalski", "rossi", "novak", "silva",
    "kim", "nguyen", "okafor", "haddad", "larsen", "petrov", "dubois", "schmidt", "ito",
    "fischer", "martin", "lopez", "weber", "suzuki", "wagner", "costa", "ivanova", "berg",
    "sato", "hoffmann", "moreau", "patel", "khan", "ali", "chen", "wong", "brown", "taylor",
    "wilson", "evans", "walker", "young", "hall", "wright", "green", "baker", "adams",
    "nelson", "hill", "campbell", "mitchell", "roberts", "carter", "phillips", "turner",
    "torres", "parker", "collins", "edwards", "stewart", "morris", "murphy", "cook",
    "rogers", "morgan",
)  # fmt: skip
_DESKTOP_UAS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
)
_MOBILE_UAS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
)
_ATTACKER_UAS: Final = (
    "python-requests/2.32.3",
    "curl/8.10.1",
    "Go-http-client/1.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
)
_ATTACKER_COUNTRIES: Final = ("NL", "RO", "BR", "VN", "RU", "US", "SG")
# (name, actor type, user agent) of each tenant's non-human actors, in actor-table order.
_MACHINES: Final = (
    ("deploy-bot", "service", "deploy-bot/3.4.1"),
    ("scim-sync", "service", "scim-sync/2.0 (+directory)"),
    ("ci-runner", "service", "ci-runner/17.5.2"),
    ("kms-rotator", "system", "kms-rotator/1.9.0"),
)
_APPS: Final = ("sso-portal", "mail", "vpn", "crm", "wiki", "git")
_ROLES: Final = ("viewer", "member", "billing-admin", "security-auditor", "org-admin", "support")
_KEY_PURPOSES: Final = (
    ("payments-signing", "ecdsa-p256"),
    ("backup-encryption", "aes-256-gcm"),
    ("token-signing", "ed25519"),
    ("db-encryption", "aes-256-gcm"),
    ("webhook-signing", "ed25519"),
    ("saml-signing", "rsa-3072"),
    ("audit-signing", "ed25519"),
    ("file-encryption", "aes-256-gcm"),
)
_FLAG_AREAS: Final = (
    "checkout", "billing", "search", "onboarding", "reports", "inbox", "export", "sso",
    "dashboard", "mobile", "api", "notifications", "pricing", "uploads", "audit", "profile",
)  # fmt: skip
_FLAG_FEATURES: Final = (
    "v2", "new-ui", "beta", "fast-path", "dark-launch", "kill-switch", "rate-limit",
    "cache", "async", "ab-test",
)  # fmt: skip
# Known zones for the default tenants (fixed offsets in November, no DST handling).
_DEFAULT_ZONES: Final[dict[str, tuple[int, str]]] = {
    "northwind": (60, "DE"),
    "contoso": (-300, "US"),
    "globex": (540, "JP"),
}
_OTHER_ZONES: Final[tuple[tuple[int, str], ...]] = (
    (-480, "US"),
    (-300, "US"),
    (-180, "BR"),
    (0, "GB"),
    (60, "FR"),
    (120, "FI"),
    (330, "IN"),
    (480, "SG"),
    (540, "JP"),
    (600, "AU"),
)
# Relative traffic by local hour (index = hour), interpolated per minute; weekends × 0.22.
_HOURLY: Final = (
    0.05, 0.04, 0.03, 0.03, 0.04, 0.07, 0.15, 0.40, 0.85, 1.00, 1.00, 0.95,
    0.70, 0.90, 1.00, 0.95, 0.85, 0.60, 0.38, 0.25, 0.17, 0.12, 0.09, 0.06,
)  # fmt: skip
_WEEKEND_FACTOR: Final = 0.22
_WORK_START_H: Final = 7
_WORK_END_H: Final = 20


# --------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """One planted attack: where, who, when, and exactly which events make it up.

    `actor_id` is the principal a detection would key on: the attacked account for
    `brute_force` (authentication events name the account as actor), the source IP for
    `password_spray` (no single account), the requesting agent for `recovery_spree`, the
    flipper for `mass_flag_flips` and the exporter for `off_hours_key_export`. `start` and
    `end` are the UTC times of the first and last event in `event_ids` (inclusive).
    """

    kind: str
    tenant: str
    actor_id: str
    ip: str | None
    start: datetime
    end: datetime
    event_ids: tuple[str, ...]
    description: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (RFC 3339 times), e.g. for `auditlake demo --incidents`."""
        return {
            "kind": self.kind,
            "tenant": self.tenant,
            "actor_id": self.actor_id,
            "ip": self.ip,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "event_ids": list(self.event_ids),
            "description": self.description,
        }


@dataclass(frozen=True)
class DemoData:
    """Generated events (wire dicts, sorted by instant) and the incidents planted in them."""

    events: list[dict[str, Any]]
    incidents: list[Incident]


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------


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
    plan = _Plan(tenants, days, end, events_per_tenant_per_day, seed, incidents)
    events: list[dict[str, Any]] = []
    with _gc_paused():
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
    plan = _Plan(tenants, days, end, events_per_tenant_per_day, seed, incidents)
    return plan.stream()


def tenant_utc_offset(tenant: str) -> timedelta:
    """The fixed UTC offset the generator uses as `tenant`'s local time (no DST).

    Depends on the name only (not the seed), so tests can check diurnal and off-hours
    behaviour: northwind +01:00, contoso -05:00, globex +09:00; others hash to a zone.
    """
    return timedelta(minutes=_zone_for(tenant)[0])


def to_jsonl_bytes(events: Iterable[dict[str, Any]]) -> bytes:
    """Serialise events as JSON Lines (orjson, key order kept, one object per line)."""
    dumps = orjson.dumps
    return b"".join([dumps(event) + b"\n" for event in events])


def write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    """Write events to `path` as JSON Lines, streaming in batches; return how many."""
    dumps = orjson.dumps
    count = 0
    batch: list[bytes] = []
    with Path(path).open("wb") as fh:
        for event in events:
            batch.append(dumps(event))
            count += 1
            if len(batch) >= 8192:
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")
    return count


# --------------------------------------------------------------------------------------
# Formatting helpers (vectorised)
# --------------------------------------------------------------------------------------

_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36-character canonical UUID text.
_UUID_DIGIT_POS: Final = np.array([i for i in range(36) if i not in (8, 13, 18, 23)], dtype=np.intp)
_MS_SHIFTS: Final = np.array([40, 32, 24, 16, 8, 0], dtype=np.int64)


def _uuid7_strings(t_us: npt.NDArray[np.int64], rand: bytes) -> list[str]:
    """UUIDv7 texts: 48-bit ms time, version 7, variant 10, 74 bits from `rand` (10 B each)."""
    n = len(t_us)
    if n == 0:
        return []
    r = np.frombuffer(rand, dtype=np.uint8, count=10 * n).reshape(n, 10)
    raw = np.empty((n, 16), dtype=np.uint8)
    ms = t_us // 1000
    raw[:, :6] = ((ms[:, None] >> _MS_SHIFTS) & 0xFF).astype(np.uint8)
    raw[:, 6] = 0x70 | (r[:, 0] & 0x0F)
    raw[:, 7] = r[:, 1]
    raw[:, 8] = 0x80 | (r[:, 2] & 0x3F)
    raw[:, 9:] = r[:, 3:]
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_DIGIT_POS] = digits
    out: list[str] = text.view("S36").ravel().astype("U36").tolist()
    return out


def _time_strings(t_us: npt.NDArray[np.int64], offset_min: int, local: Any) -> list[str]:
    """RFC 3339 texts with microseconds: `Z`, or the local offset where `local` is true."""
    out: list[str] = np.datetime_as_string(
        t_us.astype("datetime64[us]"), unit="us", timezone="UTC"
    ).tolist()
    if offset_min:
        idx = np.flatnonzero(local)
        if len(idx):
            shifted = t_us[idx] + offset_min * _US_PER_MIN
            texts = np.datetime_as_string(shifted.astype("datetime64[us]"), unit="us").tolist()
            suffix = _offset_suffix(offset_min)
            for i, s in zip(idx.tolist(), texts, strict=True):
                out[i] = s + suffix
    return out


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many acyclic dicts (it otherwise costs ~60%).

    Events hold no reference cycles, so nothing is leaked; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _offset_suffix(offset_min: int) -> str:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _zone_for(tenant: str) -> tuple[int, str]:
    known = _DEFAULT_ZONES.get(tenant)
    if known is not None:
        return known
    return _OTHER_ZONES[_stable_hash("zone:" + tenant) % len(_OTHER_ZONES)]


def _us_of(day: date) -> int:
    return (day - _EPOCH).days * _US_PER_DAY


def _dt_of(t_us: int) -> datetime:
    return _EPOCH_DT + timedelta(microseconds=t_us)


# --------------------------------------------------------------------------------------
# Templates: what each action looks like
# --------------------------------------------------------------------------------------


class _Template(NamedTuple):
    action: str
    category: str
    source: str
    weight_on: float  # relative frequency in local working hours
    weight_off: float  # relative frequency at night and on weekends
    pool_on: str  # actor pool in working hours
    pool_off: str
    p_outcome: tuple[float, float, float]  # success, failure, unknown
    severity: tuple[str, str, str]  # by outcome


_TEMPLATES: Final[tuple[_Template, ...]] = (
    _Template("login", "authentication", "auth-service", 40, 40, "auth_on", "auth_off",
              (0.93, 0.065, 0.005), ("info", "low", "low")),
    _Template("logout", "authentication", "auth-service", 24, 22, "humans", "humans",
              (0.995, 0.002, 0.003), ("info", "low", "info")),
    _Template("mfa.challenge", "authentication", "auth-service", 18, 14, "humans", "humans",
              (0.95, 0.04, 0.01), ("info", "low", "low")),
    _Template("role.grant", "admin_action", "admin-console", 1.0, 0.0, "admins", "admins",
              (0.96, 0.04, 0.0), ("medium", "medium", "medium")),
    _Template("role.revoke", "admin_action", "admin-console", 0.7, 0.0, "admins", "admins",
              (0.97, 0.03, 0.0), ("low", "medium", "low")),
    _Template("user.create", "admin_action", "admin-console", 0.8, 0.5, "admins", "scim",
              (0.97, 0.03, 0.0), ("low", "low", "low")),
    _Template("user.delete", "admin_action", "admin-console", 0.4, 0.3, "admins", "scim",
              (0.97, 0.03, 0.0), ("medium", "medium", "medium")),
    _Template("key.create", "key_change", "kms", 0.3, 0.0, "custodians", "custodians",
              (0.98, 0.02, 0.0), ("medium", "high", "medium")),
    _Template("key.rotate", "key_change", "kms", 0.6, 1.2, "rotate_on", "rotator",
              (0.98, 0.015, 0.005), ("low", "medium", "low")),
    _Template("key.revoke", "key_change", "kms", 0.15, 0.0, "custodians", "custodians",
              (0.98, 0.02, 0.0), ("high", "high", "high")),
    _Template("key.export", "key_change", "kms", 0.08, 0.0, "custodians", "custodians",
              (0.97, 0.03, 0.0), ("high", "high", "high")),
    _Template("flag.update", "flag_change", "flags-service", 3.0, 1.0, "flaggers", "deploy",
              (0.97, 0.02, 0.01), ("low", "low", "low")),
    _Template("recovery.request", "account_recovery", "recovery-service", 1.0, 0.6,
              "recovery_on", "regulars", (0.9, 0.1, 0.0), ("low", "medium", "low")),
    _Template("recovery.complete", "account_recovery", "recovery-service", 0.6, 0.3,
              "recovery_on", "regulars", (0.85, 0.15, 0.0), ("medium", "medium", "medium")),
)  # fmt: skip
_TPL_INDEX: Final[dict[str, int]] = {t.action: i for i, t in enumerate(_TEMPLATES)}
_POOL_NAMES: Final[tuple[str, ...]] = tuple(
    sorted({t.pool_on for t in _TEMPLATES} | {t.pool_off for t in _TEMPLATES})
)
_POOL_ON: Final = np.array([_POOL_NAMES.index(t.pool_on) for t in _TEMPLATES], dtype=np.intp)
_POOL_OFF: Final = np.array([_POOL_NAMES.index(t.pool_off) for t in _TEMPLATES], dtype=np.intp)
_CUM_ON: Final = np.cumsum([t.weight_on for t in _TEMPLATES]) / sum(t.weight_on for t in _TEMPLATES)
_CUM_OFF: Final = np.cumsum([t.weight_off for t in _TEMPLATES]) / sum(
    t.weight_off for t in _TEMPLATES
)
_OUT_CUM: Final = np.cumsum([t.p_outcome for t in _TEMPLATES], axis=1)
_TPL_CATEGORY: Final = np.array([CATEGORIES.index(t.category) for t in _TEMPLATES])
_TPL_LOCAL_TIME: Final = np.array([t.source == "admin-console" for t in _TEMPLATES])
# When a category is missing from a tenant's first busy day, this template stands in.
_CATEGORY_STANDIN: Final[dict[int, int]] = {
    0: _TPL_INDEX["login"],
    1: _TPL_INDEX["role.grant"],
    2: _TPL_INDEX["key.rotate"],
    3: _TPL_INDEX["flag.update"],
    4: _TPL_INDEX["recovery.request"],
}

# target, details, severity override
_Built = tuple[dict[str, str] | None, dict[str, Any] | None, str | None]
_Builder = Callable[[int, int, float, int], _Built]


# --------------------------------------------------------------------------------------
# A tenant: its people, machines, resources and traffic
# --------------------------------------------------------------------------------------


class _Tenant:
    """Everything fixed about one tenant for a given seed, plus its per-day traffic."""

    def __init__(self, name: str, seed: int, window_start_us: int, days: int) -> None:
        self.name = name
        self.seed = seed
        self.hash = _stable_hash(name)
        self.offset_min, self.country = _zone_for(name)
        self.domain = name.replace("_", "-") + ".example"
        rng = np.random.default_rng([seed, self.hash, _STREAM_PROFILE])

        # People. Positions are random names, so slicing by position carries no bias.
        n_humans = int(rng.integers(20, 61))
        pairs = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), size=n_humans, replace=False)
        human_ids = [
            f"{_FIRST_NAMES[p // len(_LAST_NAMES)]}.{_LAST_NAMES[p % len(_LAST_NAMES)]}"
            f"@{self.domain}"
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
        desktop = rng.integers(0, len(_DESKTOP_UAS), n_humans).tolist()
        mobile = rng.integers(0, len(_MOBILE_UAS), n_humans).tolist()

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
            self.uas += [_DESKTOP_UAS[desktop[i]], _MOBILE_UAS[mobile[i]]]
        self.machine: dict[str, int] = {}
        for j, (mname, mtype, mua) in enumerate(_MACHINES):
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

        # Actor pools: (members, cumulative weights normalised to 1).
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
        self.pools = [pools[name] for name in _POOL_NAMES]
        self.home_share = np.where(self.is_human, 0.35, 0.0)

        # Resources.
        n_keys = int(rng.integers(5, len(_KEY_PURPOSES) + 1))
        keys = rng.choice(len(_KEY_PURPOSES), size=n_keys, replace=False).tolist()
        self.keys = [(f"kms://{name}/{_KEY_PURPOSES[k][0]}", _KEY_PURPOSES[k][1]) for k in keys]
        n_flags = int(rng.integers(40, 71))
        flags = rng.choice(len(_FLAG_AREAS) * len(_FLAG_FEATURES), size=n_flags, replace=False)
        self.flags = [
            f"{_FLAG_AREAS[f // len(_FLAG_FEATURES)]}.{_FLAG_FEATURES[f % len(_FLAG_FEATURES)]}"
            for f in flags.tolist()
        ]
        self.builders: list[_Builder] = [
            getattr(self, "_b_" + t.action.replace(".", "_")) for t in _TEMPLATES
        ]

        # Traffic shape over the window: per UTC minute, weight and whether it is off-hours.
        minutes = np.arange(days * 1440, dtype=np.int64)
        local_min = window_start_us // _US_PER_MIN + minutes + self.offset_min
        local_day = local_min // 1440
        local_mod = local_min % 1440
        weekend = (local_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)
        hour_curve = np.interp(local_mod / 60.0, np.arange(24) + 0.5, np.array(_HOURLY), period=24)
        weights = hour_curve * np.where(weekend, _WEEKEND_FACTOR, 1.0)
        local_hour = local_mod // 60
        off = weekend | (local_hour < _WORK_START_H) | (local_hour >= _WORK_END_H)
        self.minute_w = weights.reshape(days, 1440)
        self.minute_off = off.reshape(days, 1440)

    # -- traffic -------------------------------------------------------------------------

    def day_counts(self, total: int) -> list[int]:
        """Split the tenant's background events over the window's days by traffic weight."""
        rng = np.random.default_rng([self.seed, self.hash, _STREAM_DAYS])
        per_day = self.minute_w.sum(axis=1)
        counts: list[int] = rng.multinomial(total, per_day / per_day.sum()).tolist()
        return counts

    def traffic(
        self, day_index: int, day_us: int, n: int, ensure_categories: bool
    ) -> tuple[npt.NDArray[np.int64], list[dict[str, Any]]]:
        """`n` background events on one UTC day, sorted by time; vectorised draws."""
        rng = np.random.default_rng([self.seed, self.hash, _STREAM_TRAFFIC, day_us // _US_PER_DAY])
        w = self.minute_w[day_index]
        counts = rng.multinomial(n, w / w.sum())
        minute = np.repeat(np.arange(1440, dtype=np.int64), counts)
        t_us = day_us + minute * _US_PER_MIN + rng.integers(0, _US_PER_MIN, n, dtype=np.int64)
        order = np.argsort(t_us, kind="stable")
        t_us = t_us[order]
        off = self.minute_off[day_index][minute[order]]
        u = rng.random((n, 6))
        k = rng.integers(0, 2**31, n, dtype=np.int64)
        uuid_rand = rng.bytes(10 * n)

        tpl = np.where(
            off,
            np.searchsorted(_CUM_OFF, u[:, 0], side="right"),
            np.searchsorted(_CUM_ON, u[:, 0], side="right"),
        )
        np.minimum(tpl, len(_TEMPLATES) - 1, out=tpl)
        if ensure_categories:
            self._ensure_categories(tpl, off, rng)
        cum = _OUT_CUM[tpl]
        outcome = (u[:, 1] >= cum[:, 0]).astype(np.intp) + (u[:, 1] >= cum[:, 1])
        np.minimum(outcome, 2, out=outcome)
        pool = np.where(off, _POOL_OFF[tpl], _POOL_ON[tpl])
        actor = np.zeros(n, dtype=np.intp)
        for p in np.unique(pool).tolist():
            mask = pool == p
            members, cw = self.pools[p]
            pick = np.searchsorted(cw, u[mask, 2], side="right")
            actor[mask] = members[np.minimum(pick, len(members) - 1)]
        ip_idx = 2 * actor + (u[:, 3] < self.home_share[actor])
        ua_idx = 2 * actor + ((u[:, 4] < 0.25) & self.is_human[actor])

        ids = _uuid7_strings(t_us, uuid_rand)
        times = _time_strings(t_us, self.offset_min, _TPL_LOCAL_TIME[tpl])
        ips = self.ips
        uas = self.uas
        actor_ids = self.actor_ids
        actor_types = self.actor_types
        builders = self.builders
        name = self.name
        templates = _TEMPLATES
        outcomes = _OUTCOMES
        events: list[dict[str, Any]] = []
        append = events.append
        for eid, ts, tp, o, a, ipi, uai, uu, kk in zip(
            ids,
            times,
            tpl.tolist(),
            outcome.tolist(),
            actor.tolist(),
            ip_idx.tolist(),
            ua_idx.tolist(),
            u[:, 5].tolist(),
            k.tolist(),
            strict=True,
        ):
            t = templates[tp]
            target, details, sev = builders[tp](o, a, uu, kk)
            event: dict[str, Any] = {
                "tenant": name,
                "id": eid,
                "time": ts,
                "category": t.category,
                "action": t.action,
                "outcome": outcomes[o],
                "severity": sev or t.severity[o],
                "actor": {
                    "id": actor_ids[a],
                    "type": actor_types[a],
                    "ip": ips[ipi],
                    "user_agent": uas[uai],
                },
            }
            if target is not None:
                event["target"] = target
            event["source"] = t.source
            if details is not None:
                event["details"] = details
            append(event)
        return t_us, events

    def _ensure_categories(
        self, tpl: npt.NDArray[np.intp], off: npt.NDArray[np.bool_], rng: np.random.Generator
    ) -> None:
        """Swap in one stand-in event per category missing from this day (working hours first)."""
        present = set(_TPL_CATEGORY[tpl].tolist())
        missing = [c for c in range(len(CATEGORIES)) if c not in present]
        if not missing or len(tpl) < len(CATEGORIES):
            return
        work = np.flatnonzero(~off)
        candidates = work if len(work) >= len(missing) else np.arange(len(tpl))
        # Never overwrite the last event of a category that is present only once.
        cats = _TPL_CATEGORY[tpl[candidates]]
        singles = {c for c in present if int((_TPL_CATEGORY[tpl] == c).sum()) == 1}
        keep = ~np.isin(cats, list(singles)) if singles else np.ones(len(candidates), bool)
        usable = candidates[keep] if int(keep.sum()) >= len(missing) else candidates
        spots = rng.choice(usable, size=len(missing), replace=False)
        for spot, cat in zip(spots.tolist(), missing, strict=True):
            tpl[spot] = _CATEGORY_STANDIN[cat]

    # -- per-action targets and details --------------------------------------------------

    def _human(self, k: int) -> dict[str, str]:
        return {"type": "user", "id": self.actor_ids[k % self.n_humans]}

    def _contractor(self, k: int) -> dict[str, str]:
        return {"type": "user", "id": f"contractor-{10 + k % 90:02d}@{self.domain}"}

    def _key(self, k: int) -> tuple[dict[str, str], str]:
        key_id, algorithm = self.keys[k % len(self.keys)]
        return {"type": "key", "id": key_id}, algorithm

    def _b_login(self, o: int, a: int, u: float, k: int) -> _Built:
        if not self.is_human_l[a]:
            details: dict[str, Any] = {"method": "api_key", "mfa": False}
            if o == 1:
                details["reason"] = "expired_token"
            return {"type": "application", "id": "api"}, details, None
        if o == 0:
            method = "sso" if u < 0.35 else "passkey" if u < 0.5 else "password"
            mfa = method == "passkey" or (k >> 4) % 10 < 8
            return (
                {"type": "application", "id": _APPS[k % len(_APPS)]},
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
                {"type": "application", "id": _APPS[k % len(_APPS)]},
                {"reason": reason, "mfa": False, "geo": {"country": self.country}},
                None,
            )
        return (
            {"type": "application", "id": _APPS[k % len(_APPS)]},
            {"reason": "upstream_timeout", "geo": {"country": self.country}},
            None,
        )

    def _b_logout(self, o: int, a: int, u: float, k: int) -> _Built:
        reason = "idle_timeout" if u < 0.3 else "user"
        return None, {"reason": reason, "session_seconds": 30 + k % 28_800}, None

    def _b_mfa_challenge(self, o: int, a: int, u: float, k: int) -> _Built:
        method = "push" if u < 0.45 else "totp" if u < 0.8 else "webauthn" if u < 0.95 else "sms"
        details: dict[str, Any] = {"method": method}
        if o == 1:
            details["reason"] = ("wrong_code", "denied", "timeout")[(k >> 8) % 3]
        return {"type": "application", "id": _APPS[k % len(_APPS)]}, details, None

    def _b_role_grant(self, o: int, a: int, u: float, k: int) -> _Built:
        details: dict[str, Any] = {"role": _ROLES[(k >> 8) % len(_ROLES)]}
        if o == 1:
            details["reason"] = "insufficient_privilege"
        return self._human(k), details, None

    _b_role_revoke = _b_role_grant

    def _b_user_create(self, o: int, a: int, u: float, k: int) -> _Built:
        via = "scim" if self.actor_types[a] == "service" else "invite"
        details: dict[str, Any] = {"role": "member", "via": via}
        if o == 1:
            details["reason"] = "already_exists"
        return self._contractor(k), details, None

    def _b_user_delete(self, o: int, a: int, u: float, k: int) -> _Built:
        return self._contractor(k), {"reason": "offboarding" if u < 0.6 else "contract_ended"}, None

    def _b_key_create(self, o: int, a: int, u: float, k: int) -> _Built:
        target, algorithm = self._key(k)
        return target, {"algorithm": algorithm, "version": 1 + (k >> 8) % 12}, None

    def _b_key_rotate(self, o: int, a: int, u: float, k: int) -> _Built:
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

    def _b_key_revoke(self, o: int, a: int, u: float, k: int) -> _Built:
        target, _ = self._key(k)
        return target, {"reason": "superseded" if u < 0.8 else "decommissioned"}, None

    def _b_key_export(self, o: int, a: int, u: float, k: int) -> _Built:
        target, _ = self._key(k)
        details = {
            "format": "jwk" if u < 0.5 else "pkcs8",
            "wrapped": True,
            "destination": "backup-vault",
        }
        return target, details, None

    def _b_flag_update(self, o: int, a: int, u: float, k: int) -> _Built:
        env = "production" if u < 0.45 else "staging"
        previous = bool((k >> 3) & 1)
        target = {"type": "flag", "id": self.flags[k % len(self.flags)]}
        details = {"environment": env, "previous": previous, "value": not previous}
        return target, details, "medium" if env == "production" and o == 0 else None

    def _recovery_target(self, a: int, k: int) -> tuple[dict[str, str], str]:
        if a == self.helpdesk:
            return self._human(k), "helpdesk"
        return {"type": "user", "id": self.actor_ids[a]}, ("email", "email", "sms")[k % 3]

    def _b_recovery_request(self, o: int, a: int, u: float, k: int) -> _Built:
        target, channel = self._recovery_target(a, k)
        details: dict[str, Any] = {"channel": channel}
        if o == 1:
            details["reason"] = "rate_limited" if u < 0.6 else "unknown_account"
        return target, details, None

    def _b_recovery_complete(self, o: int, a: int, u: float, k: int) -> _Built:
        target, channel = self._recovery_target(a, k)
        details: dict[str, Any] = {"channel": channel, "mfa_reset": u < 0.4}
        if o == 1:
            details["reason"] = "token_expired" if u < 0.7 else "invalid_token"
        return target, details, None


# --------------------------------------------------------------------------------------
# Planted incidents
# --------------------------------------------------------------------------------------


class _Planter:
    """Builds one incident's events with the same wire shape as background traffic."""

    def __init__(self, tenant: _Tenant, kind: str) -> None:
        self.tenant = tenant
        self.kind = kind
        self.rng = np.random.default_rng(
            [tenant.seed, tenant.hash, _STREAM_INCIDENT, INCIDENT_KINDS.index(kind)]
        )
        self.events: list[tuple[int, dict[str, Any]]] = []

    def attacker(self) -> tuple[str, str, str]:
        """An attacker address (203.0.113.0/24, unused by background traffic), UA, country."""
        r = self.rng
        ip = f"203.0.113.{int(r.integers(2, 255))}"
        ua = _ATTACKER_UAS[int(r.integers(0, len(_ATTACKER_UAS)))]
        return ip, ua, _ATTACKER_COUNTRIES[int(r.integers(0, len(_ATTACKER_COUNTRIES)))]

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
        tp = _TPL_INDEX[action]
        t = _TEMPLATES[tp]
        o = _OUTCOMES.index(outcome)
        arr = np.array([t_us], dtype=np.int64)
        actor_id = self.tenant.actor_ids[actor] if isinstance(actor, int) else actor
        event: dict[str, Any] = {
            "tenant": self.tenant.name,
            "id": _uuid7_strings(arr, self.rng.bytes(10))[0],
            "time": _time_strings(arr, self.tenant.offset_min, np.array([_TPL_LOCAL_TIME[tp]]))[0],
            "category": t.category,
            "action": action,
            "outcome": outcome,
            "severity": severity or t.severity[o],
            "actor": {"id": actor_id, "type": actor_type, "ip": ip, "user_agent": ua},
        }
        if target is not None:
            event["target"] = target
        event["source"] = t.source
        if details is not None:
            event["details"] = details
        self.events.append((t_us, event))

    def incident(self, actor_id: str, ip: str | None, description: str) -> Incident:
        self.events.sort(key=lambda pair: pair[0])
        times = [t for t, _ in self.events]
        return Incident(
            kind=self.kind,
            tenant=self.tenant.name,
            actor_id=actor_id,
            ip=ip,
            start=_dt_of(times[0]),
            end=_dt_of(times[-1]),
            event_ids=tuple(e["id"] for _, e in self.events),
            description=description,
        )

    def start_between(self, lo_us: int, hi_us: int) -> int:
        return int(self.rng.integers(lo_us, max(hi_us, lo_us + 1)))

    def offsets(self, n: int, span_us: int) -> list[int]:
        """`n` sorted offsets in [0, span_us], the first at 0 and the last at span_us."""
        inner = np.sort(self.rng.integers(0, span_us, max(n - 2, 0))).tolist()
        return [0, *inner, span_us][:n] if n > 1 else [0]


def _plant_brute_force(p: _Planter, ws: int, we: int) -> Incident:
    t = p.tenant
    r = p.rng
    victim = p.pick(t.regulars)
    ip, ua, country = p.attacker()
    n_fail = int(r.integers(24, 41))
    span = int(r.integers(300, 481)) * 1_000_000
    gap = int(r.integers(20, 91)) * 1_000_000
    start = p.start_between(ws + 3_600_000_000, we - 2 * 3_600_000_000)
    for off in p.offsets(n_fail, span):
        p.add(
            start + off,
            "login",
            "failure",
            victim,
            "user",
            ip,
            ua,
            target={"type": "application", "id": "sso-portal"},
            details={"reason": "bad_password", "mfa": False, "geo": {"country": country}},
        )
    p.add(
        start + span + gap,
        "login",
        "success",
        victim,
        "user",
        ip,
        ua,
        target={"type": "application", "id": "sso-portal"},
        details={"method": "password", "mfa": False, "geo": {"country": country}},
    )
    who = t.actor_ids[victim]
    return p.incident(
        who,
        ip,
        f"{n_fail} failed logins for {who} from {ip} within {span // 1_000_000} s, "
        f"then a successful login (no MFA) from the same IP {gap // 1_000_000} s later",
    )


def _plant_password_spray(p: _Planter, ws: int, we: int) -> Incident:
    t = p.tenant
    r = p.rng
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
        p.add(
            start + off,
            "login",
            "failure",
            who,
            kind,
            ip,
            ua,
            target={"type": "application", "id": "sso-portal"},
            details={"reason": reason, "mfa": False, "geo": {"country": country}},
        )
    return p.incident(
        ip,
        ip,
        f"{len(attempts)} failed logins against {len(accounts)} distinct accounts "
        f"({n_real} real, {len(fakes)} non-existent) from {ip} within {span // 60_000_000} min",
    )


def _plant_recovery_spree(p: _Planter, ws: int, we: int) -> Incident:
    t = p.tenant
    r = p.rng
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


def _plant_mass_flag_flips(p: _Planter, ws: int, we: int) -> Incident:
    t = p.tenant
    r = p.rng
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


def _plant_off_hours_key_export(p: _Planter, ws: int, we: int) -> Incident:
    t = p.tenant
    r = p.rng
    granter = p.pick(t.general_admins or t.admins[:1])
    actor = p.pick(t.regulars[len(t.devs) :] or t.regulars)
    ip, ua, country = p.attacker()
    off_us = t.offset_min * _US_PER_MIN
    # Candidate nights: 03:00 local on each local date, weekends first, that fit the window.
    first_local_day = (ws + off_us) // _US_PER_DAY - 1
    last_local_day = (we + off_us) // _US_PER_DAY + 1
    fits: list[tuple[bool, int]] = []
    for day in range(first_local_day, last_local_day + 1):
        at = day * _US_PER_DAY + 3 * 3_600_000_000 - off_us
        if at - 3_600_000_000 >= ws and at + 3_600_000_000 <= we:
            fits.append(((day + 3) % 7 >= 5, at))
    weekend = [at for is_weekend, at in fits if is_weekend]
    choices = weekend or [at for _, at in fits]
    # A window too short to hold 03:00 local with margin: stay inside it.
    base = choices[int(r.integers(0, len(choices)))] if choices else ws + (we - ws) // 2

    def seconds(lo: int, hi: int) -> int:
        """A random duration in [lo, hi) seconds, with microseconds."""
        return int(r.integers(lo * 1_000_000, hi * 1_000_000))

    base += seconds(0, 15 * 60)
    t_grant_login = base - seconds(32 * 60, 40 * 60)
    t_grant = t_grant_login + seconds(60, 180)
    t_login = base - seconds(5 * 60, 12 * 60)
    t_export = base + seconds(90, 360)
    key_id = f"kms://{t.name}/export-tmp-{int(r.integers(0, 16**4)):04x}"
    geo = {"country": country}
    p.add(
        t_grant_login,
        "login",
        "success",
        granter,
        "admin",
        ip,
        ua,
        target={"type": "application", "id": "sso-portal"},
        details={"method": "password", "mfa": True, "geo": dict(geo)},
    )
    p.add(
        t_grant,
        "role.grant",
        "success",
        granter,
        "admin",
        ip,
        ua,
        target={"type": "user", "id": t.actor_ids[actor]},
        details={"role": "kms-admin"},
    )
    p.add(
        t_login,
        "login",
        "success",
        actor,
        "admin",
        ip,
        ua,
        target={"type": "application", "id": "sso-portal"},
        details={"method": "password", "mfa": True, "geo": dict(geo)},
    )
    p.add(
        base,
        "key.create",
        "success",
        actor,
        "admin",
        ip,
        ua,
        target={"type": "key", "id": key_id},
        details={"algorithm": "rsa-3072", "version": 1},
    )
    p.add(
        t_export,
        "key.export",
        "success",
        actor,
        "admin",
        ip,
        ua,
        target={"type": "key", "id": key_id},
        details={"format": "pkcs8", "wrapped": False, "destination": "external"},
        severity="critical",
    )
    local = _dt_of(base + off_us)
    who = t.actor_ids[actor]
    return p.incident(
        who,
        ip,
        f"{t.actor_ids[granter]} granted kms-admin to {who} (never seen doing key actions), "
        f"who created and exported key {key_id} unwrapped from {ip} at "
        f"{local:%A %H:%M} local ({_offset_suffix(t.offset_min)})",
    )


_PLANTERS: Final[dict[str, Callable[[_Planter, int, int], Incident]]] = {
    "brute_force": _plant_brute_force,
    "password_spray": _plant_password_spray,
    "recovery_spree": _plant_recovery_spree,
    "mass_flag_flips": _plant_mass_flag_flips,
    "off_hours_key_export": _plant_off_hours_key_export,
}


# --------------------------------------------------------------------------------------
# The plan: validated arguments, tenants, incidents, and the day-by-day stream
# --------------------------------------------------------------------------------------


class _Plan:
    def __init__(
        self,
        tenants: Sequence[str],
        days: int,
        end: date,
        events_per_tenant_per_day: int,
        seed: int,
        incidents: bool,
    ) -> None:
        if isinstance(tenants, str):
            raise ValueError("tenants must be a sequence of names, not one string")
        names = list(tenants)
        if not names:
            raise ValueError("at least one tenant is required")
        for name in names:
            if not isinstance(name, str) or not _TENANT_RE.match(name):
                raise ValueError(f"invalid tenant name {name!r}: must match {_TENANT_RE.pattern}")
        if len(set(names)) != len(names):
            raise ValueError("tenant names must be unique")
        if days < 1:
            raise ValueError("days must be at least 1")
        if events_per_tenant_per_day < 0:
            raise ValueError("events_per_tenant_per_day must not be negative")
        if seed < 0:
            raise ValueError("seed must not be negative")
        if isinstance(end, datetime):  # a datetime is a date too; use its calendar day
            end = end.date()
        self.days = days
        self.window_start = _us_of(end) - (days - 1) * _US_PER_DAY
        self.window_end = _us_of(end) + _US_PER_DAY
        self.tenants = [_Tenant(n, seed, self.window_start, days) for n in names]
        total = days * events_per_tenant_per_day
        self.counts = [t.day_counts(total) for t in self.tenants]
        self.incidents: list[Incident] = []
        self.planted: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        if incidents:
            for kind in INCIDENT_KINDS:
                tenant = self.tenants[_INCIDENT_SLOT[kind] % len(self.tenants)]
                planter = _Planter(tenant, kind)
                self.incidents.append(_PLANTERS[kind](planter, self.window_start, self.window_end))
                for t_us, event in planter.events:
                    day = (t_us - self.window_start) // _US_PER_DAY
                    self.planted.setdefault(day, []).append((t_us, event))
            self.incidents.sort(key=lambda inc: (inc.start, inc.kind))

    def stream(self) -> Iterator[dict[str, Any]]:
        for batch in self.day_batches():
            yield from batch

    def day_batches(self) -> Iterator[list[dict[str, Any]]]:
        """One time-sorted list of events per UTC day of the window (all tenants)."""
        first_busy = [next((d for d, c in enumerate(cs) if c >= 5), -1) for cs in self.counts]
        for day in range(self.days):
            day_us = self.window_start + day * _US_PER_DAY
            times: list[npt.NDArray[np.int64]] = []
            events: list[dict[str, Any]] = []
            with _gc_paused():
                for ti, tenant in enumerate(self.tenants):
                    n = self.counts[ti][day]
                    t_us, evs = tenant.traffic(day, day_us, n, first_busy[ti] == day)
                    times.append(t_us)
                    events += evs
            extra = self.planted.get(day, [])
            if extra:
                times.append(np.array([t for t, _ in extra], dtype=np.int64))
                events += [e for _, e in extra]
            if not events:
                continue
            order = np.argsort(np.concatenate(times), kind="stable").tolist()
            yield [events[i] for i in order]
