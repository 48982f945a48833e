"""Repeated keys in JSON objects: found, never resolved by taking the last.

orjson, like most parsers, keeps the last of `{"tenant": "a", "tenant": "b"}`, so a
front end that reads the first (a proxy, a WAF, a log shipper) and we would disagree on
which tenant an event belongs to. Every JSON input is therefore checked for repeated keys,
at any depth (`details` too), and an event that has one is rejected.

The check is cheap because it only counts colons. In JSON text every key is followed by
exactly one structural colon, and a colon inside a string is either written as itself or
escaped as `\\u003a`. orjson writes the parsed value back with the structural colons of
the keys it kept and the string colons as themselves. So, unless the text escapes a
colon, the text has more colons than orjson's rewrite of what it parsed exactly when some
key was repeated (its pair, and any colons under its dropped value, are gone). Equal
counts prove there is no repeat; a difference, or an escaped colon, sends the text to
the exact parse (`json.loads` with an `object_pairs_hook`) that names the key. Counting
costs one `bytes.count` on the text and one on a rewrite per block of events (see
`lake.wire.scan_jsonl` for the measured figure).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

DUPLICATE_MESSAGE = "key {key!r} appears more than once in its object; send each key once"


def colons_match(raw: bytes, parsed: Any) -> bool:
    """True when `raw` (the JSON text `parsed` came from) provably repeats no key."""
    if b"\\u003" in raw and (b"\\u003a" in raw or b"\\u003A" in raw):
        return False
    try:
        rewritten = orjson.dumps(parsed)
    except TypeError:  # orjson.JSONEncodeError; never for what orjson parsed
        return False
    return raw.count(b":") == rewritten.count(b":")


class _Pairs(dict[str, Any]):
    """A parsed object that remembers which of its keys were repeated."""

    repeated: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs()
    out.repeated = []
    for key, value in pairs:
        if key in out and key not in out.repeated:
            out.repeated.append(key)
        out[key] = value
    return out


def _first_repeat(value: Any, path: str) -> tuple[str, str] | None:
    """(path of the object, key) of the first repeated key in `value`, depth first."""
    if isinstance(value, _Pairs):
        if value.repeated:
            key = value.repeated[0]
            return path, key
        for key, item in value.items():
            found = _first_repeat(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = _first_repeat(item, f"{path}[{n}]")
            if found:
                return found
    return None


def _exact(raw: bytes) -> Any:
    """`raw` parsed with every object a `_Pairs` (None if the stdlib parser refuses it)."""
    try:
        return json.loads(raw, object_pairs_hook=_pairs_hook)
    except (ValueError, RecursionError):
        return None


def repeated_key(raw: bytes) -> tuple[str, str] | None:
    """The (field, message) for one JSON event's text that repeats a key, or None.

    The field is the dotted path of the repeated key (`tenant`, `details.user.id`).
    """
    found = _first_repeat(_exact(raw), "")
    return None if found is None else _issue(*found)


def repeated_keys_in_array(raw: bytes) -> dict[int, tuple[str, str]]:
    """For a JSON array of events: each event index that repeats a key → (field, message)."""
    doc = _exact(raw)
    out: dict[int, tuple[str, str]] = {}
    if isinstance(doc, _Pairs):
        found = _first_repeat(doc, "")
        if found:
            out[0] = _issue(*found)
        return out
    if isinstance(doc, list):
        for i, event in enumerate(doc):
            found = _first_repeat(event, "")
            if found:
                out[i] = _issue(*found)
    return out


def _issue(path: str, key: str) -> tuple[str, str]:
    return (f"{path}.{key}" if path else key), DUPLICATE_MESSAGE.format(key=key)
