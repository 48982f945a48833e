"""The lake's retention policy document: per-tenant retention and legal holds.

Read by retention (which changes it) and by crypto-shredding (which a hold refuses), so it
lives below both.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from lake.contract import StorageError
from lake.storage import _paths as paths
from lake.storage._lake import Lake

POLICY_PATH: Final = paths.RETENTION


def load_policy(lake: Lake) -> dict[str, Any]:
    try:
        doc = orjson.loads(lake.read_bytes(POLICY_PATH))
    except FileNotFoundError:
        return {"tenants": {}, "holds": {}}
    except orjson.JSONDecodeError:
        raise StorageError(f"{POLICY_PATH} in the lake is not valid JSON") from None
    doc.setdefault("tenants", {})
    doc.setdefault("holds", {})
    return dict(doc)


def save_policy(lake: Lake, doc: dict[str, Any]) -> None:
    lake.write_bytes(
        POLICY_PATH, orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
