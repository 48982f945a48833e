"""What a detection rule is, and how YAML and Python rules become one.

A rule finds *triggers* (moments when a pattern completes for one group of events, e.g.
the fifth failed login of an account within ten minutes) and the engine turns the
triggers of one group inside one dedup period into one alert with a deterministic id.
Five kinds cover the built-in pack and most of Panther/Sigma/Elastic's shapes:

    threshold   ≥ N matching events of a group within `window`      (Sigma event_count)
    distinct    ≥ N distinct values of a field within `window`      (Sigma value_count)
    sequence    ≥ N events of step 1, then one of step 2, same key,  (Sigma temporal_ordered,
                all within `window`                                  EQL sequence)
    silence     a group that sent events in `lookback` has been quiet for `window`
    sql         any SELECT over `events` returning evidence rows (Python rules, escape hatch)

`match` filters use the query-string syntax of `auditlake search` (one parser, values
only as SQL parameters); Python rules may instead return a SQL predicate or a Polars
expression.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import orjson

from lake.contract import EVENTS_SCHEMA, SEVERITIES, UsageError
from lake.query import SearchFilter, parse_query


class RuleKind(StrEnum):
    """What a rule detects (see the module docstring)."""

    THRESHOLD = "threshold"
    DISTINCT = "distinct"
    SEQUENCE = "sequence"
    SILENCE = "silence"
    SQL = "sql"


KINDS: Final = tuple(RuleKind)
RULE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
GROUP_COLUMNS: Final = frozenset(EVENTS_SCHEMA.names) - {"details", "leaf_hash", "tenant"}
_DURATION_RE: Final = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class RuleError(UsageError):
    """A rule definition is invalid (names the rule, the field and the reason)."""


def parse_duration(value: Any, what: str) -> timedelta:
    """`90s`, `10m`, `6h`, `7d`, `2w` (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    try:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return timedelta(seconds=value)
        m = _DURATION_RE.match(str(value).strip())
        if not m or int(m.group(1)) <= 0:
            raise RuleError(f"{what}: {value!r} is not a duration like 90s, 10m, 6h, 7d or 2w")
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    except OverflowError:  # past timedelta's ~2.7 million years
        raise RuleError(f"{what}: {value!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Step:
    """One step of a sequence: its filter, the key that links steps, and a minimum count."""

    match: SearchFilter
    by: str
    min_count: int = 1


@dataclass(frozen=True)
class TestCase:
    """Events in, expected alerts out (each expectation a subset of an alert's fields)."""

    name: str
    events: tuple[dict[str, Any], ...]
    expect: tuple[dict[str, Any], ...]
    now: str | None = None  # for silence rules: the run's "now"


@dataclass(frozen=True)
class Rule:
    """A detection rule; see the module docstring for the kinds."""

    id: str
    title: str
    kind: RuleKind
    severity: str = "medium"
    description: str = ""
    runbook: str = ""
    tags: tuple[str, ...] = ()
    window: timedelta = timedelta(minutes=10)
    dedup: timedelta | None = None
    lookback: timedelta = timedelta(0)
    group_by: tuple[str, ...] = ()
    threshold: int = 1
    distinct: str | None = None
    match: SearchFilter | None = None
    where_sql: str | None = None  # a SQL predicate (Python rules), ANDed with `match`
    polars: Any = None  # a Polars expression (Python rules), evaluated before the SQL
    steps: tuple[Step, ...] = ()
    sql: str | None = None
    tests: tuple[TestCase, ...] = ()
    enabled: bool = True
    origin: str = "built-in"

    def __post_init__(self) -> None:
        where = f"rule {self.id!r}"
        if not re.fullmatch(RULE_ID_PATTERN, self.id):
            raise RuleError(f"{where}: id must match {RULE_ID_PATTERN}")
        if self.kind not in KINDS:
            raise RuleError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        object.__setattr__(self, "kind", RuleKind(self.kind))  # a str from YAML becomes one
        if self.severity not in SEVERITIES:
            raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        for col in self.group_by:
            if col not in GROUP_COLUMNS:
                raise RuleError(
                    f"{where}: group_by column {col!r} is not a stored column "
                    f"({', '.join(sorted(GROUP_COLUMNS))})"
                )
        if self.threshold < 1:
            raise RuleError(f"{where}: threshold must be at least 1")
        if self.kind == "distinct" and self.distinct not in GROUP_COLUMNS:
            raise RuleError(f"{where}: a distinct rule needs `distinct:` naming a stored column")
        if self.kind == "sequence":
            if len(self.steps) != 2:
                raise RuleError(f"{where}: a sequence has exactly two steps")
            for step in self.steps:
                if step.by not in GROUP_COLUMNS:
                    raise RuleError(f"{where}: step key {step.by!r} is not a stored column")
        if self.kind == "sql" and not self.sql:
            raise RuleError(f"{where}: an sql rule needs `sql:`")
        # A field the kind ignores is an error: an author must not believe a filter or a
        # threshold is in effect when it is not.
        ignored = {
            "match": self.match is not None and self.kind in ("sequence", "sql"),
            "threshold": self.threshold != 1 and self.kind in ("sequence", "silence", "sql"),
            "distinct": self.distinct is not None and self.kind != "distinct",
            "steps": bool(self.steps) and self.kind != "sequence",
            "sql": self.sql is not None and self.kind != "sql",
            "group_by": bool(self.group_by) and self.kind == "sequence",
        }
        for name, bad in ignored.items():
            if bad:
                raise RuleError(
                    f"{where}: `{name}` does not apply to a {self.kind} rule "
                    + (
                        "(steps carry their own match and min_count)"
                        if self.kind == "sequence"
                        else ""
                    )
                )
        if self.kind == "sequence" and self.steps[1].min_count != 1:
            raise RuleError(f"{where}: min_count applies to the first step only")
        if self.kind in ("threshold", "distinct", "silence") and self.match is None:
            object.__setattr__(self, "match", SearchFilter())

    @property
    def dedup_period(self) -> timedelta:
        """One alert per group per this period (default: the window, at least an hour)."""
        return self.dedup or max(self.window, timedelta(hours=1))

    @property
    def group_columns(self) -> tuple[str, ...]:
        if self.kind == "sequence":
            return (self.steps[1].by,)
        return self.group_by

    def fingerprint(self) -> str:
        """Changes whenever what the rule detects changes (its watermark restarts then)."""
        doc = {
            "kind": self.kind,
            "window": self.window.total_seconds(),
            "dedup": self.dedup_period.total_seconds(),
            "lookback": self.lookback.total_seconds(),
            "group_by": self.group_by,
            "threshold": self.threshold,
            "distinct": self.distinct,
            "match": self.match.to_query_string() if self.match else None,
            "where_sql": self.where_sql,
            "polars": str(self.polars) if self.polars is not None else None,
            "steps": [(s.match.to_query_string(), s.by, s.min_count) for s in self.steps],
            "sql": self.sql,
        }
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "severity": self.severity,
            "window": format_duration(self.window),
            "dedup": format_duration(self.dedup_period),
            "group_by": list(self.group_columns),
            "threshold": self.steps[0].min_count if self.kind == "sequence" else self.threshold,
            "tags": list(self.tags),
            "tests": len(self.tests),
            "enabled": self.enabled,
            "origin": self.origin,
            "description": self.description,
        }


# -- YAML ---------------------------------------------------------------------------------

_RULE_KEYS: Final = {
    "id", "title", "kind", "severity", "description", "runbook", "tags", "window", "dedup",
    "lookback", "group_by", "threshold", "distinct", "match", "steps", "sql", "tests",
    "enabled",
}  # fmt: skip


def _match(value: Any, where: str) -> SearchFilter:
    if value is None:
        return SearchFilter()
    if not isinstance(value, str):
        raise RuleError(f"{where}: match must be a query string like 'action:login'")
    try:
        return parse_query(value)
    except UsageError as exc:
        raise RuleError(f"{where}: match: {exc}") from None


def _tests(raw: Any, where: str) -> tuple[TestCase, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleError(f"{where}: tests must be a list")
    out = []
    for i, case in enumerate(raw):
        if not isinstance(case, dict) or "events" not in case or "expect" not in case:
            raise RuleError(f"{where}: tests[{i}] needs `events:` and `expect:`")
        events, expect = case["events"], case["expect"]
        if not isinstance(events, list) or not isinstance(expect, list):
            raise RuleError(f"{where}: tests[{i}]: events and expect must be lists")
        out.append(
            TestCase(
                str(case.get("name", f"case {i + 1}")),
                tuple(events),
                tuple(expect),
                str(case["now"]) if case.get("now") is not None else None,
            )
        )
    return tuple(out)


def _kind(value: str, where: str) -> RuleKind:
    try:
        return RuleKind(value)
    except ValueError:
        raise RuleError(f"{where}: kind {value!r} is not one of {', '.join(KINDS)}") from None


def rule_from_dict(doc: Any, origin: str) -> Rule:
    """Build a rule from a parsed YAML document, naming the file and field on error."""
    if not isinstance(doc, dict):
        raise RuleError(f"{origin}: a rule must be a mapping")
    rid = doc.get("id")
    where = f"{origin}: rule {rid!r}"
    unknown = sorted(set(doc) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key in ("id", "title", "kind"):
        if not isinstance(doc.get(key), str):
            raise RuleError(f"{where}: `{key}` is required (a string)")
    steps = []
    for i, raw in enumerate(doc.get("steps") or []):
        if not isinstance(raw, dict) or "by" not in raw:
            raise RuleError(f"{where}: steps[{i}] needs `match:` and `by:`")
        steps.append(
            Step(_match(raw.get("match"), f"{where}: steps[{i}]"), str(raw["by"]),
                 int(raw.get("min_count", 1)))
        )  # fmt: skip
    group_by = doc.get("group_by") or []
    if isinstance(group_by, str):
        group_by = [group_by]
    try:
        return Rule(
            id=str(doc["id"]),
            title=str(doc["title"]),
            kind=_kind(str(doc["kind"]), where),
            severity=str(doc.get("severity", "medium")),
            description=str(doc.get("description", "")).strip(),
            runbook=str(doc.get("runbook", "")).strip(),
            tags=tuple(str(t) for t in doc.get("tags") or ()),
            window=parse_duration(doc.get("window", "10m"), f"{where}: window"),
            dedup=parse_duration(doc["dedup"], f"{where}: dedup") if "dedup" in doc else None,
            lookback=(
                parse_duration(doc["lookback"], f"{where}: lookback")
                if "lookback" in doc
                else timedelta(0)
            ),
            group_by=tuple(str(c) for c in group_by),
            threshold=int(doc.get("threshold", 1)),
            distinct=str(doc["distinct"]) if doc.get("distinct") else None,
            match=_match(doc.get("match"), where) if "match" in doc else None,
            steps=tuple(steps),
            sql=str(doc["sql"]) if doc.get("sql") else None,
            tests=_tests(doc.get("tests"), where),
            enabled=bool(doc.get("enabled", True)),
            origin=origin,
        )
    except (TypeError, ValueError) as exc:
        raise RuleError(f"{where}: {exc}") from None


def load_yaml(path: Path) -> list[Rule]:
    """Every rule in a YAML file (one document per rule, or a list under `rules:`)."""
    import yaml

    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    rules: list[Rule] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and "rules" in doc and len(doc) == 1:
            rules += [rule_from_dict(d, str(path)) for d in doc["rules"]]
        else:
            rules.append(rule_from_dict(doc, str(path)))
    return rules


# -- Python -------------------------------------------------------------------------------

_REGISTRY: list[Rule] = []


def rule(
    *,
    id: str,
    title: str,
    severity: str = "medium",
    window: str | timedelta = "10m",
    group_by: Sequence[str] = (),
    threshold: int = 1,
    distinct: str | None = None,
    dedup: str | timedelta | None = None,
    lookback: str | timedelta | None = None,
    description: str = "",
    runbook: str = "",
    tags: Sequence[str] = (),
    tests: Sequence[dict[str, Any]] = (),
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register a Python rule. The function returns its match as one of:

    - a query string (`"action:key.export outcome:success"`),
    - a SQL predicate over the stored columns, prefixed `sql:` (`"sql: hour(time) < 6"`),
    - a full query, prefixed `select` (`SELECT tenant, event_id, time, actor_id FROM events ...`
      returning evidence rows with the group_by columns),
    - a Polars expression (`pl.col("actor_ip").str.starts_with("10.")`).

    With `threshold`/`distinct` the rule counts like a YAML threshold/distinct rule.
    """

    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        made = fn()
        common: dict[str, Any] = {
            "id": id,
            "title": title,
            "severity": severity,
            "window": parse_duration(window, f"rule {id!r}: window"),
            "dedup": parse_duration(dedup, f"rule {id!r}: dedup") if dedup else None,
            "lookback": (
                parse_duration(lookback, f"rule {id!r}: lookback") if lookback else timedelta(0)
            ),
            "group_by": tuple(group_by),
            "threshold": threshold,
            "distinct": distinct,
            "description": description or (fn.__doc__ or "").strip(),
            "runbook": runbook,
            "tags": tuple(tags),
            "tests": _tests(list(tests), f"rule {id!r}") if tests else (),
            "origin": f"{fn.__module__}.{fn.__qualname__}",
        }
        kind = RuleKind.DISTINCT if distinct else RuleKind.THRESHOLD
        if isinstance(made, SearchFilter):
            _REGISTRY.append(Rule(kind=kind, match=made, **common))
        elif isinstance(made, str) and made.lstrip().lower().startswith(("select", "with")):
            _REGISTRY.append(Rule(kind=RuleKind.SQL, sql=made, **common))
        elif isinstance(made, str) and made.lstrip().lower().startswith("sql:"):
            _REGISTRY.append(Rule(kind=kind, where_sql=made.split(":", 1)[1].strip(), **common))
        elif isinstance(made, str):
            _REGISTRY.append(Rule(kind=kind, match=_match(made, f"rule {id!r}"), **common))
        elif type(made).__module__.startswith("polars"):
            _REGISTRY.append(Rule(kind=kind, polars=made, **common))
        else:
            raise RuleError(
                f"rule {id!r}: the function must return a query string, 'sql: …', a SELECT "
                f"or a Polars expression, not {type(made).__name__}"
            )
        return fn

    return register


def load_python(path: Path) -> list[Rule]:
    """Import a rules module and return the rules it registered with `@rule`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"auditlake_rules_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuleError(f"{path}: cannot be imported as a Python module")
    start = len(_REGISTRY)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except RuleError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's module: any failure is a rule error
        raise RuleError(f"{path}: {type(exc).__name__}: {exc}") from None
    made = _REGISTRY[start:]
    del _REGISTRY[start:]
    return made


BUILTIN_DIR: Final = Path(__file__).resolve().parent / "rules"


def load_rules(extra: Sequence[Path] = (), *, builtin: bool = True) -> list[Rule]:
    """The built-in pack plus rules from files or directories (YAML and .py)."""
    paths: list[Path] = []
    if builtin and BUILTIN_DIR.is_dir():
        paths += sorted(BUILTIN_DIR.glob("*.y*ml"))
    for p in extra:
        if p.is_dir():
            paths += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml", ".py"))
        elif p.exists():
            paths.append(p)
        else:
            raise RuleError(f"{p}: no such rules file or directory")
    rules: list[Rule] = []
    for path in paths:
        rules += load_python(path) if path.suffix == ".py" else load_yaml(path)
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise RuleError(f"rule id {r.id!r} is defined twice: {seen[r.id]} and {r.origin}")
        seen[r.id] = r.origin
    return rules
