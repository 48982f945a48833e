"""The shared query language: parsing, canonical round trip, merge, and SQL run on real DuckDB.

Over 600 lines on purpose: the grammar's example table and the properties belong together.

The SQL properties use a small in-memory `events` table with the stored columns, rows with
NULLs and values full of `%`, `_`, `\\`, quotes and unicode, and compare DuckDB's answer with
a pure-Python reference predicate written from the documented semantics.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lake.contract import ACTOR_TYPES, CATEGORIES, OUTCOMES, SEVERITIES, TENANT_PATTERN, UsageError
from lake.query import SearchFilter, locked_connection, parse_query, parse_time, release

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def q(text: str) -> SearchFilter:
    return parse_query(text, now=NOW)


# -- keys, aliases, values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("tenant:acme", "tenants", "acme"),
        ("id:e-1", "event_ids", "e-1"),
        ("event:e-1", "event_ids", "e-1"),
        ("actor:alice", "actors", "alice"),
        ("user:alice", "actors", "alice"),
        ("actor_type:service", "actor_types", "service"),
        ("action:user.login", "actions", "user.login"),
        ("category:key_change", "categories", "key_change"),
        ("outcome:failure", "outcomes", "failure"),
        ("severity:critical", "severities", "critical"),
        ("ip:203.0.113.7", "ips", "203.0.113.7"),
        ("ip:2001:db8::1", "ips", "2001:db8::1"),
        ("target:u-1", "targets", "u-1"),
        ("target_type:key", "target_types", "key"),
        ("source:web", "sources", "web"),
        ("ACTOR:alice", "actors", "alice"),
        ("Outcome:FAILURE", "outcomes", "failure"),
    ],
)
def test_every_key_and_alias(query: str, field: str, value: str) -> None:
    f = q(query)
    assert getattr(f, field) == (value,)
    cleared: dict[str, Any] = {field: ()}
    assert replace(f, **cleared).is_empty()


@pytest.mark.parametrize(
    ("query", "key", "value"),
    [
        ("-actor:bot", "actor", "bot"),
        ("-user:bot*", "actor", "bot*"),
        ("-ip:10.0.0.1", "ip", "10.0.0.1"),
        ("-event:x", "id", "x"),
        ("-outcome:SUCCESS", "outcome", "success"),
        ("-tenant:acme", "tenant", "acme"),
    ],
)
def test_negation(query: str, key: str, value: str) -> None:
    assert q(query) == SearchFilter(exclude=((key, value),))


def test_comma_means_or_and_quotes_keep_commas() -> None:
    assert q("outcome:failure,unknown").outcomes == ("failure", "unknown")
    assert q('actor:alice,"bob, jr",carol').actors == ("alice", "bob, jr", "carol")
    assert q("-actor:a,b").exclude == (("actor", "a"), ("actor", "b"))
    assert q("actor:a actor:b").actors == ("a", "b")


def test_quoted_values_phrases_and_escapes() -> None:
    assert q('actor:"bob smith"').actors == ("bob smith",)
    assert q(r'actor:"say \"hi\" \\ o/"').actors == ('say "hi" \\ o/',)
    assert q(r'"C:\path"').text == ("C:\\path",)  # a lone backslash stays literal
    assert q('"free text" word -dash "a:b"').text == ("free text", "word", "-dash", "a:b")
    assert q('pre"fix mid"post').text == ("prefix midpost",)
    assert q('actor:"x"y').actors == ("xy",)
    assert q("  \t ").is_empty()
    assert q("") == SearchFilter()


def test_github_style_example() -> None:
    f = q(
        "actor:alice action:login outcome:failure ip:203.0.113.7 category:key_change "
        'created:>=2026-11-01 "free text" -actor:bot tenant:acme action:key.*'
    )
    assert f == SearchFilter(
        tenants=("acme",),
        actors=("alice",),
        actions=("login", "key.*"),
        categories=("key_change",),
        outcomes=("failure",),
        ips=("203.0.113.7",),
        text=("free text",),
        exclude=(("actor", "bot"),),
        since=utc(2026, 11, 1),
    )


def test_prefix_star_only_trailing() -> None:
    assert q("action:key.*").actions == ("key.*",)
    assert q("actor:a*b").actors == ("a*b",)
    assert q("category:key*").categories == ("key*",)
    assert q("tenant:ac*").tenants == ("ac*",)
    assert q("tenant:*").tenants == ("*",)


# -- created: ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "since", "until"),
    [
        (">=2026-11-01", utc(2026, 11, 1), None),
        (">2026-11-01", utc(2026, 11, 2), None),
        ("<=2026-11-01", None, utc(2026, 11, 2)),
        ("<2026-11-01", None, utc(2026, 11, 1)),
        ("2026-11-01", utc(2026, 11, 1), utc(2026, 11, 2)),
        ("2026-11-01..2026-11-03", utc(2026, 11, 1), utc(2026, 11, 4)),
        ("2026-11-01..*", utc(2026, 11, 1), None),
        ("*..2026-11-03", None, utc(2026, 11, 4)),
        (">=2026-11-01T10:00:00Z", utc(2026, 11, 1, 10), None),
        (">2026-11-01T10:00:00Z", utc(2026, 11, 1, 10) + US, None),
        ("<=2026-11-01T10:00:00Z", None, utc(2026, 11, 1, 10) + US),
        ("<2026-11-01T10:00:00+02:00", None, utc(2026, 11, 1, 8)),
        (
            "2026-11-01T10:00:00.5z",
            utc(2026, 11, 1, 10, 0, 0, 500000),
            utc(2026, 11, 1, 10, 0, 0, 500001),
        ),
        ("2026-11-01T10:00:00Z..2026-11-02", utc(2026, 11, 1, 10), utc(2026, 11, 3)),
        (">=7d", NOW - timedelta(days=7), None),
        (">=24h", NOW - timedelta(hours=24), None),
        (">=30m", NOW - timedelta(minutes=30), None),
        (">=2w", NOW - timedelta(weeks=2), None),
        ("<1d", None, NOW - timedelta(days=1)),
        ("7d", NOW - timedelta(days=7), None),
        ("2w..1w", NOW - timedelta(weeks=2), NOW - timedelta(weeks=1) + US),
    ],
)
def test_created_forms(value: str, since: datetime | None, until: datetime | None) -> None:
    f = q(f"created:{value}")
    assert (f.since, f.until) == (since, until)
    assert q(f"time:{value}") == q(f"date:{value}") == f


def test_created_aliases_and_intersection() -> None:
    f = q("created:>=2026-11-01 time:<2026-11-05 date:2026-10-30..2026-11-03 created:>=2026-10-01")
    assert (f.since, f.until) == (utc(2026, 11, 1), utc(2026, 11, 4))


def test_parse_time() -> None:
    assert parse_time("2026-11-01") == utc(2026, 11, 1)
    assert parse_time("2026-11-01T10:00:00-05:00") == utc(2026, 11, 1, 15)
    assert parse_time("7d", now=NOW) == NOW - timedelta(days=7)
    other_zone = NOW.astimezone(timezone(timedelta(hours=9)))
    assert parse_time("1h", now=other_zone) == NOW - timedelta(hours=1)
    assert parse_time("1h", now=other_zone).tzinfo == UTC
    assert abs(parse_time("0m") - datetime.now(UTC)) < timedelta(minutes=1)
    with pytest.raises(UsageError, match="offset"):
        parse_time("2026-11-01T10:00:00")
    with pytest.raises(UsageError, match="timezone-aware"):
        parse_time("1d", now=datetime(2026, 1, 1))


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("foo:bar", ["unknown qualifier 'foo:'", "known:", "actor:", "created:"]),
        ("http://x", ["unknown qualifier 'http:'"]),
        ("category:login", ["invalid category 'login'", "category:login", "key_change"]),
        ("category:zz*", ["matches no category", "authentication"]),
        ("outcome:fail", ["invalid outcome 'fail'", "success, failure, unknown"]),
        ("severity:urgent", ["invalid severity 'urgent'", "info, low, medium, high, critical"]),
        ("actor_type:robot", ["invalid actor_type 'robot'", "user, admin, service, system"]),
        ("-outcome:nope", ["invalid outcome 'nope'", "-outcome:nope"]),
        ("tenant:Acme", ["invalid tenant 'Acme'", "tenant:Acme", "a-z"]),
        ("tenant:-x", ["invalid tenant '-x'"]),
        ("actor:", ["empty value in 'actor:'"]),
        ('actor:""', ["empty value"]),
        ("actor:a,,b", ["empty value in 'actor:a,,b'"]),
        ("outcome:failure,", ["empty value"]),
        ('""', ["empty search phrase"]),
        ('actor:"alice', ["unterminated quote", "column 7"]),
        ('ok "phrase', ["unterminated quote", "column 4"]),
        (r'"trailing\"', ["unterminated quote"]),
        ("-created:7d", ["'-created:' cannot be negated"]),
        ("created:", ["created:", "empty value", "YYYY-MM-DD"]),
        ("created:>=", ["missing time after '>='"]),
        ("created:yesterday", ["created:yesterday", "invalid time 'yesterday'", "7d"]),
        ("created:2026-11-01T10:00:00", ["no UTC offset", "2026-11-01T10:00:00Z"]),
        ("created:2026-13-01", ["invalid time '2026-13-01'"]),
        ("created:2026-11-01,2026-11-02", ["one time or range"]),
        ("created:2026-11-05..2026-11-01", ["not before the end", "2026-11-01..2026-11-05"]),
        ("created:1w..2w", ["created:1w..2w", "not before the end", "2w..1w"]),
        ("created:>9999-12-31", ["out of range"]),
        ("created:>=999999999w", ["out of range"]),
        ("actor:a\x00", ["NUL"]),
    ],
)
def test_errors(query: str, fragments: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        q(query)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_filter_construction_checks() -> None:
    with pytest.raises(UsageError, match="cannot exclude on 'actors'"):
        SearchFilter(exclude=(("actors", "x"),))
    with pytest.raises(UsageError, match="timezone-aware"):
        SearchFilter(since=datetime(2026, 1, 1))
    f = SearchFilter(until=datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
    assert f.until == utc(2026, 1, 1) and f.until.tzinfo == UTC


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_parser_only_raises_usage_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        parse_query(text, now=NOW)


# -- merge, dates, describe ----------------------------------------------------------------


def test_merge_examples() -> None:
    a = q("tenant:acme actor:alice,bob* created:>=2026-11-01 -ip:10.0.0.1 foo")
    b = q("actor:bobby,carol outcome:failure created:2026-10-01..2026-11-05 -actor:x bar")
    m = a.merge(b)
    assert m.tenants == ("acme",)
    assert m.actors == ("bobby",)  # alice OR bob* AND bobby OR carol
    assert m.outcomes == ("failure",)
    assert m.text == ("foo", "bar")
    assert m.exclude == (("ip", "10.0.0.1"), ("actor", "x"))
    assert (m.since, m.until) == (utc(2026, 11, 1), utc(2026, 11, 6))
    assert q("action:key.*").merge(q("action:key.rotate*")).actions == ("key.rotate*",)
    assert q("action:key.rotate*").merge(q("action:key.*")).actions == ("key.rotate*",)
    assert a.merge(SearchFilter()) == a == SearchFilter().merge(a)


def test_merge_contradiction_matches_nothing() -> None:
    m = q("tenant:acme").merge(q("tenant:globex"))
    assert m.since is not None and m.since == m.until
    assert "nothing" in m.describe()
    assert parse_query(m.to_query_string()) == m


def test_dates_and_is_empty() -> None:
    assert SearchFilter().dates() == (None, None)
    assert SearchFilter().is_empty() and not q("x").is_empty()
    assert q("created:2026-11-01").dates() == (date(2026, 11, 1), date(2026, 11, 1))
    assert q("created:<2026-11-03T00:00:00.000001Z").dates() == (None, date(2026, 11, 3))
    f = SearchFilter(since=datetime(2026, 11, 1, 23, tzinfo=timezone(timedelta(hours=-5))))
    assert f.dates() == (date(2026, 11, 2), None)


def test_describe_and_canonical_string() -> None:
    assert SearchFilter().describe() == "all events"
    f = q('user:alice OUTCOME:failure,unknown -actor:bot created:2026-11-01..2026-11-03 "x y"')
    assert "alice" in f.describe() and "not actor bot" in f.describe()
    assert f.to_query_string() == (
        'actor:alice outcome:failure,unknown created:2026-11-01..2026-11-03 -actor:bot "x y"'
    )
    assert q("created:2026-11-01").to_query_string() == "created:2026-11-01"
    assert q('actor:"-x",a:b,"q\\"" "-t"').to_query_string() == r'actor:"-x","a:b","q\"" "-t"'


# -- round trip ----------------------------------------------------------------------------

ANY_VALUE = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=10)


def enum_values(allowed: tuple[str, ...]) -> st.SearchStrategy[str]:
    prefixes = [a[:k] + "*" for a in allowed for k in (0, 1, 3)]
    return st.sampled_from(list(allowed) + prefixes)


TENANTS = st.from_regex(TENANT_PATTERN, fullmatch=True) | st.from_regex(
    TENANT_PATTERN, fullmatch=True
).map(lambda t: t[:2] + "*")
VALID = {
    "tenant": TENANTS,
    "id": ANY_VALUE,
    "actor": ANY_VALUE,
    "actor_type": enum_values(ACTOR_TYPES),
    "action": ANY_VALUE,
    "category": enum_values(CATEGORIES),
    "outcome": enum_values(OUTCOMES),
    "severity": enum_values(SEVERITIES),
    "ip": ANY_VALUE,
    "target": ANY_VALUE,
    "target_type": ANY_VALUE,
    "source": ANY_VALUE,
}
FIELD_OF = {
    "tenant": "tenants",
    "id": "event_ids",
    "actor": "actors",
    "actor_type": "actor_types",
    "action": "actions",
    "category": "categories",
    "outcome": "outcomes",
    "severity": "severities",
    "ip": "ips",
    "target": "targets",
    "target_type": "target_types",
    "source": "sources",
}
MOMENTS = (
    st.none()
    | st.dates(date(1900, 1, 1), date(2200, 1, 1)).map(
        lambda d: datetime(d.year, d.month, d.day, tzinfo=UTC)
    )
    | st.datetimes(
        datetime(1900, 1, 1),
        datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=45))]),
    )
)


@st.composite
def valid_filters(draw: st.DrawFn) -> SearchFilter:
    kwargs: dict[str, Any] = {}
    for key, strategy in VALID.items():
        kwargs[FIELD_OF[key]] = tuple(draw(st.lists(strategy, max_size=2)))
    keys = st.sampled_from(sorted(VALID))
    exclude = draw(st.lists(keys.flatmap(lambda k: st.tuples(st.just(k), VALID[k])), max_size=2))
    return SearchFilter(
        **kwargs,
        text=tuple(draw(st.lists(ANY_VALUE, max_size=2))),
        exclude=tuple(exclude),
        since=draw(MOMENTS),
        until=draw(MOMENTS),
    )


@given(valid_filters())
@settings(max_examples=200, deadline=None)
def test_round_trip(f: SearchFilter) -> None:
    text = f.to_query_string()
    assert parse_query(text, now=NOW) == f
    assert f.describe()


# -- SQL on real DuckDB --------------------------------------------------------------------

COLUMNS = {
    "tenant": "VARCHAR",
    "event_date": "DATE",
    "event_id": "VARCHAR",
    "time": "TIMESTAMPTZ",
    "received_at": "TIMESTAMPTZ",
    "category": "VARCHAR",
    "action": "VARCHAR",
    "outcome": "VARCHAR",
    "severity": "VARCHAR",
    "actor_id": "VARCHAR",
    "actor_type": "VARCHAR",
    "actor_ip": "VARCHAR",
    "user_agent": "VARCHAR",
    "target_type": "VARCHAR",
    "target_id": "VARCHAR",
    "source": "VARCHAR",
    "details": "VARCHAR",
    "seq": "BIGINT",
    "batch_id": "VARCHAR",
    "leaf_hash": "BLOB",
}
COLUMN_OF = {
    "tenant": "tenant",
    "id": "event_id",
    "actor": "actor_id",
    "actor_type": "actor_type",
    "action": "action",
    "category": "category",
    "outcome": "outcome",
    "severity": "severity",
    "ip": "actor_ip",
    "target": "target_id",
    "target_type": "target_type",
    "source": "source",
}
TEXT_COLUMNS = ("actor_id", "target_id", "actor_ip", "user_agent", "source", "details")
NASTY = [
    "'; DROP TABLE events; --",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "a%b",
    "a_b",
    "back\\slash",
    "O'Brien",
    "日本",
    "Élise",
    "50% off_sale",
    "?",
    "$1",
    ") OR TRUE --",
]


def make_row(n: int, tenant: str, when: datetime, **values: str | None) -> dict[str, object]:
    row: dict[str, object] = {
        "tenant": tenant,
        "event_date": when.date(),
        "event_id": f"e{n}",
        "time": when,
        "received_at": when,
        "category": "authentication",
        "action": "user.login",
        "outcome": "success",
        "severity": "info",
        "actor_id": "alice",
        "actor_type": None,
        "actor_ip": None,
        "user_agent": None,
        "target_type": None,
        "target_id": None,
        "source": None,
        "details": None,
        "seq": n,
        "batch_id": "b",
        "leaf_hash": bytes(32),
    }
    row.update(values)
    return row


ROWS = [
    make_row(
        0,
        "acme",
        utc(2026, 11, 1),
        actor_type="user",
        actor_ip="203.0.113.7",
        user_agent="Mozilla/5.0",
        target_type="user",
        target_id="u-1",
        source="web",
        details='{"k":"v"}',
    ),
    make_row(
        1,
        "acme",
        utc(2026, 11, 1, 23, 59, 59, 999999),
        outcome="failure",
        severity="high",
        actor_id="bob",
        actor_type="user",
        actor_ip="203.0.113.8",
    ),
    make_row(
        2,
        "acme",
        utc(2026, 11, 2),
        category="key_change",
        action="key.rotate",
        severity="medium",
        actor_id="svc_backup",
        actor_type="service",
        user_agent="curl/8",
        target_type="key",
        target_id="k%1",
        source="cli",
        details='{"note":"50% off_sale"}',
    ),
    make_row(
        3,
        "globex",
        utc(2026, 11, 2, 12, 30),
        category="admin_action",
        action="user.delete",
        outcome="unknown",
        severity="critical",
        actor_id="O'Brien",
        actor_type="admin",
        actor_ip="2001:db8::1",
        target_type="user",
        target_id="u_2",
        source="api",
        details='{"q":"\\\\path"}',
    ),
    make_row(
        4,
        "globex",
        utc(2026, 11, 3, 5),
        category="flag_change",
        action="flag.set",
        severity="low",
        actor_id="a%b",
        actor_type="system",
        source="'; DROP TABLE events; --",
    ),
    make_row(
        5,
        "acme-eu",
        utc(2026, 11, 3, 23),
        category="account_recovery",
        action="recovery.start",
        outcome="failure",
        actor_id="alice_smith",
        user_agent="Ünïcode ÉTÉ 日本",
        target_id='quo"te',
    ),
    make_row(
        6,
        "acme_eu",
        utc(2026, 11, 4, 0, 0, 0, 1),
        actor_id="a_b",
        actor_type="user",
        actor_ip="10.0.0.1",
        target_id="back\\slash",
        details='{"a":"b"}',
    ),
    make_row(
        7,
        "acme",
        utc(2026, 11, 5, 8),
        actor_id="Élise",
        actor_type="admin",
        actor_ip="10.0.0.10",
        target_type="flag",
        source="web",
        details='{"city":"日本"}',
    ),
    make_row(
        8,
        "acme",
        utc(2026, 10, 31, 23, 59),
        action="key.create",
        actor_id="axb",
        target_id="%",
        source="Web",
    ),
    make_row(9, "globex", utc(2026, 11, 6, 1), actor_id="_", target_id="_", details="{}"),
]


def reference(f: SearchFilter, row: dict[str, object]) -> bool:
    """The documented semantics, in plain Python."""

    def hit(value: str, cell: object) -> bool:
        if cell is None:
            return False
        assert isinstance(cell, str)
        return cell.startswith(value[:-1]) if value.endswith("*") else cell == value

    for key, column in COLUMN_OF.items():
        values = getattr(f, FIELD_OF[key])
        if values and not any(hit(v, row[column]) for v in values):
            return False
    for term in f.text:
        cells = [row[c] for c in TEXT_COLUMNS]
        if not any(isinstance(c, str) and term.lower() in c.lower() for c in cells):
            return False
    if any(hit(value, row[COLUMN_OF[key]]) for key, value in f.exclude):
        return False
    when = row["time"]
    assert isinstance(when, datetime)
    return (f.since is None or when >= f.since) and (f.until is None or when < f.until)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    def setup(connection: duckdb.DuckDBPyConnection) -> None:
        connection.execute("SET TimeZone = 'Asia/Kathmandu'")  # +05:45: UTC must not be assumed
        connection.execute(
            "CREATE TABLE events (" + ", ".join(f"{c} {t}" for c, t in COLUMNS.items()) + ")"
        )
        connection.executemany(
            f"INSERT INTO events VALUES ({', '.join('?' for _ in COLUMNS)})",
            [[row[c] for c in COLUMNS] for row in ROWS],
        )

    # The locked connection every reader gets, so filters are checked where they run.
    connection = locked_connection([], setup)
    yield connection
    release(connection)


def run(con: duckdb.DuckDBPyConnection, f: SearchFilter) -> set[str]:
    sql, params = f.to_sql()
    return {
        r[0] for r in con.execute(f"SELECT event_id FROM events WHERE {sql}", params).fetchall()
    }


def expected(f: SearchFilter) -> set[str]:
    return {str(row["event_id"]) for row in ROWS if reference(f, row)}


def pool(column: str) -> list[str]:
    seen = sorted({str(row[column]) for row in ROWS if row[column] is not None})
    prefixes = [v[:k] + "*" for v in seen for k in (0, 1, 2)]
    return sorted(set(seen + prefixes + NASTY + [n + "*" for n in NASTY]))


TEXT_POOL = sorted(
    {
        str(row[c])[i : i + k]
        for row in ROWS
        for c in TEXT_COLUMNS
        if row[c]
        for i in (0, 2)
        for k in (1, 3)
    }
    - {""}
)
TIMES = sorted({t for row in ROWS if isinstance(t := row["time"], datetime)}, key=str)
SQL_MOMENTS = (
    st.none()
    | st.none()
    | st.sampled_from(TIMES).flatmap(
        lambda t: st.sampled_from(
            [t, t - US, t + US, t.replace(hour=0, minute=0, second=0, microsecond=0)]
        )
    )
)
NASTY_TEXT = st.text(st.sampled_from("ab_%\\'\";-* Éé日?"), min_size=1, max_size=6)


def near(value: object) -> st.SearchStrategy[str]:
    """`value` itself or a prefix of it (`*`), when the cell is not NULL."""
    if not isinstance(value, str):
        return NASTY_TEXT
    return st.sampled_from([value, value + "*", value[:1] + "*", value[:3] + "*"])


def substrings(row: dict[str, object]) -> st.SearchStrategy[str]:
    """Short pieces of the row's text cells, in their own, upper or lower case."""
    pieces = {
        cell[i : i + k]
        for cell in (row[col] for col in TEXT_COLUMNS)
        if isinstance(cell, str)
        for i in range(len(cell))
        for k in (1, 2, 4)
    }
    if not pieces:
        return NASTY_TEXT
    return st.sampled_from(sorted(pieces)).flatmap(
        lambda t: st.sampled_from([t, t.upper(), t.lower()])
    )


