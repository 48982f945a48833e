"""JSON input → parsed events and the issues of parsing (not JSON, not UTF-8, repeated keys).

Events are parsed with orjson; a line or an array whose text may repeat a key goes to
`lake.contract._wire_json` for the exact answer, since a parser keeps the last of two
equal keys and a front end may have read the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lake.contract._errors import Issue, ValidationError
from lake.contract._wire_json import colons_match, repeated_key, repeated_keys_in_array

# Re-exported for lake.contract._wire, which imports it from here (it belongs to lake.spec).
from lake.spec import expected_message, gc_paused


@dataclass(frozen=True)
class Unparsed:
    """Placeholder for a line that is not JSON; kept so rejects can be written back."""

    raw: bytes


def raw_of(record: Any) -> Any:
    """What a reject quotes of its record: the record, or the text of an unparsed line."""
    return record.raw.decode("utf-8", "replace") if isinstance(record, Unparsed) else record


def parse_jsonl(data: bytes, first_line: int = 1) -> tuple[list[Any], list[int], list[Issue]]:
    """Split JSON Lines into parsed objects, their 1-based line numbers, and parse errors.

    Blank lines are skipped; event indexes count events, not lines. `first_line` is the
    line number of the first line of `data` (for a chunk of a larger input).
    """
    records: list[Any] = []
    lines: list[int] = []
    issues: list[Issue] = []
    loads = orjson.loads
    with gc_paused():
        for lineno, raw in enumerate(data.split(b"\n"), start=first_line):
            if not raw.strip():
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                records.append(Unparsed(raw))
                issues.append(Issue(len(records) - 1, "(event)", _json_reason(exc), line=lineno))
            else:
                records.append(record)
                if not colons_match(raw, record) and (found := repeated_key(raw)):
                    issues.append(Issue(len(records) - 1, *found, line=lineno))
            lines.append(lineno)
    return records, lines, issues


def parse_json_array(data: bytes) -> list[Any]:
    """Parse a JSON document holding an array of events.

    Raises ValidationError when it is not one, or when an event repeats a key.
    """
    records, issues = parse_json_array_issues(data)
    if issues:
        raise ValidationError(issues)
    return records


def parse_json_array_issues(data: bytes) -> tuple[list[Any], list[Issue]]:
    """A JSON array of events, and an issue per event that repeats a key (`pre_issues`).

    Raises ValidationError when the document is not a JSON array.
    """
    try:
        with gc_paused():
            doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError([Issue(0, "(document)", _json_reason(exc))]) from None
    if not isinstance(doc, list):
        raise ValidationError([Issue(0, "(document)", expected_message("an array of events", doc))])
    if colons_match(data, doc):
        return doc, []
    found = repeated_keys_in_array(data)
    return doc, [Issue(i, field, message) for i, (field, message) in sorted(found.items())]


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    text = str(exc)
    if "UTF-8" in text or "utf-8" in text or "surrogate" in text:
        return "not valid UTF-8 (" + text + ")"
    return "not valid JSON (" + text + ")"
