"""Delivering a run's alerts to every sink independently, with a spool for what failed.

A dead webhook must not silence the JSONL file beside it, nor stop the run: the `alerts`
table is the record and is committed whatever the sinks did. So each sink gets its own
attempt, and what a sink did not take is kept for it:

1. Before this run's alerts, a sink is offered what its spool holds from earlier runs,
   in one batch with the new alerts (oldest first). An alert both spooled and new again
   (it changed) is sent once, in its newest form.
2. If the sink takes the batch, its spool is emptied: a spooled alert reaches a sink at
   most once after a success. If it fails, the whole batch is its spool, for the next
   run that names the same sink; the run reports the failure (the CLI exits 1).

The spool lives in the lake beside the watermarks (`_auditlake/detect/spool/`), one file
per sink, named by a hash of the sink's full identity (a webhook's URL with its path and
credentials, which are never written out), so two webhooks on one host keep separate
spools. It holds the alerts' JSON form only, which the alerts table already holds.

Delivery stays at least once: a run that dies after sending but before its alerts commit
finds the same alerts again next time, and a webhook that took some batches of a failed
send gets them again from the spool. Consumers deduplicate by `alert_id`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from detect.sinks import Sink
from lake.contract import Alert, LakeError, StorageError, UsageError
from lake.secrets import encrypted, keyring_for, open_alerts, seal_alerts
from lake.storage import Lake, paths

SPOOL_DIR: Final = paths.DETECT_SPOOL


@dataclass(frozen=True)
class SinkReport:
    """What one sink got in one run."""

    sink: str  # the sink's display name (never a secret)
    delivered: int  # alerts it took (spooled ones included)
    spooled: int  # alerts kept for the next run (0 when it took everything)
    error: str | None = None  # why it failed; None when it took everything

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "status": "ok" if self.ok else "failed",
            "delivered": self.delivered,
            "spooled": self.spooled,
            "error": self.error,
        }

    def line(self) -> str:
        """One human line for stderr."""
        if self.ok:
            return f"auditlake: sink {self.sink}: {self.delivered} alert(s) delivered"
        return (
            f"auditlake: sink {self.sink}: delivery failed, {self.spooled} alert(s) spooled "
            f"for the next run: {self.error}"
        )


def spool_path(sink: Sink) -> str:
    """The spool file of a sink, under the lake root."""
    identity = str(getattr(sink, "identity", sink.name))
    return paths.spool_file(hashlib.sha256(identity.encode()).hexdigest()[:32])


def _load(lake: Lake, path: str) -> list[Alert]:
    try:
        doc = orjson.loads(lake.read_bytes(path))
    except FileNotFoundError:
        return []
    except orjson.JSONDecodeError:
        raise StorageError(f"{path} in the lake is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise StorageError(f"{path} in the lake is malformed")
    try:
        alerts = [Alert.from_json(a) for a in doc["alerts"]]
    except (TypeError, ValueError, AttributeError, UsageError):
        raise StorageError(f"{path} in the lake holds a malformed alert") from None
    return open_alerts(keyring_for(lake), alerts) if encrypted(lake) else alerts


def _save(lake: Lake, path: str, sink: Sink, alerts: Sequence[Alert]) -> None:
    docs = [a.to_json() for a in alerts]
    if encrypted(lake):  # the spool is in the lake: titles and groups quote sealed fields
        sealed = seal_alerts(keyring_for(lake), alerts)
        docs = [dict(d, title=s.title, group=s.group) for d, s in zip(docs, sealed, strict=True)]
    doc = {"sink": sink.name, "alerts": docs}
    lake.write_bytes(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def _merge(spooled: Sequence[Alert], new: Sequence[Alert]) -> list[Alert]:
    """Spooled alerts first, then new ones; an alert in both is sent once, as it is now."""
    fresh = {a.alert_id for a in new}
    return [a for a in spooled if a.alert_id not in fresh] + list(new)


def deliver(lake: Lake, sinks: Sequence[Sink], alerts: Sequence[Alert]) -> list[SinkReport]:
    """Send `alerts` (after each sink's spool) to every sink; one report per sink.

    A sink failing with a LakeError (SinkError) or an OSError is reported and spooled;
    the others are still served.
    """
    reports = []
    for sink in sinks:
        path = spool_path(sink)
        spooled = _load(lake, path)
        batch = _merge(spooled, alerts)
        try:
            sink.send(batch)
        except (LakeError, OSError) as exc:
            _save(lake, path, sink, batch)
            reason = str(exc).removeprefix(f"{sink.name}: ") or type(exc).__name__
            reports.append(SinkReport(sink.name, 0, len(batch), reason))
            continue
        if spooled:
            _save(lake, path, sink, [])
        reports.append(SinkReport(sink.name, len(batch), 0))
    return reports
