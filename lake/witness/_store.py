"""The lake's store of witness cosignatures, one JSON file per tenant.

`_auditlake/cosignatures/<tenant>.json` maps each tree size a witness cosigned to the
checkpoint body it cosigned and each witness's cosignature line over that body:

    {"<size>": {"body": "<checkpoint body>", "cosignatures": {"<witness>": "— <witness> …"}}}

sizes ascending, two-space indent. `CosignatureStore.from_json`/`to_json` are the only
readers and writers of that shape; a file that is not JSON, or not an object, reads as empty
(witnessing never blocks ingestion), and an entry without a cosignatures object is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from lake.storage import Lake, paths

__all__ = ["CosignatureStore", "Cosigned"]


@dataclass
class Cosigned:
    """The checkpoint body witnesses cosigned at one tree size, and each one's line over it."""

    body: str
    lines: dict[str, str] = field(default_factory=dict)  # witness name -> cosignature line

    @classmethod
    def from_json(cls, doc: Any) -> Cosigned | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("cosignatures"), dict):
            return None
        return cls(str(doc.get("body", "")), dict(doc["cosignatures"]))

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "cosignatures": dict(self.lines)}


@dataclass
class CosignatureStore:
    """One tenant's cosignatures, by tree size."""

    tenant: str
    sizes: dict[int, Cosigned] = field(default_factory=dict)

    @classmethod
    def from_json(cls, tenant: str, doc: Any) -> CosignatureStore:
        store = cls(tenant)
        if isinstance(doc, dict):
            for k, v in doc.items():
                entry = Cosigned.from_json(v)
                if entry is not None:
                    store.sizes[int(k)] = entry
        return store

    def to_json(self) -> dict[str, Any]:
        return {str(k): v.to_json() for k, v in sorted(self.sizes.items())}

    @classmethod
    def load(cls, lake: Lake, tenant: str) -> CosignatureStore:
        try:
            doc = orjson.loads(lake.read_bytes(paths.cosignatures_file(tenant)))
        except (FileNotFoundError, orjson.JSONDecodeError):
            doc = {}
        return cls.from_json(tenant, doc)

    def save(self, lake: Lake) -> None:
        lake.write_bytes(
            paths.cosignatures_file(self.tenant),
            orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2),
        )

    def add(self, size: int, body: str, witness: str, line: str) -> None:
        """Keeps `witness`'s line over `body` at `size` (the body at that size becomes `body`)."""
        entry = self.sizes.setdefault(size, Cosigned(body))
        entry.body = body
        entry.lines[witness] = line

    def last_cosigned(self, witness: str, at_most: int) -> int:
        """The largest size up to `at_most` that `witness` cosigned (0: none)."""
        return max(
            (s for s, e in self.sizes.items() if witness in e.lines and s <= at_most), default=0
        )
