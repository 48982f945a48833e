"""Rule definitions: YAML and Python rules, their errors, and each kind through the engine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from detect.model import RuleError, load_python, load_rules, load_yaml, rule_from_dict
from detect.testing import run_tests
from lake.contract import Alert

PY_RULES = '''
import polars as pl
from detect.model import rule

CASES = [
    {"name": "fires", "events": [{"actor": "x", "ip": "10.0.0.1", "_repeat": 3}],
     "expect": [{"group": {"actor_ip": "10.0.0.1"}, "event_count": 3}]},
    {"name": "other net", "events": [{"actor": "x", "ip": "192.0.2.1", "_repeat": 3}],
     "expect": []},
]


@rule(id="py.polars", title="Logins from 10/8 at {actor_ip}", group_by=["actor_ip"],
      threshold=3, window="5m", tests=CASES)
def internal_logins():
    """Three logins from the 10/8 office range within five minutes."""
    return pl.col("actor_ip").str.starts_with("10.") & (pl.col("action") == "login")


@rule(id="py.sql_predicate", title="Night login by {actor_id}", group_by=["actor_id"],
      tests=[{"name": "3am", "events": [{"time": "2026-11-02T03:00:00Z"}],
              "expect": [{"group": {"actor_id": "alice"}}]},
             {"name": "noon", "events": [{"time": "2026-11-02T12:00:00Z"}], "expect": []}])
def night():
    return "sql: hour(time) < 5"


@rule(id="py.query", title="Failed logins of {actor_id}", group_by=["actor_id"],
      tests=[{"name": "one", "events": [{"outcome": "failure"}],
              "expect": [{"event_count": 1}]}])
def failures():
    return "SELECT tenant, event_id, time, actor_id FROM events WHERE outcome = 'failure';"
'''


def test_python_rules_of_every_return_kind(tmp_path: Path) -> None:
    path = tmp_path / "my_rules.py"
    path.write_text(PY_RULES)
    rules = load_python(path)
    assert [(r.id, r.kind) for r in rules] == [
        ("py.polars", "threshold"),
        ("py.sql_predicate", "threshold"),
        ("py.query", "sql"),
    ]
    assert rules[0].description.startswith("Three logins")
    results = run_tests(rules)
    assert [(r.case, r.ok) for r in results] == [
        ("fires", True), ("other net", True), ("3am", True), ("noon", True), ("one", True)
    ], [r.problems for r in results]  # fmt: skip
    # the same directory loads beside the built-in pack, ids must not clash
    both = load_rules([tmp_path])
    assert {"py.polars", "auth.brute_force"} <= {r.id for r in both}


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"id": "x", "title": "t", "kind": "nope"}, "kind 'nope'"),
        ({"id": "Bad Id", "title": "t", "kind": "threshold"}, "id must match"),
        ({"id": "x", "title": "t", "kind": "threshold", "window": "soon"}, "window"),
        ({"id": "x", "title": "t", "kind": "threshold", "group_by": ["password"]}, "password"),
        ({"id": "x", "title": "t", "kind": "threshold", "match": "colour:red"}, "colour"),
        ({"id": "x", "title": "t", "kind": "threshold", "severity": "dire"}, "severity"),
        ({"id": "x", "title": "t", "kind": "distinct"}, "distinct"),
        ({"id": "x", "title": "t", "kind": "sql"}, "needs `sql:`"),
        (
            {"id": "x", "title": "t", "kind": "sql", "sql": "SELECT 1", "match": "action:login"},
            "`match` does not apply",
        ),
        ({"id": "x", "title": "t", "kind": "silence", "threshold": 3}, "`threshold` does not"),
        ({"id": "x", "title": "t", "kind": "threshold", "colour": "red"}, "unknown field"),
        (
            {
                "id": "x",
                "title": "t",
                "kind": "sequence",
                "steps": [
                    {"match": "outcome:failure", "by": "actor_id"},
                    {"match": "outcome:success", "by": "actor_id", "min_count": 2},
                ],
            },
            "first step only",
        ),
        ({"title": "t", "kind": "threshold"}, "`id` is required"),
    ],
)
def test_rule_errors_name_the_rule_and_the_field(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(RuleError, match=needle.replace("(", r"\(").replace("`", "`")):
        rule_from_dict(doc, "rules.yaml")


def test_yaml_files_with_several_rules_and_bad_yaml(tmp_path: Path) -> None:
    good = tmp_path / "two.yaml"
    good.write_text(
        yaml.safe_dump_all(
            [
                {"id": "a.one", "title": "A", "kind": "threshold", "threshold": 2},
                {"id": "a.two", "title": "B", "kind": "threshold", "threshold": 3},
            ]
        )
    )
    assert [r.id for r in load_yaml(good)] == ["a.one", "a.two"]
    listed = tmp_path / "list.yaml"
    listed.write_text("rules:\n  - {id: b.one, title: B, kind: threshold}\n")
    assert [r.id for r in load_yaml(listed)] == ["b.one"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_yaml(broken)
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "1.yaml").write_text("{id: d.x, title: X, kind: threshold}\n")
    (dup / "2.yaml").write_text("{id: d.x, title: Y, kind: threshold}\n")
    with pytest.raises(RuleError, match="defined twice"):
        load_rules([dup], builtin=False)


def test_fingerprint_follows_what_the_rule_detects() -> None:
    base = {"id": "f.x", "title": "T", "kind": "threshold", "threshold": 3}
    a = rule_from_dict(base, "x")
    assert rule_from_dict({**base, "title": "Other title"}, "x").fingerprint() == a.fingerprint()
    assert rule_from_dict({**base, "threshold": 4}, "x").fingerprint() != a.fingerprint()
    assert rule_from_dict({**base, "window": "11m"}, "x").fingerprint() != a.fingerprint()


def test_same_key_sequences_take_the_window_path_and_agree_with_the_join_path() -> None:
    """Same-key sequences compile to a window count; the join path must say the same.

    With target_id equal to actor_id on every event, steps keyed (target_id, actor_id)
    take the join path and (actor_id, actor_id) the window path: same alerts expected.
    """
    import random

    from detect.engine import alerts
    from detect.testing import connect, events_table

    rnd = random.Random(5)
    events = []
    for _ in range(400):
        who = f"u{rnd.randrange(6)}"
        minute = rnd.randrange(0, 600)
        events.append({
            "actor": who, "target": who, "outcome": rnd.choice(["failure"] * 3 + ["success"]),
            "time": f"2026-11-02T{minute // 60:02d}:{minute % 60:02d}:{rnd.randrange(60):02d}Z",
        })  # fmt: skip
    con = connect(events_table(events, "seq-equivalence"))
    base = {"title": "t", "kind": "sequence", "window": "10m"}
    steps: list[dict[str, object]] = [
        {"match": "outcome:failure", "min_count": 3},
        {"match": "outcome:success"},
    ]
    window_rule = rule_from_dict(
        {**base, "id": "s.window", "steps": [{**steps[0], "by": "actor_id"},
                                             {**steps[1], "by": "actor_id"}]}, "x"
    )  # fmt: skip
    join_rule = rule_from_dict(
        {**base, "id": "s.join", "steps": [{**steps[0], "by": "target_id"},
                                           {**steps[1], "by": "actor_id"}]}, "x"
    )  # fmt: skip

    def key(a: Alert) -> tuple[str, int, tuple[str, ...], datetime]:
        assert a.group is not None and a.event_count is not None and a.first_seen is not None
        return (a.group, a.event_count, a.event_ids or (), a.first_seen)

    a = sorted(map(key, alerts(con, window_rule)))
    b = sorted(map(key, alerts(con, join_rule)))
    assert a == b and len(a) > 3
