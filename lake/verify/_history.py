"""The verify history: each tenant's latest full verification, kept in the lake for display.

`verify` records, per tenant it checked, when, by whom and with what result
(`paths.VERIFY_LOG`, a JSON object keyed by tenant); `status` and the dashboard show it.
It proves nothing, since whoever can write the lake could forge it: `verify` itself is
the proof. The file is written and read through `VerifyHistory` only, one typed
`LastVerification` per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from lake.spec import UTC_MICROS_FORMAT, utc_text
from lake.storage import Lake, paths
from lake.verify._report import FindingKind, Report


@dataclass(frozen=True)
class LastVerification:
    """One tenant's latest recorded verification.

    `findings` counts every finding (those past the per-kind cap and the lake-wide ones
    included); `kinds` are their kinds, sorted.
    """

    verified_at: datetime
    by: str
    ok: bool
    events: int
    sealed_size: int
    findings: int
    kinds: tuple[FindingKind, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The entry as stored under its tenant in the history file."""
        return {
            "verified_at": utc_text(self.verified_at),
            "by": self.by,
            "ok": self.ok,
            "events": self.events,
            "sealed_size": self.sealed_size,
            "findings": self.findings,
            "kinds": [str(kind) for kind in self.kinds],
        }

    @classmethod
    def from_json(cls, doc: object) -> LastVerification | None:
        """The entry stored under a tenant; None when it is not one (a damaged file)."""
        if not isinstance(doc, dict):
            return None
        try:
            at = datetime.strptime(str(doc["verified_at"]), UTC_MICROS_FORMAT).replace(tzinfo=UTC)
            events, sealed, findings = doc["events"], doc["sealed_size"], doc["findings"]
            ok = doc["ok"]
            if not all(type(n) is int for n in (events, sealed, findings)) or type(ok) is not bool:
                return None
            kinds = tuple(FindingKind(k) for k in doc["kinds"])
            return cls(at, str(doc["by"]), ok, events, sealed, findings, kinds)
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class VerifyHistory:
    """Per tenant, the latest recorded verification."""

    tenants: dict[str, LastVerification] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes) -> VerifyHistory:
        """Parse the history file; entries that are not a verification are left out."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return cls()
        if not isinstance(doc, dict):
            return cls()
        runs = {str(t): LastVerification.from_json(entry) for t, entry in doc.items()}
        return cls({t: run for t, run in runs.items() if run is not None})

    def to_json(self) -> bytes:
        doc = {t: run.to_json() for t, run in self.tenants.items()}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def record(self, report: Report, *, by: str, at: datetime) -> None:
        """Take each tenant of `report` as its latest verification."""
        # A table that could not be read leaves every tenant unchecked: none of them is ok.
        lake_wide = report.lake_findings
        for t in report.tenants:
            kinds = {f.kind for f in [*t.findings, *lake_wide]} | set(t.suppressed)
            self.tenants[t.tenant] = LastVerification(
                verified_at=at,
                by=by,
                ok=t.ok and not lake_wide,
                events=t.events,
                sealed_size=t.sealed_size,
                findings=len(t.findings) + sum(t.suppressed.values()) + len(lake_wide),
                kinds=tuple(sorted(kinds)),
            )


def verify_history(lake: Lake) -> VerifyHistory:
    """The lake's verify history (empty when none was recorded or the file is damaged)."""
    try:
        return VerifyHistory.from_json(lake.read_bytes(paths.VERIFY_LOG))
    except FileNotFoundError:
        return VerifyHistory()


def record_report(lake: Lake, report: Report, *, by: str) -> None:
    """Remember each tenant's latest full verification (time, who, result) in the lake.

    For display only (dashboard, status): a record inside the lake proves nothing, since
    whoever can write the lake could forge it; `verify` itself is the proof.
    """
    history = verify_history(lake)
    history.record(report, by=by, at=datetime.now(UTC))
    lake.write_bytes(paths.VERIFY_LOG, history.to_json())


def last_reports(lake: Lake) -> dict[str, dict[str, Any]]:
    """Per tenant, the latest recorded verification as the stored JSON object.

    Kept for callers that read the entries by key; new code reads `verify_history`.
    """
    return {t: run.to_json() for t, run in verify_history(lake).tenants.items()}
