"""The wire format of an event, declared once: fields, types, patterns, enums, limits, messages.

Every validator of events is derived from this module: the scalar `check_event` here,
and the columnar exact and fast paths of `lake.contract`. A rule or a message changes
here, and only here. Standard library only: the SDK imports it.

Issues name a field by its path on the wire (`tenant`, `actor.id`); each string field
also names the stored column it becomes (`lake.contract.EVENTS_SCHEMA`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

TENANT_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TENANT_RE: Final = re.compile(TENANT_PATTERN)
# The lake's own tenant: the read audit (`audit.query` events of who queried what). It is
# a valid tenant id, so its log is sealed and verified like any other, but no ingest path
# accepts events for it: only the query layer writes there.
READ_AUDIT_TENANT: Final = "auditlake"
RESERVED_TENANT_MESSAGE: Final = (
    "tenant 'auditlake' is reserved for the lake's own read audit; use another tenant id"
)

CATEGORIES: Final = (
    "authentication",
    "admin_action",
    "key_change",
    "flag_change",
    "account_recovery",
)
OUTCOMES: Final = ("success", "failure", "unknown")
SEVERITIES: Final = ("info", "low", "medium", "high", "critical")
ACTOR_TYPES: Final = ("user", "admin", "service", "system")
DEFAULT_SEVERITY: Final = "info"

# A dotted verb: lower-case words of letters, digits and underscores joined by dots.
ACTION_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
# Client ids: printable ASCII without spaces, bounded (UUIDs fit with room to spare).
ID_PATTERN: Final = r"^[\x21-\x7e]{1,128}$"
# RFC 3339 date-time with a mandatory offset; up to nanosecond digits are accepted as long
# as the digits past microseconds are zero (nothing may be silently truncated).
TIME_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
SUBMICRO_PATTERN: Final = r"\.[0-9]{6}[0-9]*[1-9]"
LONG_FRACTION_PATTERN: Final = r"\.[0-9]{7}"  # where sub-microsecond digits may hide
MICRO_CUT_PATTERN: Final = r"(\.[0-9]{6})[0-9]+"  # replaced by r"\1": keep microseconds

MAX_DETAILS_BYTES: Final = 16 * 1024
# Free-text string fields are bounded so one event cannot bloat a batch.
MAX_STRING_BYTES: Final = 1024

# Messages. `{value!r}` is the offending value, shortened (`shorten`).
TENANT_MESSAGE: Final = (
    "{value!r} is not a valid tenant id (lower-case letters, digits, '_' and '-', "
    "starting with a letter or digit, at most 63 characters)"
)
ID_MESSAGE: Final = "{value!r} is not a valid id (1–128 printable ASCII characters, no spaces)"
ACTION_MESSAGE: Final = "{value!r} is not a dotted verb (e.g. login, role.grant, key.rotate)"
TIME_SHAPE_MESSAGE: Final = "{value!r} is not an RFC 3339 timestamp with an offset"
TIME_VALUE_MESSAGE: Final = "{value!r} is not a valid date and time"
SUBMICRO_MESSAGE: Final = "has sub-microsecond digits, which would be lost; send microseconds"
UNENCODABLE_MESSAGE: Final = "is not valid Unicode text (it holds a lone surrogate)"
REQUIRED_MESSAGE: Final = "is required"
EMPTY_MESSAGE: Final = "must not be empty"
UNKNOWN_MESSAGE: Final = "unknown field"
TOO_LONG_MESSAGE: Final = "longer than {limit} bytes"
DETAILS_SIZE_MESSAGE: Final = "is {size} bytes once serialised; the limit is {limit}"
DETAILS_TYPE_MESSAGE: Final = "cannot be serialised as JSON ({error})"
INEXACT_MESSAGE: Final = (
    "number too large to store exactly (beyond 64-bit integers); send it as a string"
)


@dataclass(frozen=True)
class TextField:
    """A string field of the wire format and every rule on its value."""

    path: str  # as issues name it: `tenant`, `actor.id`
    column: str  # the stored column it becomes
    required: bool = False  # in an object: required when the object is there
    pattern: str | None = None
    message: str = ""  # for a value the pattern refuses
    allowed: tuple[str, ...] = ()  # an enum, when not empty
    default: str | None = None  # stored when the field is absent
    nonempty: bool = False
    reserved: str | None = None  # a value only the lake itself may send
    reserved_message: str = ""
    is_time: bool = False  # RFC 3339 with an offset, within the accepted window

    @property
    def key(self) -> str:
        """The field's key in its object (`id` for `actor.id`)."""
        return self.path.rpartition(".")[2]


