"""The demo's vocabulary, records, templates and formatting: what traffic and attacks share."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

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
INCIDENT_SLOT: Final[dict[str, int]] = {
    "brute_force": 0,
    "password_spray": 1,
    "recovery_spree": 2,
    "mass_flag_flips": 1,
    "off_hours_key_export": 2,
}

OUTCOMES: Final[tuple[str, str, str]] = ("success", "failure", "unknown")
US_PER_MIN: Final = 60_000_000
US_PER_DAY: Final = 86_400_000_000
EPOCH: Final = date(1970, 1, 1)
EPOCH_DT: Final = datetime(1970, 1, 1, tzinfo=UTC)

# RNG streams per tenant: entropy is [seed, tenant hash, stream, ...].
STREAM_PROFILE: Final = 0
STREAM_DAYS: Final = 1
STREAM_TRAFFIC: Final = 2
STREAM_INCIDENT: Final = 3

# -- vocabulary ---------------------------------------------------------------------------

FIRST_NAMES: Final = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "wendy", "yara", "zoe", "amir", "bianca", "chen", "dmitri", "elena", "farah", "goran",
    "hana", "igor", "jonas", "kira", "lars", "maya", "nikos", "oskar", "priya", "quinn",
    "rosa", "sanjay", "tomas", "uma", "vera", "wei", "ximena", "yusuf", "zainab", "aiko",
    "bruno", "chloe", "diego", "emeka", "fatima", "gustav", "hiro", "ines", "jamal",
    "keiko", "lucia", "marek", "noor", "pablo", "sofia",
)  # fmt: skip
LAST_NAMES: Final = (
    "smith", "jones", "garcia", "mueller", "tanaka", "kowalski", "rossi", "novak", "silva",
    "kim", "nguyen", "okafor", "haddad", "larsen", "petrov", "dubois", "schmidt", "ito",
    "fischer", "martin", "lopez", "weber", "suzuki", "wagner", "costa", "ivanova", "berg",
    "sato", "hoffmann", "moreau", "patel", "khan", "ali", "chen", "wong", "brown", "taylor",
    "wilson", "evans", "walker", "young", "hall", "wright", "green", "baker", "adams",
    "nelson", "hill", "campbell", "mitchell", "roberts", "carter", "phillips", "turner",
    "torres", "parker", "collins", "edwards", "stewart", "morris", "murphy", "cook",
    "rogers", "morgan",
)  # fmt: skip
DESKTOP_UAS: Final = (
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
MOBILE_UAS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
)
ATTACKER_UAS: Final = (
    "python-requests/2.32.3",
    "curl/8.10.1",
    "Go-http-client/1.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
)
ATTACKER_COUNTRIES: Final = ("NL", "RO", "BR", "VN", "RU", "US", "SG")
# (name, actor type, user agent) of each tenant's non-human actors, in actor-table order.
MACHINES: Final = (
    ("deploy-bot", "service", "deploy-bot/3.4.1"),
    ("scim-sync", "service", "scim-sync/2.0 (+directory)"),
    ("ci-runner", "service", "ci-runner/17.5.2"),
    ("kms-rotator", "system", "kms-rotator/1.9.0"),
)
APPS: Final = ("sso-portal", "mail", "vpn", "crm", "wiki", "git")
ROLES: Final = ("viewer", "member", "billing-admin", "security-auditor", "org-admin", "support")
KEY_PURPOSES: Final = (
    ("payments-signing", "ecdsa-p256"),
    ("backup-encryption", "aes-256-gcm"),
    ("token-signing", "ed25519"),
    ("db-encryption", "aes-256-gcm"),
    ("webhook-signing", "ed25519"),
    ("saml-signing", "rsa-3072"),
    ("audit-signing", "ed25519"),
    ("file-encryption", "aes-256-gcm"),
)
FLAG_AREAS: Final = (
    "checkout", "billing", "search", "onboarding", "reports", "inbox", "export", "sso",
    "dashboard", "mobile", "api", "notifications", "pricing", "uploads", "audit", "profile",
)  # fmt: skip
FLAG_FEATURES: Final = (
    "v2", "new-ui", "beta", "fast-path", "dark-launch", "kill-switch", "rate-limit",
    "cache", "async", "ab-test",
)  # fmt: skip
# Known zones for the default tenants (fixed offsets in November, no DST handling).
DEFAULT_ZONES: Final[dict[str, tuple[int, str]]] = {
    "northwind": (60, "DE"),
    "contoso": (-300, "US"),
    "globex": (540, "JP"),
}
OTHER_ZONES: Final[tuple[tuple[int, str], ...]] = (
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
HOURLY: Final = (
    0.05, 0.04, 0.03, 0.03, 0.04, 0.07, 0.15, 0.40, 0.85, 1.00, 1.00, 0.95,
    0.70, 0.90, 1.00, 0.95, 0.85, 0.60, 0.38, 0.25, 0.17, 0.12, 0.09, 0.06,
)  # fmt: skip
WEEKEND_FACTOR: Final = 0.22
WORK_START_H: Final = 7
WORK_END_H: Final = 20


# -- public records ----------------------------------------------------------------------


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


# -- formatting helpers (vectorised) -------------------------------------------------------

HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36-character canonical UUID text.
UUID_DIGIT_POS: Final = np.array([i for i in range(36) if i not in (8, 13, 18, 23)], dtype=np.intp)
MS_SHIFTS: Final = np.array([40, 32, 24, 16, 8, 0], dtype=np.int64)


def uuid7_strings(t_us: npt.NDArray[np.int64], rand: bytes) -> list[str]:
    """UUIDv7 texts: 48-bit ms time, version 7, variant 10, 74 bits from `rand` (10 B each)."""
    n = len(t_us)
    if n == 0:
        return []
    r = np.frombuffer(rand, dtype=np.uint8, count=10 * n).reshape(n, 10)
    raw = np.empty((n, 16), dtype=np.uint8)
    ms = t_us // 1000
    raw[:, :6] = ((ms[:, None] >> MS_SHIFTS) & 0xFF).astype(np.uint8)
    raw[:, 6] = 0x70 | (r[:, 0] & 0x0F)
    raw[:, 7] = r[:, 1]
    raw[:, 8] = 0x80 | (r[:, 2] & 0x3F)
    raw[:, 9:] = r[:, 3:]
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = HEX[raw >> 4]
    digits[:, 1::2] = HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, UUID_DIGIT_POS] = digits
    out: list[str] = text.view("S36").ravel().astype("U36").tolist()
    return out


def time_strings(t_us: npt.NDArray[np.int64], offset_min: int, local: Any) -> list[str]:
    """RFC 3339 texts with microseconds: `Z`, or the local offset where `local` is true."""
    out: list[str] = np.datetime_as_string(
        t_us.astype("datetime64[us]"), unit="us", timezone="UTC"
    ).tolist()
    if offset_min:
        idx = np.flatnonzero(local)
        if len(idx):
            shifted = t_us[idx] + offset_min * US_PER_MIN
            texts = np.datetime_as_string(shifted.astype("datetime64[us]"), unit="us").tolist()
            suffix = offset_suffix(offset_min)
            for i, s in zip(idx.tolist(), texts, strict=True):
                out[i] = s + suffix
    return out


def offset_suffix(offset_min: int) -> str:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def zone_for(tenant: str) -> tuple[int, str]:
    known = DEFAULT_ZONES.get(tenant)
    if known is not None:
        return known
    return OTHER_ZONES[stable_hash("zone:" + tenant) % len(OTHER_ZONES)]


def us_of(day: date) -> int:
    return (day - EPOCH).days * US_PER_DAY


def dt_of(t_us: int) -> datetime:
    return EPOCH_DT + timedelta(microseconds=t_us)


# -- templates: what each action looks like -----------------------------------------------


class Template(NamedTuple):
    action: str
    category: str
    source: str
    weight_on: float  # relative frequency in local working hours
    weight_off: float  # relative frequency at night and on weekends
    pool_on: str  # actor pool in working hours
    pool_off: str
    p_outcome: tuple[float, float, float]  # success, failure, unknown
    severity: tuple[str, str, str]  # by outcome


TEMPLATES: Final[tuple[Template, ...]] = (
    Template("login", "authentication", "auth-service", 40, 40, "auth_on", "auth_off",
              (0.93, 0.065, 0.005), ("info", "low", "low")),
    Template("logout", "authentication", "auth-service", 24, 22, "humans", "humans",
              (0.995, 0.002, 0.003), ("info", "low", "info")),
    Template("mfa.challenge", "authentication", "auth-service", 18, 14, "humans", "humans",
              (0.95, 0.04, 0.01), ("info", "low", "low")),
    Template("role.grant", "admin_action", "admin-console", 1.0, 0.0, "admins", "admins",
              (0.96, 0.04, 0.0), ("medium", "medium", "medium")),
    Template("role.revoke", "admin_action", "admin-console", 0.7, 0.0, "admins", "admins",
              (0.97, 0.03, 0.0), ("low", "medium", "low")),
    Template("user.create", "admin_action", "admin-console", 0.8, 0.5, "admins", "scim",
              (0.97, 0.03, 0.0), ("low", "low", "low")),
    Template("user.delete", "admin_action", "admin-console", 0.4, 0.3, "admins", "scim",
              (0.97, 0.03, 0.0), ("medium", "medium", "medium")),
    Template("key.create", "key_change", "kms", 0.3, 0.0, "custodians", "custodians",
              (0.98, 0.02, 0.0), ("medium", "high", "medium")),
    Template("key.rotate", "key_change", "kms", 0.6, 1.2, "rotate_on", "rotator",
              (0.98, 0.015, 0.005), ("low", "medium", "low")),
    Template("key.revoke", "key_change", "kms", 0.15, 0.0, "custodians", "custodians",
              (0.98, 0.02, 0.0), ("high", "high", "high")),
    Template("key.export", "key_change", "kms", 0.08, 0.0, "custodians", "custodians",
              (0.97, 0.03, 0.0), ("high", "high", "high")),
    Template("flag.update", "flag_change", "flags-service", 3.0, 1.0, "flaggers", "deploy",
              (0.97, 0.02, 0.01), ("low", "low", "low")),
    Template("recovery.request", "account_recovery", "recovery-service", 1.0, 0.6,
              "recovery_on", "regulars", (0.9, 0.1, 0.0), ("low", "medium", "low")),
    Template("recovery.complete", "account_recovery", "recovery-service", 0.6, 0.3,
              "recovery_on", "regulars", (0.85, 0.15, 0.0), ("medium", "medium", "medium")),
)  # fmt: skip
TPL_INDEX: Final[dict[str, int]] = {t.action: i for i, t in enumerate(TEMPLATES)}
POOL_NAMES: Final[tuple[str, ...]] = tuple(
    sorted({t.pool_on for t in TEMPLATES} | {t.pool_off for t in TEMPLATES})
)
POOL_ON: Final = np.array([POOL_NAMES.index(t.pool_on) for t in TEMPLATES], dtype=np.intp)
POOL_OFF: Final = np.array([POOL_NAMES.index(t.pool_off) for t in TEMPLATES], dtype=np.intp)
CUM_ON: Final = np.cumsum([t.weight_on for t in TEMPLATES]) / sum(t.weight_on for t in TEMPLATES)
CUM_OFF: Final = np.cumsum([t.weight_off for t in TEMPLATES]) / sum(t.weight_off for t in TEMPLATES)
OUT_CUM: Final = np.cumsum([t.p_outcome for t in TEMPLATES], axis=1)
TPL_CATEGORY: Final = np.array([CATEGORIES.index(t.category) for t in TEMPLATES])
TPL_LOCAL_TIME: Final = np.array([t.source == "admin-console" for t in TEMPLATES])
# When a category is missing from a tenant's first busy day, this template stands in.
CATEGORY_STANDIN: Final[dict[int, int]] = {
    0: TPL_INDEX["login"],
    1: TPL_INDEX["role.grant"],
    2: TPL_INDEX["key.rotate"],
    3: TPL_INDEX["flag.update"],
    4: TPL_INDEX["recovery.request"],
}

# target, details, severity override
Built = tuple[dict[str, str] | None, dict[str, Any] | None, str | None]
Builder = Callable[[int, int, float, int], Built]


def wire_event(
    tenant: str,
    event_id: str,
    time: str,
    template: Template,
    outcome: int,
    actor: dict[str, str],
    built: Built,
) -> dict[str, Any]:
    """One event as the wire carries it, in the key order every demo event has."""
    target, details, severity = built
    event: dict[str, Any] = {
        "tenant": tenant,
        "id": event_id,
        "time": time,
        "category": template.category,
        "action": template.action,
        "outcome": OUTCOMES[outcome],
        "severity": severity or template.severity[outcome],
        "actor": actor,
    }
    if target is not None:
        event["target"] = target
    event["source"] = template.source
    if details is not None:
        event["details"] = details
    return event
