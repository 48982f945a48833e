"""What `verify` reports: findings, per tenant and for the lake as a whole.

Kept apart from `lake.verify` (the checks) so that the modules that check one concern
(`lake.verify` for signatures and signed times, `lake.verify` for the parts of
a lake that cannot be read) fill the same report without importing the driver.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_FINDINGS_PER_KIND = 50


@dataclass
class Finding:
    """One problem, located as precisely as the evidence allows.

    `tenant` is "" when the problem is not one tenant's (an unreadable table). `file` is
    the path of the damaged or offending file relative to the lake's root.
    """

    tenant: str
    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None
    batch_id: str | None = None
    file: str | None = None
    tree_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and (k != "tenant" or v)}


@dataclass
class TenantReport:
    """What verify found for one tenant."""

    tenant: str
    events: int = 0
    sealed_size: int = 0
    checkpoints: int = 0
    key_names: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        shown = sum(1 for f in self.findings if f.kind == finding.kind)
        if shown >= MAX_FINDINGS_PER_KIND:
            self.suppressed[finding.kind] = self.suppressed.get(finding.kind, 0) + 1
        else:
            self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "events": self.events,
            "sealed_size": self.sealed_size,
            "checkpoints": self.checkpoints,
            "key_names": self.key_names,
            "findings": [f.as_dict() for f in self.findings],
            "suppressed": self.suppressed,
        }


@dataclass
class Report:
    """The outcome of `verify` over some tenants.

    `lake_findings` are problems of the lake as a whole, found before any tenant could
    be told apart (a Delta log that does not parse, a table that is gone): the lake is
    not ok while there is one.
    """

    lake: str
    tenants: list[TenantReport] = field(default_factory=list)
    lake_findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lake_findings and all(t.ok for t in self.tenants)

    @property
    def findings(self) -> list[Finding]:
        return [*self.lake_findings, *(f for t in self.tenants for f in t.findings)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lake": self.lake,
            "ok": self.ok,
            "events": sum(t.events for t in self.tenants),
            "findings": len(self.findings) + sum(sum(t.suppressed.values()) for t in self.tenants),
            "lake_findings": [f.as_dict() for f in self.lake_findings],
            "tenants": [t.as_dict() for t in self.tenants],
        }
