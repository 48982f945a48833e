"""Wire events from application code: ids, times, the typed helpers and the scalar check.

Standard library and orjson only: this is what every `log()` runs on the caller's thread.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from time import time_ns
from typing import Any, Literal, TypedDict, Unpack

import orjson

from ingest.closing import Closing
from lake.spec import Issue, check_event, utc_text

Outcome = Literal["success", "failure", "unknown"]
Severity = Literal["info", "low", "medium", "high", "critical"]
ActorType = Literal["user", "admin", "service", "system"]
TimeLike = datetime | str | None


class InvalidEventError(ValueError):
    """An event that the wire format refuses; a programming error, raised at `log` time.

    Attributes:
        issues: every problem found, each naming the event index, field and reason.
    """

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__(
            "invalid audit event: " + "; ".join(f"{i.field}: {i.message}" for i in self.issues)
        )


def uuid7() -> str:
    """A new UUIDv7 string (RFC 9562): 48-bit Unix milliseconds, then 74 random bits."""
    ms = time_ns() // 1_000_000
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant (0b10)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_time(value: TimeLike = None) -> str:
    """RFC 3339 UTC with microseconds and "Z"; now when `value` is None.

    A string is passed through for the validator to judge; a naive datetime is refused,
    since guessing its zone would put the event at the wrong instant.
    """
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError([Issue(0, "time", "a naive datetime has no time zone")])
    return utc_text(value)


def prepare(event: Mapping[str, Any], source: str | None) -> tuple[str, bytes]:
    """Copy, complete (id, source), validate and serialise one event; returns (id, line).

    The scalar validator, held to the collector's verdicts by a property test, costs
    microseconds per event; an event it accepts is one the collector accepts.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError([Issue(0, "(event)", f"expected a mapping, got {type(event)}")])
    out = dict(event)
    if out.get("id") is None:
        out["id"] = uuid7()
    if source is not None and out.get("source") is None:
        out["source"] = source
    issues = check_event(out)
    if issues:
        raise InvalidEventError(issues)
    try:
        line = orjson.dumps(out)
    except TypeError as exc:  # the validator reads fields; this guards what it ignores
        raise InvalidEventError([Issue(0, "(event)", f"cannot be serialised ({exc})")]) from None
    return str(out["id"]), line


class EventOptions(TypedDict, total=False):
    """The keyword arguments every typed helper takes (see `EventHelpers`)."""

    ip: str | None
    user_agent: str | None
    actor_type: ActorType | None
    details: Mapping[str, Any] | None
    time: TimeLike
    severity: Severity | None
    source: str | None
    event_id: str | None


def _with_details(options: EventOptions, **extra: Any) -> EventOptions:
    """`options` with `extra` merged into (a copy of) its details."""
    return {**options, "details": {**(options.get("details") or {}), **extra}}


