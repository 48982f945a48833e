"""Shared pieces of the detection tests: login events, and a lake to add them to."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from testkit import login

from lake.contract import validate
from lake.log import NoteSigner
from lake.storage import Lake
from lake.write import append


def failures(
    tenant: str, actor: str, start: datetime, n: int, every: timedelta, ip: str = "192.0.2.1"
) -> list[dict[str, Any]]:
    """`n` failed logins of `actor`, `every` apart from `start`."""
    return [login(tenant, actor, start + every * k, "failure", ip) for k in range(n)]


def new_lake(path: Path, signer: NoteSigner) -> Lake:
    return Lake.init(path, "t", signer.verifier_key.encode())


def add(lake: Lake, events: list[dict[str, Any]], signer: NoteSigner, tag: str) -> None:
    """Validate and append `events` as one batch (ids derived from `tag`)."""
    if events:
        append(lake, validate(events, namespace=tag.encode()).table, signer)
