"""Tests for the demo traffic generator: wire shape, determinism, realism, planted incidents.

The expectations (field names, enums, thresholds) come from the wire format's declaration
(`lake.spec`) or are written out here, never imported from `ingest.demo`, so a drift in the
generator shows up as a failure.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

import lake.spec as spec
from ingest.demo import (
    DEFAULT_END,
    DEFAULT_TENANTS,
    DemoData,
    Incident,
    generate,
    iter_events,
    tenant_utc_offset,
    to_jsonl_bytes,
    write_jsonl,
)

ACTIONS = {
    "authentication": {"login", "logout", "mfa.challenge"},
    "admin_action": {"role.grant", "role.revoke", "user.create", "user.delete"},
    "key_change": {"key.create", "key.rotate", "key.revoke", "key.export"},
    "flag_change": {"flag.update"},
    "account_recovery": {"recovery.request", "recovery.complete"},
}
# The wire format's vocabulary, from its one declaration.
OUTCOMES = set(spec.OUTCOMES)
SEVERITIES = set(spec.SEVERITIES)
ACTOR_TYPES = set(spec.ACTOR_TYPES)
TOP_FIELDS = set(spec.WIRE_KEYS)
REQUIRED = {f.path for f in spec.TOP_FIELDS if f.required} | {
    o.name for o in spec.OBJECT_FIELDS if o.required
}
ACTOR_FIELDS = set(spec.ACTOR_FIELDS)
NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8")
]
ATTACKER_NET = ipaddress.ip_network("203.0.113.0/24")
KINDS = {
    "brute_force",
    "password_spray",
    "recovery_spree",
    "mass_flag_flips",
    "off_hours_key_export",
}
TENANTS_PER_DAY_EVENTS = len(DEFAULT_TENANTS) * 7 * 400

Event = dict[str, Any]


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate()


@pytest.fixture(scope="module")
def quiet() -> DemoData:
    return generate(incidents=False)


def instant(event: Event) -> datetime:
    return datetime.fromisoformat(event["time"])


def incident(data: DemoData, kind: str) -> Incident:
    found = [i for i in data.incidents if i.kind == kind]
    assert len(found) == 1, kind
    return found[0]


def clusters(
    events: list[Event],
    key: Callable[[Event], Hashable],
    distinct: Callable[[Event], Hashable],
    span: timedelta,
    threshold: int,
) -> set[Hashable]:
    """Keys having ≥ threshold distinct values of `distinct` within some window of `span`."""
    groups: dict[Hashable, list[tuple[datetime, Hashable]]] = defaultdict(list)
    for e in events:
        groups[key(e)].append((instant(e), distinct(e)))
    hits: set[Hashable] = set()
    for k, rows in groups.items():
        rows.sort(key=lambda r: r[0])
        for i, (start, _) in enumerate(rows):
            seen = {d for t, d in rows[i:] if t - start <= span}
            if len(seen) >= threshold:
                hits.add(k)
                break
    return hits


# --------------------------------------------------------------------------------------
# Wire shape
# --------------------------------------------------------------------------------------


def check_event(e: Event) -> None:
    assert set(e) <= TOP_FIELDS, set(e) - TOP_FIELDS
    assert set(e) >= REQUIRED, REQUIRED - set(e)
    assert isinstance(e["tenant"], str) and spec.is_valid_tenant(e["tenant"])
    assert str(uuid.UUID(e["id"])) == e["id"]
    t = datetime.fromisoformat(e["time"])
    assert t.utcoffset() is not None
    assert e["category"] in ACTIONS
    assert e["action"] in ACTIONS[e["category"]]
    assert e["outcome"] in OUTCOMES
    assert e["severity"] in SEVERITIES
    actor = e["actor"]
    assert isinstance(actor, dict) and set(actor) <= ACTOR_FIELDS and "id" in actor
    assert isinstance(actor["id"], str) and actor["id"]
    assert actor["type"] in ACTOR_TYPES
    ip = ipaddress.ip_address(actor["ip"])
    assert any(ip in net for net in NETWORKS), ip
    assert isinstance(actor["user_agent"], str) and actor["user_agent"]
    if "target" in e:
        assert set(e["target"]) == {"type", "id"}
        assert all(isinstance(v, str) and v for v in e["target"].values())
    if "source" in e:
        assert e["source"] in {
            "auth-service",
            "admin-console",
            "kms",
            "flags-service",
            "recovery-service",
        }
    if "details" in e:
        assert isinstance(e["details"], dict)
        assert len(orjson.dumps(e["details"])) < 1024  # well under the 16 KiB limit


def test_every_event_has_the_wire_shape(data: DemoData) -> None:
    for e in data.events:
        check_event(e)


def test_events_sorted_by_instant_and_inside_the_window(data: DemoData) -> None:
    times = [instant(e) for e in data.events]
    assert times == sorted(times)
    start = datetime(2026, 11, 21, tzinfo=UTC)
    assert start <= times[0] and times[-1] < start + timedelta(days=7)


def test_event_counts(data: DemoData, quiet: DemoData) -> None:
    assert len(quiet.events) == TENANTS_PER_DAY_EVENTS
    planted = sum(len(i.event_ids) for i in data.incidents)
    assert len(data.events) == TENANTS_PER_DAY_EVENTS + planted
    per_tenant = Counter(e["tenant"] for e in quiet.events)
    assert per_tenant == {t: 7 * 400 for t in DEFAULT_TENANTS}


def test_ids_unique_uuid7_carrying_the_event_time(data: DemoData) -> None:
    ids = [e["id"] for e in data.events]
    assert len(set(ids)) == len(ids)
    for e in data.events:
        u = uuid.UUID(e["id"])
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        ms = int(instant(e).timestamp() * 1_000_000) // 1000
        assert u.int >> 80 == ms


def test_times_are_utc_except_a_few_local_offsets(data: DemoData) -> None:
    offsets = Counter(instant(e).utcoffset() for e in data.events)
    assert offsets[timedelta(0)] > 0.9 * len(data.events)
    assert len(offsets) > 1  # some emitters stamp the tenant's local offset
    for e in data.events:
        if not e["time"].endswith("Z"):
            assert instant(e).utcoffset() == tenant_utc_offset(e["tenant"])
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)", data.events[0]["time"]
    )


def test_all_five_categories_for_every_tenant(data: DemoData) -> None:
    seen = {(e["tenant"], e["category"]) for e in data.events}
    assert seen == {(t, c) for t in DEFAULT_TENANTS for c in ACTIONS}


def test_all_five_categories_even_for_tiny_runs() -> None:
    tiny = generate(days=1, events_per_tenant_per_day=6, incidents=False)
    seen = {(e["tenant"], e["category"]) for e in tiny.events}
    assert seen == {(t, c) for t in DEFAULT_TENANTS for c in ACTIONS}


def test_every_action_appears(data: DemoData) -> None:
    assert {e["action"] for e in data.events} == set().union(*ACTIONS.values())


# --------------------------------------------------------------------------------------
# Determinism and independence
# --------------------------------------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    a = generate(days=2, events_per_tenant_per_day=150)
    b = generate(days=2, events_per_tenant_per_day=150)
    assert a == b
    assert to_jsonl_bytes(a.events) == to_jsonl_bytes(b.events)


def test_default_run_is_reproducible(data: DemoData) -> None:
    again = generate(seed=7, end=DEFAULT_END, days=7)
    assert to_jsonl_bytes(again.events) == to_jsonl_bytes(data.events)
    assert again.incidents == data.incidents


def test_other_seed_other_traffic() -> None:
    a = generate(days=1, events_per_tenant_per_day=50, seed=1)
    b = generate(days=1, events_per_tenant_per_day=50, seed=2)
    assert [e["id"] for e in a.events] != [e["id"] for e in b.events]
    assert a.incidents != b.incidents


def test_incidents_false_plants_nothing_and_keeps_background(
    data: DemoData, quiet: DemoData
) -> None:
    assert quiet.incidents == []
    planted = {i for inc in data.incidents for i in inc.event_ids}
    background = [e for e in data.events if e["id"] not in planted]
    assert background == quiet.events


def test_tenant_traffic_does_not_depend_on_other_tenants(quiet: DemoData) -> None:
    alone = generate(tenants=["contoso"], incidents=False)
    assert alone.events == [e for e in quiet.events if e["tenant"] == "contoso"]


def test_iter_events_streams_the_same_events() -> None:
    kwargs: dict[str, Any] = {"days": 3, "events_per_tenant_per_day": 120, "seed": 11}
    assert list(iter_events(**kwargs)) == generate(**kwargs).events


# --------------------------------------------------------------------------------------
# Realism
# --------------------------------------------------------------------------------------


def local(e: Event) -> datetime:
    return instant(e).astimezone(UTC) + tenant_utc_offset(e["tenant"])


def test_diurnal_pattern_in_local_time(quiet: DemoData) -> None:
    for tenant in DEFAULT_TENANTS:
        hours = Counter(
            local(e).hour
            for e in quiet.events
            if e["tenant"] == tenant and local(e).weekday() < 5 and e["actor"]["type"] != "system"
        )
        working = sum(hours[h] for h in range(9, 17))
        night = sum(hours[h] for h in range(0, 8))  # the same number of hours
        assert working > 5 * night, (tenant, hours)


def test_weekends_are_quieter(quiet: DemoData) -> None:
    per_day = Counter((e["tenant"], local(e).date()) for e in quiet.events)
    for tenant in DEFAULT_TENANTS:
        weekday = [n for (t, d), n in per_day.items() if t == tenant and d.weekday() < 5]
        weekend = [n for (t, d), n in per_day.items() if t == tenant and d.weekday() >= 5]
        assert max(weekend) < min(weekday[1:-1])  # edge days are partial in local time


def test_logins_mostly_succeed_with_some_failures(quiet: DemoData) -> None:
    for tenant in DEFAULT_TENANTS:
        logins = Counter(
            e["outcome"] for e in quiet.events if e["tenant"] == tenant and e["action"] == "login"
        )
        total = sum(logins.values())
        assert 0.85 * total < logins["success"] < 0.98 * total
        assert logins["failure"] > 0


def test_plausible_severities(data: DemoData) -> None:
    by_action: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in data.events:
        by_action[e["action"], e["outcome"]].add(e["severity"])
    assert by_action["login", "success"] == {"info"}
    assert by_action["login", "failure"] <= {"low", "medium"}
    assert by_action["logout", "success"] == {"info"}
    assert by_action["key.export", "success"] <= {"high", "critical"}
    assert by_action["role.grant", "success"] <= {"medium", "high"}


def test_tenants_have_their_own_people(quiet: DemoData) -> None:
    actors: dict[str, set[str]] = defaultdict(set)
    for e in quiet.events:
        actors[e["tenant"]].add(e["actor"]["id"])
        assert e["actor"]["id"].endswith(f"{e['tenant']}.example")
    for tenant in DEFAULT_TENANTS:
        humans = {a for a in actors[tenant] if "@svc." not in a and "@system." not in a}
        assert 20 <= len(humans) <= 60
    types = Counter(e["actor"]["type"] for e in quiet.events)
    assert set(types) == ACTOR_TYPES


def test_background_never_uses_attacker_addresses(quiet: DemoData) -> None:
    assert not any(ipaddress.ip_address(e["actor"]["ip"]) in ATTACKER_NET for e in quiet.events)


# --------------------------------------------------------------------------------------
# Planted incidents
# --------------------------------------------------------------------------------------


def test_incident_records_point_at_real_events(data: DemoData) -> None:
    assert {i.kind for i in data.incidents} == KINDS
    by_id = {e["id"]: e for e in data.events}
    expected_tenant = {
        "brute_force": "northwind",
        "password_spray": "contoso",
        "recovery_spree": "globex",
        "mass_flag_flips": "contoso",
        "off_hours_key_export": "globex",
    }
    for inc in data.incidents:
        assert inc.tenant == expected_tenant[inc.kind]
        assert inc.event_ids and len(set(inc.event_ids)) == len(inc.event_ids)
        events = [by_id[i] for i in inc.event_ids]
        assert {e["tenant"] for e in events} == {inc.tenant}
        times = [instant(e) for e in events]
        assert inc.start == min(times) and inc.end == max(times)
        assert inc.start.utcoffset() == timedelta(0)
        assert inc.description
        if inc.ip is not None:
            assert all(e["actor"]["ip"] == inc.ip for e in events)
        d = inc.as_dict()
        assert orjson.loads(orjson.dumps(d)) == d


def test_brute_force(data: DemoData) -> None:
    inc = incident(data, "brute_force")
    failures = [e for e in data.events if e["action"] == "login" and e["outcome"] == "failure"]
    hits = clusters(
        failures,
        key=lambda e: (e["tenant"], e["actor"]["id"], e["actor"]["ip"]),
        distinct=lambda e: e["id"],
        span=timedelta(minutes=10),
        threshold=20,
    )
    assert hits == {("northwind", inc.actor_id, inc.ip)}  # and nothing in the background
    mine = [
        e
        for e in failures
        if e["tenant"] == inc.tenant
        and e["actor"]["id"] == inc.actor_id
        and e["actor"]["ip"] == inc.ip
    ]
    assert len(mine) >= 20
    last_failure = max(instant(e) for e in mine)
    successes = [
        e
        for e in data.events
        if e["tenant"] == inc.tenant
        and e["action"] == "login"
        and e["outcome"] == "success"
        and e["actor"]["id"] == inc.actor_id
        and e["actor"]["ip"] == inc.ip
    ]
    assert successes and all(instant(e) > last_failure for e in successes)
    assert min(instant(e) for e in successes) - last_failure < timedelta(minutes=5)


def test_password_spray(data: DemoData) -> None:
    inc = incident(data, "password_spray")
    failures = [e for e in data.events if e["action"] == "login" and e["outcome"] == "failure"]
    hits = clusters(
        failures,
        key=lambda e: (e["tenant"], e["actor"]["ip"]),
        distinct=lambda e: e["actor"]["id"],
        span=timedelta(minutes=30),
        threshold=15,
    )
    assert hits == {("contoso", inc.ip)}
    assert inc.end - inc.start <= timedelta(minutes=30)
    accounts = {e["actor"]["id"] for e in failures if e["actor"]["ip"] == inc.ip}
    assert len(accounts) >= 15


def test_recovery_spree(data: DemoData) -> None:
    inc = incident(data, "recovery_spree")
    requests = [e for e in data.events if e["action"] == "recovery.request"]
    hits = clusters(
        requests,
        key=lambda e: (e["tenant"], e["actor"]["id"], e["actor"]["ip"]),
        distinct=lambda e: e["target"]["id"],
        span=timedelta(hours=1),
        threshold=8,
    )
    assert hits == {("globex", inc.actor_id, inc.ip)}
    by_id = {e["id"]: e for e in data.events}
    mine = [by_id[i] for i in inc.event_ids]
    requested = {e["target"]["id"]: instant(e) for e in mine if e["action"] == "recovery.request"}
    completed = [e for e in mine if e["action"] == "recovery.complete"]
    assert len(requested) >= 8
    assert 1 <= len(completed) < len(requested)
    for e in completed:
        assert instant(e) > requested[e["target"]["id"]]


def test_mass_flag_flips(data: DemoData) -> None:
    inc = incident(data, "mass_flag_flips")
    flips = [e for e in data.events if e["action"] == "flag.update"]
    hits = clusters(
        flips,
        key=lambda e: (e["tenant"], e["actor"]["id"]),
        distinct=lambda e: e["id"],
        span=timedelta(minutes=15),
        threshold=25,
    )
    assert hits == {(inc.tenant, inc.actor_id)}
    assert inc.tenant in {"northwind", "contoso"}
    assert len(inc.event_ids) >= 25 and inc.end - inc.start <= timedelta(minutes=15)


def test_off_hours_key_export(data: DemoData) -> None:
    inc = incident(data, "off_hours_key_export")
    assert inc.tenant == "globex"
    by_id = {e["id"]: e for e in data.events}
    mine = sorted((by_id[i] for i in inc.event_ids), key=instant)
    actions = [e["action"] for e in mine]
    grant = next(e for e in mine if e["action"] == "role.grant")
    create = next(e for e in mine if e["action"] == "key.create")
    export = next(e for e in mine if e["action"] == "key.export")
    assert grant["target"]["id"] == inc.actor_id and grant["actor"]["id"] != inc.actor_id
    assert instant(grant) < instant(create) < instant(export)
    assert actions.index("role.grant") < actions.index("key.create")
    for e in (create, export):
        assert e["actor"]["id"] == inc.actor_id and e["actor"]["type"] == "admin"
        when = local(e)
        assert when.weekday() >= 5 and 2 <= when.hour <= 4, when
    assert create["target"] == export["target"]
    assert export["severity"] in {"high", "critical"}
    # Never seen doing key actions before (nor anywhere in the background).
    prior = [
        e
        for e in data.events
        if e["tenant"] == inc.tenant
        and e["actor"]["id"] == inc.actor_id
        and e["category"] == "key_change"
        and e["id"] not in inc.event_ids
    ]
    assert prior == []
    # The actor was around before as an ordinary user.
    assert any(
        e["actor"]["id"] == inc.actor_id and e["actor"]["type"] == "user"
        for e in data.events
        if instant(e) < instant(grant)
    )
    # No other key export happens off-hours in local time.
    off_hours_exports = [
        e
        for e in data.events
        if e["action"] == "key.export" and (local(e).weekday() >= 5 or not 7 <= local(e).hour < 20)
    ]
    assert [e["id"] for e in off_hours_exports] == [export["id"]]


def test_a_single_tenant_gets_every_incident() -> None:
    one = generate(tenants=["acme_corp"], days=2, events_per_tenant_per_day=200)
    assert {i.kind for i in one.incidents} == KINDS
    assert {i.tenant for i in one.incidents} == {"acme_corp"}
    ids = {e["id"] for e in one.events}
    for inc in one.incidents:
        assert set(inc.event_ids) <= ids
    for e in one.events:
        check_event(e)


def test_short_window_without_weekend_still_plants_export() -> None:
    run = generate(days=1, end=date(2026, 11, 25), events_per_tenant_per_day=100)
    inc = incident(run, "off_hours_key_export")
    start = datetime(2026, 11, 25, tzinfo=UTC)
    assert start <= inc.start and inc.end < start + timedelta(days=1)
    times = [instant(e) for e in run.events]
    assert times == sorted(times) and start <= times[0] and times[-1] < start + timedelta(days=1)


# --------------------------------------------------------------------------------------
# JSON Lines and arguments
# --------------------------------------------------------------------------------------


def test_write_jsonl_round_trips(tmp_path: Path) -> None:
    run = generate(days=1, events_per_tenant_per_day=300)
    path = tmp_path / "events.jsonl"
    assert write_jsonl(run.events, path) == len(run.events)
    raw = path.read_bytes()
    assert raw == to_jsonl_bytes(run.events)
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(run.events) + 1
    assert [orjson.loads(line) for line in lines[:-1]] == run.events


def test_write_jsonl_streams_an_iterator(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    count = write_jsonl(iter_events(days=1, events_per_tenant_per_day=50), path)
    assert (
        count
        == len(path.read_bytes().splitlines())
        == 3 * 50
        + sum(len(i.event_ids) for i in generate(days=1, events_per_tenant_per_day=50).incidents)
    )


def test_empty_jsonl(tmp_path: Path) -> None:
    assert to_jsonl_bytes([]) == b""
    assert write_jsonl([], tmp_path / "empty.jsonl") == 0
    assert (tmp_path / "empty.jsonl").read_bytes() == b""


def test_benchmark_scale_counts() -> None:
    tenants = [f"tenant{i:02d}" for i in range(20)]
    run = generate(tenants=tenants, days=2, events_per_tenant_per_day=1700, incidents=False)
    assert len(run.events) == 20 * 2 * 1700


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tenants": []},
        {"tenants": ["Northwind"]},
        {"tenants": ["-bad"]},
        {"tenants": ["a" * 64]},
        {"tenants": ["dup", "dup"]},
        {"tenants": "northwind"},
        {"days": 0},
        {"events_per_tenant_per_day": -1},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate(**kwargs)
    with pytest.raises(ValueError):
        iter_events(**kwargs)  # eagerly, not on first next()