@st.composite
def sql_filters(draw: st.DrawFn) -> SearchFilter:
    """Filters aimed near one row of ROWS (so that results are rarely empty) mixed with values
    from other rows and nasty strings."""
    row = draw(st.sampled_from(ROWS))
    kwargs: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(COLUMN_OF)), max_size=2, unique=True)):
        column = COLUMN_OF[key]
        values = near(row[column]) | near(row[column]) | st.sampled_from(pool(column)) | NASTY_TEXT
        kwargs[FIELD_OF[key]] = tuple(draw(st.lists(values, min_size=1, max_size=3)))
    excluded = st.sampled_from(sorted(COLUMN_OF)).flatmap(
        lambda k: st.tuples(st.just(k), st.sampled_from(pool(COLUMN_OF[k])) | NASTY_TEXT)
    )
    when = row["time"]
    assert isinstance(when, datetime)
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    since = st.none() | st.none() | st.sampled_from([when, when + US, midnight]) | SQL_MOMENTS
    until = (
        st.none()
        | st.none()
        | st.sampled_from([when, when + US, midnight + timedelta(days=1)])
        | SQL_MOMENTS
    )
    return SearchFilter(
        **kwargs,
        text=tuple(draw(st.lists(substrings(row) | substrings(row) | NASTY_TEXT, max_size=2))),
        exclude=tuple(draw(st.lists(excluded, max_size=1))),
        since=draw(since),
        until=draw(until),
    )


