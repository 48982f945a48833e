"""`check_event`: every issue of one wire event, derived from the declaration in `_rules`.

The scalar twin of `lake.contract.validate`, for callers that check one event at a time
(the SDK's `log()`): ~50x cheaper for a single event, standard library only, and held to
exactly the same verdicts and messages by a property test (tests/lake/test_check_event.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lake.spec._canonical import canonical_details
from lake.spec._errors import Issue
from lake.spec._rules import (
    EMPTY_MESSAGE,
    MAX_STRING_BYTES,
    OBJECT_FIELDS,
    REQUIRED_MESSAGE,
    TEXT_FIELDS,
    TOO_LONG_MESSAGE,
    TOP_FIELDS,
    UNKNOWN_MESSAGE,
    WIRE_KEYS,
    TextField,
    enum_message,
    expected_message,
    shorten,
    string_problem,
)
from lake.spec._time import TimeWindow, time_problem, time_window

_Add = Callable[[str, str], None]
_PATTERNS = {spec.path: re.compile(spec.pattern) for spec in TEXT_FIELDS if spec.pattern}


def check_event(
    event: Any,
    *,
    max_future_skew: timedelta | None = None,
    window: TimeWindow | None = None,
    reserved_ok: bool = False,
) -> list[Issue]:
    """Every issue of one wire event, as `lake.contract.validate([event])` reports them.

    Issues have index 0. `window` is the accepted time range (default: `time_window()`
    of `max_future_skew`, now); `reserved_ok` accepts the lake's own read-audit tenant.
    """
    issues: list[Issue] = []

    def add(name: str, message: str) -> None:
        issues.append(Issue(0, name, message))

    if not isinstance(event, dict):
        add("(event)", expected_message("an object", event))
        return issues
    for key in sorted(set(event) - WIRE_KEYS):
        add(key, UNKNOWN_MESSAGE)
    window = time_window(max_future_skew) if window is None else window
    for spec in TOP_FIELDS:
        value = event.get(spec.path)
        if value is None and spec.required:
            add(spec.path, REQUIRED_MESSAGE)
        else:
            _check_text(spec, value, add, window, reserved_ok)
    for obj_spec in OBJECT_FIELDS:
        obj = event.get(obj_spec.name)
        if obj is None:
            if obj_spec.required:
                add(obj_spec.name, REQUIRED_MESSAGE)
            continue
        if not isinstance(obj, dict):
            add(obj_spec.name, expected_message("an object", obj))
            continue
        for key in sorted(set(obj) - set(obj_spec.keys)):
            add(f"{obj_spec.name}.{key}", UNKNOWN_MESSAGE)
        for spec in obj_spec.members:
            value = obj.get(spec.key)
            if value is None and spec.required:
                add(spec.path, REQUIRED_MESSAGE)
            else:
                _check_text(spec, value, add, window, reserved_ok)
    _, problem = canonical_details(event.get("details"))
    if problem is not None:
        add(*problem)
    return issues


def _check_text(
    spec: TextField, value: Any, add: _Add, window: TimeWindow, reserved_ok: bool
) -> None:
    """The issues of one string field's value (absent: none; `required` is the caller's)."""
    if value is None:
        return
    problem = string_problem(value)
    if problem is not None:
        add(spec.path, problem)
        return
    if len(value.encode("utf-8")) > MAX_STRING_BYTES:
        add(spec.path, TOO_LONG_MESSAGE.format(limit=MAX_STRING_BYTES))
    if spec.is_time:
        problem = time_problem(value, window)
        if problem is not None:
            add(spec.path, problem)
    elif spec.pattern is not None and not _PATTERNS[spec.path].fullmatch(value):
        add(spec.path, spec.message.format(value=shorten(value)))
    if spec.allowed and value not in spec.allowed:
        add(spec.path, enum_message(value, spec.allowed))
    if spec.nonempty and value == "":
        add(spec.path, EMPTY_MESSAGE)
    if spec.reserved is not None and value == spec.reserved and not reserved_ok:
        add(spec.path, spec.reserved_message)
