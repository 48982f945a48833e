"""Retention and legal hold: the only path that removes events, and it leaves a signed trail.

Policy (days per tenant, with presets) and holds live in the lake (`_auditlake/
retention.json`), so they travel with the data. Every change and every removal is also an
`admin_action` event in the reserved tenant (`retention.set`, `hold.set`, `hold.clear`,
`retention.apply`), signed and sealed like any event; `retention.apply` names the tenant,
the removed dates and the exact `seq` ranges.

Removal takes whole expired (tenant, date) partitions only, never under a hold, never
unsealed events. The Merkle log keeps the leaf hashes of removed events (in the hash
tiles), so every checkpoint and every later proof still verifies, and `verify` counts a
seq range named by a signed `retention.apply` record as lawfully removed rather than
missing. A removal without such a record is still a `missing` finding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import orjson
import pyarrow.compute as pc

from lake.contract import READ_AUDIT_TENANT, StorageError, UsageError, validate
from lake.log import NoteSigner
from lake.secrets import LOCAL_OPERATOR, AccessDenied, Principal
from lake.storage import (
    APPEND_ONLY,
    Hold,
    Lake,
    TenantRetention,
    check_tenant,
    load_policy,
    save_policy,
)
from lake.write._append import append

DEFAULT_DAYS: Final = 2557  # 7 years
PRESETS: Final = {
    "sox": (2557, "SOX: 7 years"),
    "hipaa": (2190, "HIPAA: 6 years"),
    "pci-dss": (365, "PCI DSS 10.5.1: 12 months, the last 3 immediately available"),
}


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def record_action(
    lake: Lake,
    signer: NoteSigner,
    who: Principal,
    action: str,
    tenant: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Sign the action into the reserved tenant's log (before it takes effect)."""
    event = {
        "tenant": READ_AUDIT_TENANT,
        "time": now.isoformat(),
        "category": "admin_action",
        "action": action,
        "outcome": "success",
        "severity": "medium" if action == "retention.apply" else "low",
        "actor": {"id": who.name, "type": "admin" if who.operator else "user"},
        "target": {"type": "tenant", "id": tenant},
        "source": "auditlake-retention",
        "details": {"tenant": tenant, **details},
    }
    namespace = hashlib.sha256(orjson.dumps(event) + os.urandom(16)).digest()
    result = validate([event], namespace=namespace, reserved_ok=True)
    if result.rejected:
        raise StorageError(f"retention record rejected: {result.rejected[0].issues[0]}")
    append(lake, result.table, signer, dedupe=False)


def set_policy(
    lake: Lake,
    signer: NoteSigner,
    who: Principal,
    tenant: str,
    *,
    days: int | None = None,
    preset: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Set a tenant's retention (days, or a preset); recorded as `retention.set`."""
    check_tenant(tenant)
    if (days is None) == (preset is None):
        raise UsageError("give either --days or --preset")
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
        days = PRESETS[preset][0]
    assert days is not None
    if days < 1:
        raise UsageError("retention must be at least 1 day")
    at = _now(now)
    entry = TenantRetention(days, preset, who.name, at.isoformat())
    record_action(lake, signer, who, "retention.set", tenant, {"days": days, "preset": preset}, at)
    policy = load_policy(lake)
    policy.tenants[tenant] = entry
    save_policy(lake, policy)
    return entry.to_json()


def set_hold(
    lake: Lake,
    signer: NoteSigner,
    who: Principal,
    tenant: str,
    reason: str,
    *,
    clear: bool = False,
    now: datetime | None = None,
) -> None:
    """Put a tenant under legal hold (nothing of it is removed) or lift the hold.

    Lifting is the local operator's alone: a tenant's own admin may be the party whose
    records the hold preserves, so a role on the tenant may set a hold but never lift it.
    """
    check_tenant(tenant)
    at = _now(now)
    policy = load_policy(lake)
    if clear:
        if not who.operator:
            raise AccessDenied(
                f"{who.name} may not lift a legal hold: that is the local operator's "
                f"(--as {LOCAL_OPERATOR}); a tenant's own roles may set one"
            )
        if tenant not in policy.holds:
            raise UsageError(f"tenant {tenant!r} is not under legal hold")
        record_action(lake, signer, who, "hold.clear", tenant, {"reason": reason}, at)
        del policy.holds[tenant]
    else:
        if not reason.strip():
            raise UsageError("a legal hold needs --reason (a case or matter reference)")
        record_action(lake, signer, who, "hold.set", tenant, {"reason": reason}, at)
        policy.holds[tenant] = Hold(reason, who.name, at.isoformat())
    save_policy(lake, policy)


@dataclass
class TenantStatus:
    tenant: str
    days: int
    preset: str | None
    hold: Hold | None
    oldest: date | None
    newest: date | None
    cutoff: date
    due_dates: list[date] = field(default_factory=list)
    due_events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "days": self.days,
            "preset": self.preset,
            "hold": self.hold.to_json() if self.hold is not None else None,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "cutoff": self.cutoff.isoformat(),
            "due_dates": [d.isoformat() for d in self.due_dates],
            "due_events": self.due_events,
        }