def all_values(f: SearchFilter) -> list[str]:
    out: list[str] = list(f.text) + [v for _, v in f.exclude]
    for name in FIELD_OF.values():
        out.extend(getattr(f, name))
    return out


def placeholders(f: SearchFilter) -> SearchFilter:
    """The same filter shape with every value replaced by a harmless one."""

    def swap(v: str) -> str:
        return "x*" if v.endswith("*") else "x"

    changes: dict[str, Any] = {
        name: tuple(swap(v) for v in getattr(f, name)) for name in FIELD_OF.values()
    }
    return replace(
        f,
        **changes,
        text=tuple("x" for _ in f.text),
        exclude=tuple((k, swap(v)) for k, v in f.exclude),
    )


SQL_WORDS = {
    *COLUMNS,
    *("AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "ESCAPE", "coalesce", "FALSE", "TRUE"),
}
MARKERS = set(';%"日éÉ$?')


@given(sql_filters())
@settings(max_examples=200, deadline=None)
def test_sql_matches_reference_and_never_inlines_values(
    con: duckdb.DuckDBPyConnection, f: SearchFilter
) -> None:
    sql, params = f.to_sql()
    # The text depends only on the filter's shape, never on its values...
    assert sql == placeholders(f).to_sql()[0]
    # ...contains no string literal but the LIKE escape character...
    assert "'" not in sql.replace("ESCAPE '\\'", "")
    # ...and only known words; values carrying characters SQL never uses are absent.
    assert set(re.findall(r"[A-Za-z_]+", sql)) <= SQL_WORDS
    assert sql.count("?") == len(params)
    for value in all_values(f):
        if set(value) & (MARKERS - {"?"}):
            assert value not in sql
    assert run(con, f) == expected(f)


@given(sql_filters(), sql_filters())
@settings(max_examples=100, deadline=None)
def test_merge_is_and(con: duckdb.DuckDBPyConnection, a: SearchFilter, b: SearchFilter) -> None:
    assert run(con, a.merge(b)) == run(con, a) & run(con, b)


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("", {f"e{n}" for n in range(10)}),
        ("actor:a%b", {"e4"}),  # % is literal
        ("actor:a%*", {"e4"}),
        ("actor:a_*", {"e6"}),  # _ is literal: not alice_smith, not axb
        ("actor:a*", {"e0", "e4", "e5", "e6", "e8"}),
        ("actor:_", {"e9"}),
        ("target:%", {"e8"}),
        ('target:"back\\\\slash"', {"e6"}),
        ("target:back\\*", {"e6"}),
        ("%", {"e2", "e4", "e8"}),  # free text: literal %, actor/target/details
        ("_", {"e2", "e3", "e5", "e6", "e9"}),
        ("web", {"e0", "e7", "e8"}),  # case-insensitive
        ("été 日本", {"e5"}),
        ('"DROP TABLE"', {"e4"}),
        ("-actor_type:user", {"e2", "e3", "e4", "e5", "e7", "e8", "e9"}),  # NULLs kept
        ("-ip:10.0.0.1*", {"e0", "e1", "e2", "e3", "e4", "e5", "e8", "e9"}),
        ("actor_type:*", {"e0", "e1", "e2", "e3", "e4", "e6", "e7"}),
        ("ip:2001:db8::1", {"e3"}),
        ("created:2026-11-01", {"e0", "e1"}),
        ("created:2026-11-02..2026-11-03", {"e2", "e3", "e4", "e5"}),
        ("created:>2026-11-03", {"e6", "e7", "e9"}),
        ("created:<=2026-10-31", {"e8"}),
        (
            "created:>=2026-11-04T00:00:00.000001Z created:<2026-11-05T08:00:00.000001Z",
            {"e6", "e7"},
        ),
        ("tenant:acme*", {"e0", "e1", "e2", "e5", "e6", "e7", "e8"}),
        ("tenant:acme,globex outcome:failure,unknown", {"e1", "e3"}),
        ("category:key_change action:key.*", {"e2"}),
        ("action:key.* -action:key.rotate", {"e8"}),
    ],
)
def test_sql_examples(con: duckdb.DuckDBPyConnection, query: str, ids: set[str]) -> None:
    f = q(query)
    assert run(con, f) == ids == expected(f)


def test_sql_shape() -> None:
    assert SearchFilter().to_sql() == ("TRUE", [])
    sql, params = q("created:2026-11-01..2026-11-02").to_sql()
    assert sql == "event_date >= ? AND event_date <= ? AND time >= ? AND time < ?"
    assert params == [date(2026, 11, 1), date(2026, 11, 2), utc(2026, 11, 1), utc(2026, 11, 3)]
    sql, params = q("actor:50%_off\\*").to_sql()
    assert sql == "actor_id LIKE ? ESCAPE '\\'"
    assert params == ["50\\%\\_off\\\\%"]
    assert {f.name for f in fields(SearchFilter)} >= set(FIELD_OF.values())
