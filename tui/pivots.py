"""Pivots: from one event to the next question about it, as a new search filter.

An investigator follows a lead: this failed login → everything this IP did → what this
actor did ten minutes around that. Each pivot is a plain `SearchFilter`, so it is shown
in the search box as the shared query syntax, can be edited, and is audited like any
search. A pivot starts a new search rather than narrowing the current one (the point is to
leave the current question); the search box and `back` keep the way home.

Scope: actor and target ids name things inside one tenant (`git` is an application of
every tenant), so those pivots, and the time window, stay in the event's tenant. An IP
address is the same attacker whichever tenant it hits, so the IP pivot spans every tenant
the principal may read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from lake.api import SearchFilter
from tui.display import utc

DEFAULT_WINDOW: Final = timedelta(minutes=15)


class Pivot(StrEnum):
    """The kinds of pivot, named as the app's actions take them."""

    ACTOR = "actor"
    IP = "ip"
    TARGET = "target"
    WINDOW = "window"


class PivotUnavailable(ValueError):
    """This event has nothing to pivot on (no IP, no target), or not exactly."""


_COLUMNS: Final = {Pivot.ACTOR: "actor_id", Pivot.IP: "actor_ip", Pivot.TARGET: "target_id"}
_NAMES: Final = {Pivot.ACTOR: "actor", Pivot.IP: "IP address", Pivot.TARGET: "target"}


def pivot(
    kind: Pivot, event: Mapping[str, Any], window: timedelta = DEFAULT_WINDOW
) -> SearchFilter:
    """The filter of a pivot from `event` (a stored row as a dict).

    Raises:
        PivotUnavailable: the event has no such value, or one the query syntax would read
            as a prefix (a trailing `*`), which would widen the pivot silently.
    """
    tenant = str(event["tenant"])
    if kind is Pivot.WINDOW:
        moment = utc(event["time"])
        return SearchFilter(tenants=(tenant,), since=moment - window, until=moment + window)
    value = event.get(_COLUMNS[kind])
    if value is None or value == "":
        raise PivotUnavailable(f"this event has no {_NAMES[kind]} to pivot on")
    text = str(value)
    if text.endswith("*"):
        raise PivotUnavailable(
            f"cannot pivot exactly on {text!r}: a trailing * means a prefix in the query syntax"
        )
    if kind is Pivot.ACTOR:
        return SearchFilter(tenants=(tenant,), actors=(text,))
    if kind is Pivot.TARGET:
        return SearchFilter(tenants=(tenant,), targets=(text,))
    return SearchFilter(ips=(text,))


def describe(kind: Pivot, event: Mapping[str, Any], window: timedelta = DEFAULT_WINDOW) -> str:
    """A status-line label of the pivot ("same IP 203.0.113.7 · all tenants")."""
    if kind is Pivot.WINDOW:
        minutes = int(window.total_seconds() // 60)
        return f"±{minutes} min around {event['event_id']} · tenant {event['tenant']}"
    value = event.get(_COLUMNS[kind])
    scope = "all your tenants" if kind is Pivot.IP else f"tenant {event['tenant']}"
    return f"same {_NAMES[kind]} {value} · {scope}"