@dataclass(frozen=True)
class ObjectField:
    """An object of the wire format (`actor`, `target`): its string members, no others."""

    name: str
    required: bool
    members: tuple[TextField, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.members)


TENANT = TextField(
    "tenant",
    "tenant",
    required=True,
    pattern=TENANT_PATTERN,
    message=TENANT_MESSAGE,
    reserved=READ_AUDIT_TENANT,
    reserved_message=RESERVED_TENANT_MESSAGE,
)
TIME = TextField("time", "time", required=True, pattern=TIME_PATTERN, is_time=True)
# The top-level string fields, in the order their issues are reported.
TOP_FIELDS: Final = (
    TENANT,
    TextField("id", "event_id", pattern=ID_PATTERN, message=ID_MESSAGE),
    TIME,
    TextField("category", "category", required=True, allowed=CATEGORIES),
    TextField("action", "action", required=True, pattern=ACTION_PATTERN, message=ACTION_MESSAGE),
    TextField("outcome", "outcome", required=True, allowed=OUTCOMES),
    TextField("severity", "severity", allowed=SEVERITIES, default=DEFAULT_SEVERITY),
    TextField("source", "source"),
)
ACTOR = ObjectField(
    "actor",
    required=True,
    members=(
        TextField("actor.id", "actor_id", required=True, nonempty=True),
        TextField("actor.type", "actor_type", allowed=ACTOR_TYPES),
        TextField("actor.ip", "actor_ip"),
        TextField("actor.user_agent", "user_agent"),
    ),
)
TARGET = ObjectField(
    "target",
    required=False,
    members=(TextField("target.type", "target_type"), TextField("target.id", "target_id")),
)
OBJECT_FIELDS: Final = (ACTOR, TARGET)
DETAILS: Final = "details"  # a JSON object, stored as canonical JSON of ≤ MAX_DETAILS_BYTES
TEXT_FIELDS: Final = (*TOP_FIELDS, *ACTOR.members, *TARGET.members)

WIRE_FIELDS: Final = (
    "tenant",
    "id",
    "time",
    "category",
    "action",
    "outcome",
    "severity",
    "actor",
    "target",
    "source",
    "details",
)
ACTOR_FIELDS: Final = ACTOR.keys
TARGET_FIELDS: Final = TARGET.keys
WIRE_KEYS: Final = frozenset(WIRE_FIELDS)

_TYPE_NAMES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def is_valid_tenant(tenant: str) -> bool:
    """True when `tenant` is a well-formed tenant id (safe as a path and partition value)."""
    return TENANT_RE.fullmatch(tenant) is not None


def type_name(value: Any) -> str:
    """How a message names the JSON type of `value` ("a string", "an object", …)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def shorten(value: Any, limit: int = 60) -> str:
    """`value` as text, cut to `limit` characters for a message."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expected_message(expected: str, value: Any) -> str:
    """`expected an object, got a string` and the like."""
    return f"expected {expected}, got {type_name(value)}"


def enum_message(value: Any, allowed: Sequence[str]) -> str:
    return f"unknown value {shorten(value)!r}; expected one of {', '.join(allowed)}"


def string_problem(value: Any) -> str | None:
    """Why a value cannot be a string field (None and strs that encode are fine)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return expected_message("a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return UNENCODABLE_MESSAGE
    return None
