"""What `verify` reports: findings, per tenant and for the lake as a whole.

Kept apart from the checks so that every module that checks one concern (the signature
chain, the ranges of rows, the witnesses, the parts of a lake that cannot be read) fills
the same report without importing the driver.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

MAX_FINDINGS_PER_KIND = 50


class FindingKind(StrEnum):
    """Every kind of problem verify reports; the value is the string in its JSON report."""

    # An event, located by seq/event id/batch.
    MODIFIED = "modified"  # the row is not what was sealed at its seq
    MISSING = "missing"  # sealed seqs no row holds (and no signed retention record explains)
    DUPLICATE = "duplicate"  # an authentic event stored twice, or an id used twice
    INSERTED = "inserted"  # a row at a seq that already holds an authentic event
    REORDERED = "reordered"  # an authentic event stored at another seq than it was sealed at
    UNSEALED = "unsealed"  # rows past every signed checkpoint
    MISPLACED = "misplaced"  # a row in the partition of another date than its time's
    # The signed log.
    BAD_SIGNATURE = "bad_signature"  # a checkpoint (or exported one) whose signature fails
    UNTRUSTED_KEY = "untrusted_key"  # signed only by a key that is not trusted
    KEY_NOT_VALID = "key_not_valid"  # signed only by keys outside their validity window
    BAD_CHAIN = "bad_chain"  # signed times that go backwards (or vanish) along the log
    BAD_CHECKPOINT = "bad_checkpoint"  # a note that does not parse or disagrees with its row
    FORK = "fork"  # two checkpoints of one size with different roots
    ROLLBACK = "rollback"  # an exported checkpoint the lake's log no longer holds
    ROOT_MISMATCH = "root_mismatch"  # rows that do not hash to a signed root (no tiles)
    BAD_TILES = "bad_tiles"  # stored hash tiles unusable or not matching the signed roots
    # Witnesses.
    BAD_COSIGNATURE = "bad_cosignature"  # a stored cosignature that does not verify
    WITNESS_CONFLICT = "witness_conflict"  # a witness cosigned a tree head the lake lacks
    UNWITNESSED = "unwitnessed"  # fewer valid cosignatures on the latest checkpoint than asked
    # The lake's files.
    UNREADABLE_TABLE = "unreadable_table"  # a table's Delta log cannot be loaded
    UNREADABLE_FILE = "unreadable_file"  # one data or checkpoints file cannot be read


@dataclass
class Finding:
    """One problem, located as precisely as the evidence allows.

    `tenant` is "" when the problem is not one tenant's (an unreadable table). `file` is
    the path of the damaged or offending file relative to the lake's root.
    """

    tenant: str
    kind: FindingKind
    message: str
    seq: int | None = None
    event_id: str | None = None
    batch_id: str | None = None
    file: str | None = None
    tree_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and (k != "tenant" or v)}
        out["kind"] = str(self.kind)
        return out


@dataclass
class TenantReport:
    """What verify found for one tenant."""

    tenant: str
    events: int = 0
    sealed_size: int = 0
    checkpoints: int = 0
    key_names: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[FindingKind, int] = field(default_factory=dict)

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
            "suppressed": {str(kind): count for kind, count in self.suppressed.items()},
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
