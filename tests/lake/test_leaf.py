"""Leaf encoding (lake.contract): leaf bytes (format 1) and leaf hashes, per the integrity contract.

The expected bytes below are written out by hand from the format-1 rule (0x01, then 16
fields, each a 4-byte big-endian length and its UTF-8 bytes or FF FF FF FF for null;
timestamps as decimal epoch microseconds), never produced by the code under test.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lake.contract._leaf as leaf_module
from lake.contract import (
    LEAF_FIELDS,
    UTC_US,
    decode_leaf,
    encode_leaf,
    hash_leaves,
    leaf_hash_of,
    leaf_hashes_array,
    leaf_inputs,
    validate,
)

# The field order, spelled out from the contract rather than imported.
DESIGN_FIELDS = (
    "tenant",
    "event_id",
    "time",
    "received_at",
    "category",
    "action",
    "outcome",
    "severity",
    "actor_id",
    "actor_type",
    "actor_ip",
    "user_agent",
    "target_type",
    "target_id",
    "source",
    "details",
)
TIME_FIELDS = ("time", "received_at")
NULL = b"\xff\xff\xff\xff"

FULL_ROW: dict[str, Any] = {
    "tenant": "acme",
    "event_id": "0190a5b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
    "time": datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),  # 1709294400123456 µs
    "received_at": datetime(2024, 3, 1, 12, 0, 1, tzinfo=UTC),  # 1709294401000000 µs
    "category": "admin_action",
    "action": "role.grant",
    "outcome": "success",
    "severity": "high",
    "actor_id": "alice",
    "actor_type": "admin",
    "actor_ip": "2001:db8::1",
    "user_agent": "Mözilla/5.0 ✓",
    "target_type": "user",
    "target_id": "bob",
    "source": "admin-console",
    "details": '{"role":"owner"}',
}
FULL_LEAF = (
    b"\x01"
    + b"\x00\x00\x00\x04acme"
    + b"\x00\x00\x00\x240190a5b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"
    + b"\x00\x00\x00\x101709294400123456"
    + b"\x00\x00\x00\x101709294401000000"
    + b"\x00\x00\x00\x0cadmin_action"
    + b"\x00\x00\x00\x0arole.grant"
    + b"\x00\x00\x00\x07success"
    + b"\x00\x00\x00\x04high"
    + b"\x00\x00\x00\x05alice"
    + b"\x00\x00\x00\x05admin"
    + b"\x00\x00\x00\x0b2001:db8::1"
    + b"\x00\x00\x00\x10M\xc3\xb6zilla/5.0 \xe2\x9c\x93"  # 13 characters, 16 UTF-8 bytes
    + b"\x00\x00\x00\x04user"
    + b"\x00\x00\x00\x03bob"
    + b"\x00\x00\x00\x0dadmin-console"
    + b'\x00\x00\x00\x10{"role":"owner"}'
)

# Nulls, an empty string (length 0, not null), the epoch and a pre-1970 instant.
NULL_ROW: dict[str, Any] = {
    "tenant": "t",
    "event_id": "e",
    "time": 0,
    "received_at": -1,
    "category": "authentication",
    "action": "login",
    "outcome": "failure",
    "severity": "info",
    "actor_id": "",
    "actor_type": None,
    "actor_ip": None,
    "user_agent": None,
    "target_type": None,
    "target_id": None,
    "source": None,
    "details": None,
}
NULL_LEAF = (
    b"\x01"
    + b"\x00\x00\x00\x01t"
    + b"\x00\x00\x00\x01e"
    + b"\x00\x00\x00\x010"
    + b"\x00\x00\x00\x02-1"
    + b"\x00\x00\x00\x0eauthentication"
    + b"\x00\x00\x00\x05login"
    + b"\x00\x00\x00\x07failure"
    + b"\x00\x00\x00\x04info"
    + b"\x00\x00\x00\x00"
    + b"\xff\xff\xff\xff" * 7
)


def leaf_schema(string_type: pa.DataType | None = None) -> pa.Schema:
    strings = string_type or pa.string()
    return pa.schema([pa.field(n, UTC_US if n in TIME_FIELDS else strings) for n in DESIGN_FIELDS])


def table_of(rows: list[dict[str, Any]], string_type: pa.DataType | None = None) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=leaf_schema(string_type))


def reference_hashes(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(leaf_hash_of(encode_leaf(r)) for r in rows)


def expected_decoded(row: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in DESIGN_FIELDS:
        value = row.get(name)
        if value is None:
            out[name] = None
        elif isinstance(value, datetime):
            out[name] = str((value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
        else:
            out[name] = str(value)
    return out


# ---------------------------------------------------------------------------------------
# The format, by hand.


def test_leaf_field_order_is_the_design_order() -> None:
    assert tuple(LEAF_FIELDS) == DESIGN_FIELDS


def test_encode_full_row_matches_hand_built_bytes() -> None:
    assert encode_leaf(FULL_ROW) == FULL_LEAF


def test_encode_row_with_nulls_matches_hand_built_bytes() -> None:
    assert encode_leaf(NULL_ROW) == NULL_LEAF


def test_empty_string_and_null_are_different_leaves() -> None:
    as_null = encode_leaf({**NULL_ROW, "source": None})
    as_empty = encode_leaf({**NULL_ROW, "source": ""})
    assert as_null != as_empty
    assert leaf_hash_of(as_null) != leaf_hash_of(as_empty)


def test_missing_keys_are_null_and_extra_keys_are_ignored() -> None:
    row = {k: v for k, v in NULL_ROW.items() if v is not None}
    assert encode_leaf(row) == NULL_LEAF
    assert encode_leaf({**FULL_ROW, "seq": 7, "event_date": "2024-03-01", "batch_id": "b"}) == (
        FULL_LEAF
    )


def test_timestamps_may_be_epoch_micro_integers() -> None:
    as_ints = {**FULL_ROW, "time": 1709294400123456, "received_at": 1709294401000000}
    assert encode_leaf(as_ints) == FULL_LEAF


@pytest.mark.parametrize(
    "tz",
    [
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-9, minutes=-30)),
        ZoneInfo("Europe/Paris"),
        ZoneInfo("America/New_York"),
        ZoneInfo("UTC"),
    ],
    ids=str,
)
def test_aware_datetimes_in_any_zone_encode_their_utc_instant(tz: Any) -> None:
    row = {
        **FULL_ROW,
        "time": FULL_ROW["time"].astimezone(tz),
        "received_at": FULL_ROW["received_at"].astimezone(tz),
    }
    assert encode_leaf(row) == FULL_LEAF


def test_pre_1970_datetimes_encode_negative_micros() -> None:
    row = {**NULL_ROW, "time": datetime(1970, 1, 1, tzinfo=UTC), "received_at": None}
    row["received_at"] = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert encode_leaf(row) == NULL_LEAF
    old = encode_leaf({**NULL_ROW, "time": datetime(1, 1, 1, tzinfo=UTC)})
    assert b"\x00\x00\x00\x12-62135596800000000" in old


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_leaf({**FULL_ROW, "time": datetime(2024, 3, 1, 12)})


def test_leaf_hash_is_rfc9162_leaf_hash() -> None:
    assert leaf_hash_of(FULL_LEAF) == hashlib.sha256(b"\x00" + FULL_LEAF).digest()
    # RFC 6962 test vector: the leaf hash of the empty leaf.
    assert leaf_hash_of(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


# ---------------------------------------------------------------------------------------
# Vectorised hashing agrees with the reference.


def test_hash_leaves_matches_reference_for_hand_built_rows() -> None:
    rows = [FULL_ROW, {**NULL_ROW, "time": 0, "received_at": -1}, FULL_ROW]
    table = table_of(rows)
    expected = hashlib.sha256(b"\x00" + FULL_LEAF).digest()
    expected += hashlib.sha256(b"\x00" + NULL_LEAF).digest()
    expected += hashlib.sha256(b"\x00" + FULL_LEAF).digest()
    assert hash_leaves(table) == expected
    assert leaf_inputs(table).to_pylist() == [
        b"\x00" + leaf for leaf in (FULL_LEAF, NULL_LEAF, FULL_LEAF)
    ]


def test_hash_leaves_of_no_rows_is_empty() -> None:
    assert hash_leaves(table_of([])) == b""


@pytest.mark.parametrize("string_type", [pa.large_string(), pa.string_view()])
def test_hash_leaves_accepts_other_arrow_string_types(string_type: pa.DataType) -> None:
    rows = [FULL_ROW, NULL_ROW]
    assert hash_leaves(table_of(rows, string_type)) == reference_hashes(rows)


def test_hash_leaves_on_chunked_and_sliced_tables() -> None:
    rows = [
        {**FULL_ROW, "actor_id": f"user-{i}", "details": None if i % 3 else f'{{"i":{i}}}'}
        for i in range(10)
    ]
    whole = table_of(rows)
    chunked = pa.concat_tables([table_of(rows[:3]), table_of(rows[3:4]), table_of(rows[4:])])
    assert chunked.column("actor_id").num_chunks == 3
    assert hash_leaves(chunked) == hash_leaves(whole) == reference_hashes(rows)
    assert hash_leaves(whole.slice(3, 5)) == reference_hashes(rows[3:8])


def test_hash_leaves_on_a_validated_wire_table() -> None:
    events = [
        {
            "tenant": "acme",
            "time": f"2024-03-01T12:00:0{i}.5+02:00",
            "category": "key_change",
            "action": "key.rotate",
            "outcome": "success",
            "actor": {"id": f"svc-{i}", "type": "service"},
            "details": {"kid": i, "note": "ключ"} if i % 2 else None,
        }
        for i in range(5)
    ]
    table = validate(events, namespace=b"leaf-test").table
    received = pa.array([1_709_294_500_000_000 + i for i in range(5)], pa.int64()).cast(UTC_US)
    table = table.append_column("received_at", received)
    rows = table.to_pylist()  # aware datetimes, as `prove` sees them
    assert hash_leaves(table) == reference_hashes(rows)


def test_leaf_hashes_array_is_binary32_in_row_order() -> None:
    rows = [FULL_ROW, NULL_ROW]
    hashes = hash_leaves(table_of(rows))
    arr = leaf_hashes_array(hashes)
    assert arr.type == pa.binary(32)
    assert arr.to_pylist() == [leaf_hash_of(FULL_LEAF), leaf_hash_of(NULL_LEAF)]


def test_chunk_boundaries_give_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {**FULL_ROW, "event_id": f"e-{i}", "source": None if i % 4 == 0 else "s" * i}
        for i in range(23)
    ]
    table = table_of(rows)
    unchunked = hash_leaves(table)
    assert unchunked == reference_hashes(rows)
    for size in (1, 2, 3, 7, 22, 23, 24):
        monkeypatch.setattr(leaf_module, "CHUNK_ROWS", size)
        assert hash_leaves(table) == unchunked, size
        assert hash_leaves(table.slice(5)) == unchunked[5 * 32 :], size


# ---------------------------------------------------------------------------------------
# Property: random rows, incl. empty strings vs nulls and pre-1970 instants.

MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    microseconds=1
)
MAX_US = (
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
) // timedelta(microseconds=1)

text_or_null = st.one_of(st.none(), st.just(""), st.text(max_size=24))
micros_or_null = st.one_of(
    st.none(),
    st.integers(min_value=MIN_US, max_value=MAX_US),
    st.integers(min_value=-(10**6), max_value=10**6),  # around the epoch
)
row_strategy = st.fixed_dictionaries(
    {n: micros_or_null if n in TIME_FIELDS else text_or_null for n in DESIGN_FIELDS}
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row_strategy, max_size=12), chunk=st.integers(min_value=1, max_value=5))
def test_property_vectorised_hashes_equal_reference(rows: list[dict[str, Any]], chunk: int) -> None:
    table = table_of(rows)
    expected = reference_hashes(rows)
    assert hash_leaves(table) == expected
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(leaf_module, "CHUNK_ROWS", chunk)
        assert hash_leaves(table) == expected
    assert hash_leaves(table_of(rows, pa.large_string())) == expected
    # The same rows read back from Arrow (aware datetimes) encode identically.
    for original, from_arrow in zip(rows, table.to_pylist(), strict=True):
        assert encode_leaf(from_arrow) == encode_leaf(original)


@settings(max_examples=200, deadline=None)
@given(row=row_strategy)
def test_property_decode_inverts_encode(row: dict[str, Any]) -> None:
    leaf = encode_leaf(row)
    decoded = decode_leaf(leaf)
    assert list(decoded) == list(DESIGN_FIELDS)
    assert decoded == expected_decoded(row)
    for name in DESIGN_FIELDS:
        # null and "" never collapse into each other
        assert (decoded[name] is None) == (row[name] is None)
    # Re-encoding the decoded strings gives the same bytes (timestamps as integers).
    again = {n: (int(v) if n in TIME_FIELDS and v is not None else v) for n, v in decoded.items()}
    assert encode_leaf(again) == leaf


# ---------------------------------------------------------------------------------------
# decode_leaf.


def test_decode_hand_built_leaves() -> None:
    assert decode_leaf(FULL_LEAF) == expected_decoded(FULL_ROW)
    decoded = decode_leaf(NULL_LEAF)
    assert decoded["time"] == "0"
    assert decoded["received_at"] == "-1"
    assert decoded["actor_id"] == ""
    assert decoded["details"] is None


@pytest.mark.parametrize("leaf", [FULL_LEAF, NULL_LEAF], ids=["full", "nulls"])
def test_decode_rejects_every_truncation(leaf: bytes) -> None:
    for cut in range(len(leaf)):
        with pytest.raises(ValueError):
            decode_leaf(leaf[:cut])


def test_decode_rejects_trailing_bytes() -> None:
    with pytest.raises(ValueError, match="trailing bytes"):
        decode_leaf(FULL_LEAF + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        decode_leaf(NULL_LEAF + NULL)


@pytest.mark.parametrize("first", [b"", b"\x00", b"\x02", b"\xff"])
def test_decode_rejects_wrong_format_byte(first: bytes) -> None:
    with pytest.raises(ValueError, match="format byte 0x01"):
        decode_leaf(first + FULL_LEAF[1:] if first else b"")


def test_decode_rejects_a_length_past_the_end() -> None:
    bad = b"\x01" + b"\x00\x00\x01\x00acme" + NULL * 15
    with pytest.raises(ValueError, match="field tenant runs past the end"):
        decode_leaf(bad)


def test_decode_rejects_a_leaf_with_too_few_fields() -> None:
    with pytest.raises(ValueError, match="ends before field details"):
        decode_leaf(b"\x01" + NULL * 15)


def test_decode_rejects_invalid_utf8() -> None:
    with pytest.raises(ValueError):
        decode_leaf(b"\x01" + b"\x00\x00\x00\x02\xc3\x28" + NULL * 15)


def test_decode_all_null_leaf() -> None:
    assert decode_leaf(b"\x01" + NULL * 16) == dict.fromkeys(DESIGN_FIELDS)
