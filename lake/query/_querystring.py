"""One search-filter model and one query-string parser for every way of searching events.

The CLI, the TUI and the dashboard all let a person narrow the audit log with the same
GitHub-audit-log-style language (`actor:alice outcome:failure created:>=7d -actor:bot
"free text"`). Parsing it in three places would give three dialects and three sets of
bugs, so they all call `parse_query` and get a `SearchFilter`, which can:

- turn itself back into its canonical query string (`parse_query(f.to_query_string()) == f`),
  so a filter can be shown, edited, bookmarked or put in a URL;
- turn itself into a DuckDB WHERE fragment over the `events` view. User values only ever
  travel as `?` parameters; the SQL text is built from a fixed mapping of column names and
  constant operators, never from anything the user typed. Prefix and free-text matches
  escape `\\`, `%` and `_` and use `ESCAPE '\\'`, so a user's `%` or `_` is literal.

Semantics: values of one qualifier are OR'd, qualifiers are AND'd, every free-text term
must match (case-insensitively) one of the text columns, and a value ending in `*` is a
prefix match. Exclusions (`-actor:bot`) keep rows whose column is NULL.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Final

from lake.contract import ACTOR_TYPES, CATEGORIES, OUTCOMES, SEVERITIES, UsageError, is_valid_tenant

__all__ = ["SearchFilter", "parse_query", "parse_time"]

# Canonical qualifier -> (SearchFilter field, stored column). Column names in SQL come only
# from here (and TEXT_COLUMNS); this is also the order of `to_query_string` and `to_sql`.
FIELDS: Final[dict[str, tuple[str, str]]] = {
    "tenant": ("tenants", "tenant"),
    "id": ("event_ids", "event_id"),
    "actor": ("actors", "actor_id"),
    "actor_type": ("actor_types", "actor_type"),
    "action": ("actions", "action"),
    "category": ("categories", "category"),
    "outcome": ("outcomes", "outcome"),
    "severity": ("severities", "severity"),
    "ip": ("ips", "actor_ip"),
    "target": ("targets", "target_id"),
    "target_type": ("target_types", "target_type"),
    "source": ("sources", "source"),
}
# Every spelling a user may type (lower-cased) -> canonical qualifier.
QUALIFIERS: Final[dict[str, str]] = {
    **{key: key for key in FIELDS},
    "event": "id",
    "user": "actor",
    "created": "created",
    "time": "created",
    "date": "created",
}
# Columns a free-text term is searched in.
TEXT_COLUMNS: Final = ("actor_id", "target_id", "actor_ip", "user_agent", "source", "details")
ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "category": CATEGORIES,
    "outcome": OUTCOMES,
    "severity": SEVERITIES,
    "actor_type": ACTOR_TYPES,
}

_US: Final = timedelta(microseconds=1)
_DAY: Final = timedelta(days=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?"
)
_RELATIVE_RE: Final = re.compile(r"(\d{1,9})([smhdw])")
_RELATIVE_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_FORMS: Final = (
    "expected YYYY-MM-DD, an RFC 3339 timestamp with an offset (2026-11-01T10:00:00Z)"
    " or an age like 30m, 24h, 7d, 2w"
)
_ESCAPE: Final = "ESCAPE '\\'"


@dataclass(frozen=True)
class SearchFilter:
    """What to search for; every field empty (or None) means "no restriction".

    Values of one field are OR'd, fields are AND'd, each `text` term must match. A value
    ending in `*` is a prefix match. `exclude` holds negated `(qualifier, value)` pairs with
    the canonical qualifier names of `FIELDS` ("actor", "ip", ...). `since` is inclusive,
    `until` exclusive; both are tz-aware and normalised to UTC.
    """

    tenants: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    actor_types: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    target_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    exclude: tuple[tuple[str, str], ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # be forgiving to callers passing lists
                object.__setattr__(self, f.name, tuple(value))
        object.__setattr__(self, "exclude", tuple((k, v) for k, v in self.exclude))
        for key, _ in self.exclude:
            if key not in FIELDS:
                raise UsageError(
                    f"cannot exclude on {key!r} — known: {', '.join(FIELDS)}",
                )
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None:
                object.__setattr__(self, name, _utc(moment, name))

    # -- combining ---------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when the filter restricts nothing (matches every event)."""
        return self == SearchFilter()

    def merge(self, other: SearchFilter) -> SearchFilter:
        """Both filters at once (AND): an event matches the result iff it matches both.

        Text terms and exclusions are concatenated; the time range is the intersection.
        When both sides restrict the same field, the result keeps the values (and
        prefixes) that satisfy both sides — concatenating them would OR them and widen
        the search (a dashboard's `tenant:acme` plus a user's `tenant:globex` must not
        show globex). If that intersection is empty, the result matches nothing: it gets
        an empty time range (`since == until`).
        """
        changes: dict[str, tuple[str, ...]] = {}
        contradiction = False
        for name, _ in FIELDS.values():
            mine: tuple[str, ...] = getattr(self, name)
            theirs: tuple[str, ...] = getattr(other, name)
            if mine and theirs:
                both = _intersect(mine, theirs)
                contradiction = contradiction or not both
                changes[name] = both or mine
            else:
                changes[name] = mine or theirs
        since = _later(self.since, other.since)
        until = _earlier(self.until, other.until)
        if contradiction:
            since = until = since or until or _EPOCH
        return SearchFilter(
            **changes,
            text=self.text + other.text,
            exclude=self.exclude + other.exclude,
            since=since,
            until=until,
        )

    # -- rendering ---------------------------------------------------------------------

    def to_query_string(self) -> str:
        """The canonical query string: `parse_query(f.to_query_string()) == f`."""
        tokens: list[str] = []
        for key, (name, _) in FIELDS.items():
            values: tuple[str, ...] = getattr(self, name)
            if values:
                tokens.append(f"{key}:" + ",".join(_quote(v) for v in values))
        tokens.extend(_created_tokens(self.since, self.until))
        tokens.extend(f"-{key}:{_quote(value)}" for key, value in self.exclude)
        tokens.extend(_quote(term) for term in self.text)
        return " ".join(tokens)

    def describe(self) -> str:
        """A short human summary for a status bar (wording is not a contract)."""
        if self.is_empty():
            return "all events"
        parts: list[str] = []
        for key, (name, _) in FIELDS.items():
            values: tuple[str, ...] = getattr(self, name)
            if values:
                parts.append(f"{key} {' or '.join(values)}")
        parts.extend(f"not {key} {value}" for key, value in self.exclude)
        parts.extend(f"“{term}”" for term in self.text)
        if self.since is not None and self.until is not None and self.since >= self.until:
            parts.append("nothing (empty time range)")
        else:
            if self.since is not None:
                parts.append(f"from {_show(self.since)}")
            if self.until is not None:
                parts.append(f"before {_show(self.until)}")
        return " · ".join(parts)

    def dates(self) -> tuple[date | None, date | None]:
        """The inclusive UTC `event_date` range implied by since/until (None = open)."""
        first = self.since.date() if self.since is not None else None
        last: date | None = None
        if self.until is not None:
            try:
                last = (self.until - _US).date()
            except OverflowError:  # until is datetime.min: nothing can match anyway
                last = self.until.date()
        return first, last

    def to_sql(self) -> tuple[str, list[object]]:
        """A DuckDB WHERE fragment over the `events` columns and its `?` parameters.

        Only constant SQL and column names from `FIELDS`/`TEXT_COLUMNS` appear in the text;
        every user value is a parameter. The `event_date` bounds duplicate the time bounds
        so that DuckDB can prune hive partitions.
        """
        clauses: list[str] = []
        params: list[object] = []
        first, last = self.dates()
        if first is not None:
            clauses.append("event_date >= ?")
            params.append(first)
        if last is not None:
            clauses.append("event_date <= ?")
            params.append(last)
        if self.since is not None:
            clauses.append("time >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            params.append(self.until)
        for name, column in FIELDS.values():
            values: tuple[str, ...] = getattr(self, name)
            if values:
                clauses.append(_match_any(column, values, params))
        for term in self.text:
            pattern = "%" + _escape_like(term) + "%"
            ors = " OR ".join(f"coalesce({c} ILIKE ? {_ESCAPE}, FALSE)" for c in TEXT_COLUMNS)
            clauses.append(f"({ors})")
            params.extend([pattern] * len(TEXT_COLUMNS))
        for key, value in self.exclude:
            column = FIELDS[key][1]
            clauses.append(f"NOT coalesce({_match_one(column, value, params)}, FALSE)")
        return (" AND ".join(clauses) if clauses else "TRUE"), params


# -- SQL helpers -------------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _match_one(column: str, value: str, params: list[object]) -> str:
    if value.endswith("*"):
        params.append(_escape_like(value[:-1]) + "%")
        return f"{column} LIKE ? {_ESCAPE}"
    params.append(value)
    return f"{column} = ?"


def _match_any(column: str, values: tuple[str, ...], params: list[object]) -> str:
    exact = [v for v in values if not v.endswith("*")]
    prefixes = [v for v in values if v.endswith("*")]
    ors: list[str] = []
    if len(exact) == 1:
        ors.append(_match_one(column, exact[0], params))
    elif exact:
        ors.append(f"{column} IN ({', '.join('?' for _ in exact)})")
        params.extend(exact)
    ors.extend(_match_one(column, p, params) for p in prefixes)
    return ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"


# -- merge helpers -----------------------------------------------------------------------


def _intersect(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Values/prefixes matching both OR-lists `a` and `b`, in order, without duplicates."""
    out: list[str] = []
    for x in a:
        for y in b:
            both = _intersect_one(x, y)
            if both is not None and both not in out:
                out.append(both)
    return tuple(out)


def _intersect_one(x: str, y: str) -> str | None:
    x_prefix, y_prefix = x.endswith("*"), y.endswith("*")
    if x_prefix and y_prefix:
        px, py = x[:-1], y[:-1]
        return x if px.startswith(py) else y if py.startswith(px) else None
    if x_prefix:
        return y if y.startswith(x[:-1]) else None
    if y_prefix:
        return x if x.startswith(y[:-1]) else None
    return x if x == y else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


# -- rendering helpers -------------------------------------------------------------------


def _needs_quotes(value: str) -> bool:
    return not value or value.startswith("-") or any(c.isspace() or c in '",:\\' for c in value)


def _quote(value: str) -> str:
    if not _needs_quotes(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_midnight(moment: datetime) -> bool:
    return moment.timetz().replace(tzinfo=None) == datetime.min.time()


def _format_time(moment: datetime) -> str:
    if _is_midnight(moment):
        return moment.date().isoformat()
    return moment.replace(tzinfo=None).isoformat() + "Z"


def _show(moment: datetime) -> str:
    if _is_midnight(moment):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _created_tokens(since: datetime | None, until: datetime | None) -> list[str]:
    if (
        since is not None
        and until is not None
        and since < until
        and _is_midnight(since)
        and _is_midnight(until)
    ):  # whole UTC days: the short, inclusive `created:X..Y` form
        first, last = since.date(), (until - _DAY).date()
        return [f"created:{first}" if first == last else f"created:{first}..{last}"]
    tokens: list[str] = []
    if since is not None:
        tokens.append(f"created:>={_format_time(since)}")
    if until is not None:
        tokens.append(f"created:<{_format_time(until)}")
    return tokens


# -- time parsing ------------------------------------------------------------------------


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else _utc(now, "now")


def _parse_point(value: str, now: datetime) -> tuple[datetime, bool]:
    """(the moment `value` names, whether it names a whole UTC day)."""
    text = value.strip()
    try:
        if _DATE_RE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC), True
        relative = _RELATIVE_RE.fullmatch(text.lower())
        if relative:
            amount, unit = int(relative.group(1)), _RELATIVE_UNITS[relative.group(2)]
            return now - timedelta(**{unit: amount}), False
        stamp = _TIMESTAMP_RE.fullmatch(text.upper())
        if stamp:
            if stamp.group(2) is None:
                raise UsageError(
                    f"timestamp {value!r} has no UTC offset; add one, e.g. "
                    f"{stamp.group(1).replace(' ', 'T')}Z or {stamp.group(1).replace(' ', 'T')}"
                    "+02:00"
                )
            return datetime.fromisoformat(text.upper()).astimezone(UTC), False
    except OverflowError:
        raise UsageError(f"time {value!r} is out of range") from None
    except ValueError as exc:
        raise UsageError(f"invalid time {value!r}: {exc}") from None
    raise UsageError(f"invalid time {value!r} — {_TIME_FORMS}")


def _after(point: tuple[datetime, bool], value: str) -> datetime:
    """The first moment after `point`: the next day for a date, the next µs otherwise."""
    try:
        return point[0] + (_DAY if point[1] else _US)
    except OverflowError:
        raise UsageError(f"time {value!r} is out of range") from None


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """A tz-aware UTC datetime from a date (UTC midnight), an RFC 3339 timestamp with
    offset, or an age before `now` (`30m`, `24h`, `7d`, `2w`). Used for `created:` and
    for the CLI's `--since/--until`."""
    return _parse_point(value, _now(now))[0]


def _parse_created(value: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(since, until) for one `created:` value."""
    if not value.strip():
        raise UsageError(f"empty value — {_TIME_FORMS}")
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            rest = value[len(op) :]
            if not rest.strip():
                raise UsageError(f"missing time after {op!r}")
            point = _parse_point(rest, now)
            if op == ">=":
                return point[0], None
            if op == ">":
                return _after(point, rest), None
            if op == "<=":
                return None, _after(point, rest)
            return None, point[0]
    if ".." in value:
        low, _, high = value.partition("..")
        since = None if low.strip() == "*" else _parse_point(low, now)[0]
        until = None if high.strip() == "*" else _after(_parse_point(high, now), high)
        if since is not None and until is not None and since >= until:
            raise UsageError(
                f"the start is not before the end, so nothing can match; swap them: "
                f"{high.strip()}..{low.strip()}"
            )
        return since, until
    point = _parse_point(value, now)
    if _RELATIVE_RE.fullmatch(value.strip().lower()):
        return point[0], None  # `created:7d` = within the last 7 days
    return point[0], _after(point, value)


# -- query parsing -----------------------------------------------------------------------

_Segment = tuple[str, bool]  # (text, was quoted)


def _tokenize(text: str) -> list[list[_Segment]]:
    """Whitespace-separated tokens, each a list of quoted/unquoted segments."""
    tokens: list[list[_Segment]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        segments: list[_Segment] = []
        while i < n and not text[i].isspace():
            if text[i] == '"':
                start, i = i, i + 1
                buf: list[str] = []
                while True:
                    if i >= n:
                        raise UsageError(
                            f"unterminated quote at column {start + 1}: "
                            f"{text[start : start + 30]!r}"
                            ' — close it with " (write \\" for a quote inside)'
                        )
                    c = text[i]
                    if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        buf.append(text[i + 1])
                        i += 2
                    elif c == '"':
                        i += 1
                        break
                    else:
                        buf.append(c)
                        i += 1
                segments.append(("".join(buf), True))
            else:
                start = i
                while i < n and not text[i].isspace() and text[i] != '"':
                    i += 1
                segments.append((text[start:i], False))
        tokens.append(segments)
    return tokens


def _split_values(segments: list[_Segment]) -> list[str]:
    """The comma-separated values of a qualifier; commas inside quotes are literal."""
    items: list[list[str]] = [[]]
    for part, quoted in segments:
        if quoted:
            items[-1].append(part)
            continue
        first, *rest = part.split(",")
        items[-1].append(first)
        items.extend([p] for p in rest)
    return ["".join(item) for item in items]


def _check_value(key: str, qualifier: str, value: str) -> str:
    """The value as stored in the filter (enums lower-cased), or a UsageError."""
    shown = f"{qualifier}{_quote(value)}"
    if key in ENUMS:
        allowed = ENUMS[key]
        value = value.lower()
        if value.endswith("*"):
            if not any(a.startswith(value[:-1]) for a in allowed):
                raise UsageError(f"{shown!r} matches no {key} — allowed: {', '.join(allowed)}")
        elif value not in allowed:
            raise UsageError(
                f"invalid {key} {value!r} in {shown!r} — allowed: {', '.join(allowed)}"
            )
    elif key == "tenant":
        stem = value[:-1] if value.endswith("*") else value
        if not (is_valid_tenant(stem) or (value.endswith("*") and not stem)):
            raise UsageError(
                f"invalid tenant {value!r} in {shown!r} — a tenant is 1-63 of a-z, 0-9, '_', '-',"
                " starting with a letter or digit (a trailing * matches a prefix)"
            )
    return value


def _did_you_mean(name: str) -> str:
    """` (did you mean 'actor:'?)` for a near miss of a known qualifier, else ''."""
    close = difflib.get_close_matches(name.lower(), QUALIFIERS, n=1, cutoff=0.6)
    return f" (did you mean {close[0] + ':'!r}?)" if close else ""


def parse_query(text: str, *, now: datetime | None = None) -> SearchFilter:
    """Parse a GitHub-audit-log-style query string into a `SearchFilter`.

    `key:value`, `key:"quoted value"`, `key:a,b` (OR), `-key:value` (exclude), bare words
    and `"quoted phrases"` (free text), `created:>=7d` / `created:2026-11-01..2026-11-03`.
    Relative times count back from `now` (default: the current time). Raises `UsageError`
    naming the offending qualifier and value and what is allowed.
    """
    if "\x00" in text:
        raise UsageError("the query contains a NUL character")
    moment = _now(now)
    values: dict[str, list[str]] = {name: [] for name, _ in FIELDS.values()}
    terms: list[str] = []
    exclude: list[tuple[str, str]] = []
    since: datetime | None = None
    until: datetime | None = None
    for segments in _tokenize(text):
        head, head_quoted = segments[0]
        colon = head.find(":")
        key_text = head[:colon]
        if head_quoted or colon <= 0 or key_text == "-":
            term = "".join(part for part, _ in segments)
            if not term:
                raise UsageError(
                    'empty search phrase "" — remove it or put text between the quotes'
                )
            terms.append(term)
            continue
        negated = key_text.startswith("-")
        name = key_text[1:] if negated else key_text
        key = QUALIFIERS.get(name.lower())
        if key is None:
            raise UsageError(
                f"unknown qualifier {name + ':'!r}{_did_you_mean(name)} — known: "
                + ", ".join(f"{q}:" for q in QUALIFIERS)
                + ' (quote free text that contains a colon: "a:b")'
            )
        qualifier = f"{'-' if negated else ''}{name}:"
        rest = [(head[colon + 1 :], False), *segments[1:]]
        if key == "created":
            if negated:
                raise UsageError(
                    f"{qualifier!r} cannot be negated — use created:<X or created:>X instead"
                )
            if any("," in part for part, quoted in rest if not quoted):
                raise UsageError(f"{qualifier!r} takes one time or range (X..Y), not a list")
            raw = "".join(p for p, _ in rest)
            try:
                low, high = _parse_created(raw, moment)
            except UsageError as exc:
                raise UsageError(f"in {qualifier + raw!r}: {exc}") from None
            since, until = _later(since, low), _earlier(until, high)
            continue
        for value in _split_values(rest):
            if not value:
                raw = qualifier + "".join(_quote(p) if q else p for p, q in rest)
                raise UsageError(f"empty value in {raw!r} — give a value, e.g. {qualifier}VALUE")
            checked = _check_value(key, qualifier, value)
            if negated:
                exclude.append((key, checked))
            else:
                values[FIELDS[key][0]].append(checked)
    return SearchFilter(
        **{name: tuple(vs) for name, vs in values.items()},
        text=tuple(terms),
        exclude=tuple(exclude),
        since=since,
        until=until,
    )