class EventHelpers(Closing, ABC):
    """The typed helpers for the five kinds of event, on top of one `log` method.

    Every helper builds a wire event with the wire format's fields only, hands it to
    `log` (which validates it) and returns its id. Common keyword arguments
    (`EventOptions`):

    Args:
        ip, user_agent: the actor's network origin.
        actor_type: `user`, `admin`, `service` or `system` (each helper has its default).
        details: any JSON object (at most 16 KiB once serialised).
        time: when it happened (aware datetime or RFC 3339 string); defaults to now.
        severity: `info` (the collector's default when None) to `critical`.
        source: the emitting service; defaults to the client's `source`.
        event_id: your own id, e.g. to make an application-level retry idempotent.

    Used as a context manager, it is closed on the way out, also after an exception:
    events logged before it describe things that happened, so they are kept.
    """

    @abstractmethod
    def log(self, event: Mapping[str, Any]) -> str:
        """Validate and record one wire event; returns its id."""

    @abstractmethod
    def close(self) -> object:
        """Deliver or store what is pending, then stop."""

    def login(
        self,
        tenant: str,
        actor_id: str,
        *,
        outcome: Outcome,
        action: str = "login",
        mfa: str | bool | None = None,
        **options: Unpack[EventOptions],
    ) -> str:
        """An authentication event (`login`, `logout`, `mfa.challenge`, ...).

        `mfa` (a method name or a flag) is recorded as `details.mfa`.
        """
        options.setdefault("actor_type", "user")
        if mfa is not None:
            options = _with_details(options, mfa=mfa)
        event = build_event(tenant, "authentication", action, actor_id, outcome=outcome, **options)
        return self.log(event)

    def admin_action(
        self,
        tenant: str,
        actor_id: str,
        action: str,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        outcome: Outcome = "success",
        **options: Unpack[EventOptions],
    ) -> str:
        """An administrative action (`role.grant`, `user.delete`, ...) on a target."""
        options.setdefault("actor_type", "admin")
        return self.log(
            build_event(
                tenant,
                "admin_action",
                action,
                actor_id,
                outcome=outcome,
                target_type=target_type,
                target_id=target_id,
                **options,
            )
        )

    def key_change(
        self,
        tenant: str,
        actor_id: str,
        action: str,
        key_id: str,
        *,
        outcome: Outcome = "success",
        key_type: str = "key",
        **options: Unpack[EventOptions],
    ) -> str:
        """A key lifecycle event (`key.create`, `key.rotate`, `key.revoke`); target = the key."""
        return self.log(
            build_event(
                tenant,
                "key_change",
                action,
                actor_id,
                outcome=outcome,
                target_type=key_type,
                target_id=key_id,
                **options,
            )
        )

    def flag_change(
        self,
        tenant: str,
        actor_id: str,
        flag: str,
        *,
        old: Any = None,
        new: Any = None,
        action: str = "flag.update",
        outcome: Outcome = "success",
        **options: Unpack[EventOptions],
    ) -> str:
        """A feature-flag change; target = the flag, `details.old`/`details.new` its values."""
        options = _with_details(options, old=old, new=new)
        return self.log(
            build_event(
                tenant,
                "flag_change",
                action,
                actor_id,
                outcome=outcome,
                target_type="flag",
                target_id=flag,
                **options,
            )
        )

    def recovery_attempt(
        self,
        tenant: str,
        actor_id: str,
        action: str = "recovery.request",
        *,
        outcome: Outcome = "success",
        target_type: str | None = None,
        target_id: str | None = None,
        **options: Unpack[EventOptions],
    ) -> str:
        """An account-recovery step (`recovery.request`, `recovery.complete`, ...)."""
        options.setdefault("actor_type", "user")
        return self.log(
            build_event(
                tenant,
                "account_recovery",
                action,
                actor_id,
                outcome=outcome,
                target_type=target_type,
                target_id=target_id,
                **options,
            )
        )


def build_event(
    tenant: str,
    category: str,
    action: str,
    actor_id: str,
    *,
    outcome: str,
    target_type: str | None = None,
    target_id: str | None = None,
    **options: Unpack[EventOptions],
) -> dict[str, Any]:
    """A wire event from its parts; absent optional fields are left out, not sent as null."""
    actor: dict[str, Any] = {"id": actor_id}
    for key, name in (("type", "actor_type"), ("ip", "ip"), ("user_agent", "user_agent")):
        value = options.get(name)
        if value is not None:
            actor[key] = value
    event: dict[str, Any] = {
        "tenant": tenant,
        "id": options.get("event_id") or uuid7(),
        "time": format_time(options.get("time")),
        "category": category,
        "action": action,
        "outcome": outcome,
        "actor": actor,
    }
    if (severity := options.get("severity")) is not None:
        event["severity"] = severity
    if target_type is not None or target_id is not None:
        target = {"type": target_type, "id": target_id}
        event["target"] = {k: v for k, v in target.items() if v is not None}
    if (source := options.get("source")) is not None:
        event["source"] = source
    if details := options.get("details"):
        event["details"] = dict(details)
    return event