def status(
    lake: Lake, *, tenants: Sequence[str] | None = None, now: datetime | None = None
) -> list[TenantStatus]:
    """Per tenant: policy, hold, oldest and newest data, and what is due for removal."""
    policy = load_policy(lake)
    table = lake.events_table()
    files = lake.data_files(table)
    known = sorted({f.tenant for f in files} - {READ_AUDIT_TENANT})
    wanted = [check_tenant(t) for t in tenants] if tenants else known
    out = []
    today = _now(now).date()
    for t in wanted:
        pol = policy.tenants.get(t)
        days = pol.days if pol is not None else DEFAULT_DAYS
        mine = [f for f in files if f.tenant == t]
        cutoff = today - timedelta(days=days)
        due = sorted({f.event_date for f in mine if f.event_date < cutoff})
        out.append(
            TenantStatus(
                t,
                days,
                pol.preset if pol is not None else None,
                policy.holds.get(t),
                min((f.event_date for f in mine), default=None),
                max((f.event_date for f in mine), default=None),
                cutoff,
                due,
                sum(f.num_records or 0 for f in mine if f.event_date < cutoff),
            )
        )
    return out


@dataclass
class Removal:
    tenant: str
    dates: list[date]
    events: int
    seq_ranges: list[tuple[int, int]]
    refused: str | None = None


def _ranges(seqs: np.ndarray) -> list[tuple[int, int]]:
    if not len(seqs):
        return []
    seqs = np.sort(seqs)
    breaks = np.flatnonzero(np.diff(seqs) != 1) + 1
    return [(int(run[0]), int(run[-1])) for run in np.split(seqs, breaks)]


def apply(
    lake: Lake,
    signer: NoteSigner,
    who: Principal,
    *,
    tenants: Sequence[str] | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[Removal]:
    """Remove every expired partition not under hold; the only path that deletes events."""
    at = _now(now)
    results = []
    for st in status(lake, tenants=tenants, now=at):
        if st.hold:
            results.append(Removal(st.tenant, st.due_dates, st.due_events, [], "under legal hold"))
            continue
        if not st.due_dates:
            continue
        table = lake.events_table()
        files = [
            f
            for f in lake.data_files(table, tenants={st.tenant})
            if f.event_date in set(st.due_dates)
        ]
        seqs = (
            np.concatenate([lake.read_file(f, ["seq"]).column("seq").to_numpy() for f in files])
            if files
            else np.zeros(0, np.int64)
        )
        sealed = lake.sealed_size(lake.checkpoints_table(), st.tenant)
        if len(seqs) and int(seqs.max()) >= sealed:
            results.append(
                Removal(
                    st.tenant, st.due_dates, len(seqs), [], "unsealed events: run `auditlake seal`"
                )
            )
            continue
        removal = Removal(st.tenant, st.due_dates, len(seqs), _ranges(seqs))
        results.append(removal)
        if dry_run:
            continue
        record_action(
            lake,
            signer,
            who,
            "retention.apply",
            st.tenant,
            {
                "dates": [d.isoformat() for d in st.due_dates],
                "events": removal.events,
                "seq_ranges": [list(r) for r in removal.seq_ranges],
                "days": st.days,
            },
            at,
        )
        _delete_partitions(lake, st.tenant, st.cutoff)
    return results


def _delete_partitions(lake: Lake, tenant: str, cutoff: date) -> None:
    table = lake.events_table()
    table.alter.set_table_properties({"delta.appendOnly": "false"}, raise_if_not_exists=False)
    try:
        table = lake.events_table()
        table.delete(predicate=f"tenant = '{tenant}' AND event_date < '{cutoff.isoformat()}'")
    finally:
        lake.events_table().alter.set_table_properties(APPEND_ONLY, raise_if_not_exists=False)
    # Physically remove the deleted files (and older rewritten ones): the only vacuum.
    lake.events_table().vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


def removed_ranges(lake: Lake) -> dict[str, list[tuple[int, int]]]:
    """Per tenant, the seq ranges removed by signed `retention.apply` records."""
    table = lake.events_table()
    files = lake.data_files(table, tenants={READ_AUDIT_TENANT})
    out: dict[str, list[tuple[int, int]]] = {}
    for f in files:
        part = lake.read_file(f, ["action", "details"])
        mask = pc.equal(part.column("action"), "retention.apply")
        for details in part.filter(mask).column("details").to_pylist():
            try:
                doc = orjson.loads(details)
                ranges = [(int(a), int(b)) for a, b in doc["seq_ranges"]]
                out.setdefault(str(doc["tenant"]), []).extend(ranges)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return out
