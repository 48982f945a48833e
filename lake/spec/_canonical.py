"""`details` as the lake stores it: canonical JSON (sorted keys, compact, UTF-8), bounded.

The columnar validator serialises with orjson (`orjson.dumps(value,
option=OPT_SORT_KEYS)`); the scalar check must not import it, so `canonical_json` writes
the same bytes with the standard library, and refuses what orjson refuses with orjson's
words (the message of an issue quotes them). Held to orjson byte for byte, and error for
error, by a property test over JSON values (tests/lake/test_spec.py). Beyond JSON's own
types it serialises what orjson does natively and an SDK caller may plausibly pass
(subclasses of str, int, dict and list; tuples; datetime, date, time; UUID; Enum); for
other objects (dataclasses, …) it is stricter than orjson and refuses them.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from datetime import date, datetime, time
from json import encoder
from typing import Any, Final

from lake.spec._rules import (
    DETAILS,
    DETAILS_SIZE_MESSAGE,
    DETAILS_TYPE_MESSAGE,
    INEXACT_MESSAGE,
    MAX_DETAILS_BYTES,
    expected_message,
)

# orjson's limits and words.
_MAX_DEPTH: Final = 254
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_SURROGATES: Final = "str is not valid UTF-8: surrogates not allowed"
_INEXACT_FLOAT: Final = float(2**63)
_quote: Callable[[str], str] = encoder.encode_basestring  # escapes as orjson does


def canonical_json(value: Any) -> bytes:
    """What `orjson.dumps(value, option=orjson.OPT_SORT_KEYS)` returns, or its TypeError."""
    out: list[str] = []
    _write(value, out, 0)
    return "".join(out).encode("utf-8")


def _write(value: Any, out: list[str], depth: int) -> None:
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise TypeError(_SURROGATES) from None
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise TypeError("Integer exceeds 64-bit range")
        out.append(int.__repr__(value))
    elif type(value) is float:
        out.append(_float_text(value))
    elif isinstance(value, dict | list | tuple):
        if depth >= _MAX_DEPTH:
            raise TypeError("Recursion limit reached")
        _write_container(value, out, depth + 1)
    elif isinstance(value, datetime | date | time):
        if isinstance(value, time) and value.tzinfo is not None:
            raise TypeError("datetime.time must not have tzinfo set")
        out.append(_quote(value.isoformat()))
    elif _is_uuid(value):
        out.append(_quote(str(value)))
    elif isinstance(value, enum.Enum):
        _write(value.value, out, depth)
    else:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _is_uuid(value: Any) -> bool:
    # Without importing uuid (a few ms): no value is a UUID unless someone imported it.
    module = sys.modules.get("uuid")
    return module is not None and isinstance(value, module.UUID)


def _write_container(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...], out: list[str], depth: int
) -> None:
    if not isinstance(value, dict):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out, depth)
        out.append("]")
        return
    if not all(isinstance(key, str) for key in value):
        raise TypeError("Dict key must be str")
    out.append("{")
    for n, key in enumerate(sorted(value)):
        if n:
            out.append(",")
        out.append(_quote(key))
        out.append(":")
        _write(value[key], out, depth)
    out.append("}")


def _float_text(value: float) -> str:
    """orjson's text for a float: Python's shortest repr, but `1e-7` and `0.00001`."""
    if value != value or value in (float("inf"), float("-inf")):
        return "null"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if not e:
        return text
    power = int(exponent)
    if power == -5:  # orjson writes one more negative power positionally than Python
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def inexact_number(value: Any, path: str) -> str | None:
    """Path of the first float whose magnitude could hide a rounded big integer."""
    if isinstance(value, float):
        return path if abs(value) >= _INEXACT_FLOAT else None
    if isinstance(value, dict):
        for key, item in value.items():
            if found := inexact_number(item, f"{path}.{key}"):
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            if found := inexact_number(item, f"{path}[{n}]"):
                return found
    return None


def canonical_details(
    value: Any, dumps: Callable[[Any], bytes] = canonical_json
) -> tuple[str | None, tuple[str, str] | None]:
    """Canonical JSON of one `details` value, or the (field, reason) it is refused for.

    `dumps` is `canonical_json` or a faster equal (orjson's, in `lake.contract`).
    """
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, (DETAILS, expected_message("an object", value))
    try:
        text = dumps(value)
    except TypeError as exc:
        return None, (DETAILS, DETAILS_TYPE_MESSAGE.format(error=exc))
    if len(text) > MAX_DETAILS_BYTES:
        return None, (DETAILS, DETAILS_SIZE_MESSAGE.format(size=len(text), limit=MAX_DETAILS_BYTES))
    if b"e+" in text and (where := inexact_number(value, DETAILS)):
        # A JSON parser turns integers beyond 64 bits into floats: refuse, never round.
        return None, (where, INEXACT_MESSAGE)
    return text.decode(), None
