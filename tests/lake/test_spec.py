"""`lake.spec`: the wire format declared once, importable without the heavy packages.

The scalar check re-implements two things the columnar validator borrows from C
libraries (orjson's canonical JSON, Arrow's timestamp parser); these tests hold them to
the originals, so `check_event` and `validate` cannot drift apart on them.
"""

from __future__ import annotations

import enum
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lake.contract
import lake.spec
from lake.contract import EVENTS_SCHEMA, OUTPUT_SCHEMA, UTC_US
from lake.spec import (
    OBJECT_FIELDS,
    TEXT_FIELDS,
    TOP_FIELDS,
    WIRE_FIELDS,
    canonical_json,
    rfc3339_micros,
)

HEAVY = ("pyarrow", "numpy", "orjson", "deltalake", "duckdb", "polars")


def test_a_fresh_interpreter_imports_the_spec_without_heavy_packages() -> None:
    code = (
        "import sys; import lake.spec; from lake.spec import check_event, Issue; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_the_contract_re_exports_the_spec_s_objects() -> None:
    for name in ("check_event", "Issue", "ValidationError", "UsageError", "LakeError"):
        assert getattr(lake.contract, name) is getattr(lake.spec, name)
    for name in ("CATEGORIES", "OUTCOMES", "SEVERITIES", "WIRE_FIELDS", "TimeWindow"):
        assert getattr(lake.contract, name) is getattr(lake.spec, name)


def test_the_declaration_covers_every_wire_field_and_stored_column() -> None:
    declared = {f.path for f in TOP_FIELDS} | {o.name for o in OBJECT_FIELDS} | {"details"}
    assert declared == set(WIRE_FIELDS)
    stored = set(OUTPUT_SCHEMA.names) - {"event_date"}
    assert {f.column for f in TEXT_FIELDS} | {"details"} == stored
    for f in TEXT_FIELDS:
        nullable = EVENTS_SCHEMA.field(f.column).nullable
        # A required field (or one with a default, or the id: assigned when absent) is a
        # non-null column, and back.
        assert nullable == (not f.required and f.default is None and f.path != "id"), f.path


# -- canonical JSON: byte for byte, error for error, what orjson writes ----------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "\x7f\x00\x1f\u2028", '"\\/', "é€😀"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        | st.dictionaries(st.integers(0, 3), inner, min_size=1, max_size=2)
        | st.tuples(inner, inner)
    ),
    max_leaves=8,
)


def orjson_or_error(value: Any) -> bytes | str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        return f"TypeError: {exc}"


def ours_or_error(value: Any) -> bytes | str:
    try:
        return canonical_json(value)
    except TypeError as exc:
        return f"TypeError: {exc}"


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_canonical_json_writes_what_orjson_writes(value: Any) -> None:
    assert ours_or_error(value) == orjson_or_error(value)


@settings(max_examples=1500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_written_as_orjson_writes_them(value: float) -> None:
    assert canonical_json(value) == orjson.dumps(value)


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 10, 0, 0, 5),
        date(2026, 11, 1),
        time(10, 0, 1, 7),
        uuid.UUID(int=7),
        Colour.RED,
        Level.HIGH,
        Name("x"),
        b"bytes",
        1.5j,
        {"a": {"b": [1e-5, 1e16, -1e-7, 2.5e-300]}},
        [[[[[[]]]]]] * 3,
    ],
)
def test_python_values_an_sdk_caller_may_pass(value: Any) -> None:
    assert ours_or_error({"v": value}) == orjson_or_error({"v": value})


def test_nesting_is_refused_at_orjson_s_depth() -> None:
    for depth in (253, 254, 255):
        value: Any = {}
        for _ in range(depth):
            value = {"a": value}
        assert ours_or_error(value) == orjson_or_error(value)


# -- time: the instants Arrow's parser reads, and the ones it refuses ------------------------


def arrow_micros(text: str) -> int | None:
    try:
        return int(pa.scalar(text.upper()).cast(UTC_US).cast(pa.int64()).as_py())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda n: f"{n:02d}")


shaped_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}{off}",
    st.one_of(st.integers(0, 9999), st.sampled_from([0, 1, 1900, 1970, 2000, 2024, 9999])),
    two(0, 13),
    two(0, 32),
    two(0, 25),
    two(0, 61),
    two(0, 61),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=6).map(lambda d: "." + d)),
    st.one_of(
        st.sampled_from(["Z", "z"]),
        st.builds(lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), two(0, 25), two(0, 61)),
    ),
)


@settings(max_examples=3000, deadline=None)
@given(shaped_times)
def test_rfc3339_micros_reads_what_arrow_reads(text: str) -> None:
    assert rfc3339_micros(text) == arrow_micros(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2000-02-29T23:59:59.999999+23:59",
        "0000-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59.5-23:59",
        "2026-11-01T24:00:00Z",
        "2026-11-01T23:59:60Z",
        "2026-11-01T10:00:00+24:00",
    ],
)
def test_rfc3339_micros_at_the_calendar_s_edges(text: str) -> None:
    assert rfc3339_micros(text) == arrow_micros(text)


def test_utc_text_writes_rfc3339_utc_with_or_without_microseconds() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from lake.spec import utc_text

    moment = datetime(2026, 12, 8, 6, 7, 27, 123456, tzinfo=timezone(timedelta(hours=2)))

    assert utc_text(moment) == "2026-12-08T04:07:27.123456Z"
    assert utc_text(moment, micros=False) == "2026-12-08T04:07:27Z"
    assert utc_text(moment.replace(microsecond=0)) == "2026-12-08T04:07:27.000000Z"
    assert utc_text(datetime(1970, 1, 1, tzinfo=UTC)) == "1970-01-01T00:00:00.000000Z"
