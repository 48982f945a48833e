"""The lake on S3: moto's S3 server on 127.0.0.1, a fresh bucket per test.

Everything a local lake does must work on an object store through the storage layer:
appends, seals, verify (and tampering found in the bucket), proofs, the query layer with
its tenant scoping (through local copies, lake/storage/_cache.py), detection and retention. The
storage options are passed explicitly here (the CLI tests use the environment).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from lake_testkit import new_lake
from testkit import login, moto_s3

import lake.api as al
from detect.model import Rule, rule_from_dict
from detect.runner import RunBusy, run
from lake.contract import Alert, LakeError, StorageError, UsageError, validate
from lake.log import NoteSigner
from lake.proofs import check_proof, latest_checkpoint, prove
from lake.secrets import AccessDenied, AccessPolicy, TrustStore
from lake.storage import Lake
from lake.verify import verify_lake
from lake.write import append, set_policy
from lake.write import apply as apply_retention

SECRET = "s3cr3t-never-printed-7f3a"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@dataclass
class S3:
    endpoint: str
    log: Path  # (path, If-None-Match) of every PutObject, one JSON array a line

    def puts(self) -> list[tuple[str, str | None]]:
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]

    def options(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """One moto S3 server per worker, on 127.0.0.1, recording every PutObject's headers."""
    log = tmp_path_factory.mktemp("moto") / "puts.jsonl"
    with moto_s3(put_log=log) as endpoint:
        yield S3(endpoint, log)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS settings of the user's; the copies cache in tmp_path."""
    for name in list(__import__("os").environ):
        if name.startswith(("AWS_", "AUDITLAKE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUDITLAKE_CACHE", str(tmp_path / "cache"))


@dataclass
class S3Lake:
    lake: Lake
    bucket: str
    home: Path
    signer: NoteSigner

    def reopen(self) -> Lake:
        return Lake.open(self.lake.root, storage_options=self.lake.storage_options)


def traffic() -> list[dict[str, Any]]:
    """Two tenants over two days; 12 failed logins in 4 minutes for mallory@acme."""
    out = []
    for tenant in ("acme", "beta"):
        for i in range(40):
            at = T0 + timedelta(minutes=71 * i)
            out.append(login(tenant, f"user{i % 7}", at, "failure" if i % 9 == 0 else "success"))
    out += [login("acme", "mallory", T0 + timedelta(seconds=20 * k), "failure") for k in range(12)]
    return out


@pytest.fixture
def s3_lake(s3: S3, tmp_path: Path) -> S3Lake:
    bucket = s3.bucket()
    home = tmp_path / "home"
    lake, signer = new_lake(f"s3://{bucket}/audit", home, "t", storage_options=s3.options())
    append(lake, validate(traffic(), namespace=b"s3").table, signer)
    return S3Lake(lake, bucket, home, signer)


def kinds(report: Any) -> set[str]:
    return {f.kind for f in report.findings}


def test_appends_seal_verify_and_prove_on_s3(s3: S3, s3_lake: S3Lake) -> None:
    lake = s3_lake.reopen()
    keys = s3.keys(s3_lake.bucket)
    assert any(re.match(r"audit/events/tenant=acme/event_date=.*\.parquet$", k) for k in keys)
    assert any(k.startswith("audit/tiles/acme/tile/0/") for k in keys)
    assert not [k for k in keys if "/.tmp-" in k]  # one PUT per small file, no temp + move
    # Every Delta commit was a put-if-absent: what keeps concurrent writers from forking.
    commits = [(p, h) for p, h in s3.puts() if re.search(r"_delta_log/\d{20}\.json$", p)]
    commits = [(p, h) for p, h in commits if f"/{s3_lake.bucket}/" in p]
    assert len(commits) >= 4 and all(h == "*" for _, h in commits), commits

    report = verify_lake(lake, TrustStore(s3_lake.home).keys())
    assert report.ok, report.findings
    assert {t.tenant: t.events for t in report.tenants} == {"acme": 52, "beta": 40}

    first = lake.read_rows(lake.data_files(lake.events_table(), tenants={"beta"}))
    event_id = str(first.column("event_id")[0].as_py())
    proof = prove(lake, "beta", event_id, [s3_lake.signer.verifier_key.encode()])
    assert check_proof(proof, TrustStore(s3_lake.home).keys())
    assert latest_checkpoint(lake, "beta")["tree_size"] == 40


def test_a_changed_object_in_the_bucket_is_found(s3: S3, s3_lake: S3Lake) -> None:
    lake = s3_lake.lake
    target = max(
        lake.data_files(lake.events_table(), tenants={"acme"}), key=lambda f: f.num_records or 0
    )
    key = f"audit/events/{target.path}"
    client = s3.client()
    table = pq.read_table(
        io.BytesIO(client.get_object(Bucket=s3_lake.bucket, Key=key)["Body"].read())
    )
    actors = table.column("actor_id").to_pylist()
    actors[0] = "mallory-was-never-here"
    table = table.set_column(table.schema.get_field_index("actor_id"), "actor_id", pa.array(actors))
    out = io.BytesIO()
    pq.write_table(table, out)
    client.put_object(Bucket=s3_lake.bucket, Key=key, Body=out.getvalue())

    report = verify_lake(s3_lake.reopen(), TrustStore(s3_lake.home).keys())
    assert not report.ok
    assert "modified" in kinds(report)
    assert {f.tenant for f in report.findings} == {"acme"}
    # The query layer refuses the changed object rather than serve it as the committed one.
    with (
        al.open(
            lake.root, as_="admin", home=s3_lake.home, storage_options=lake.storage_options
        ) as session,
        pytest.raises(StorageError, match="verify"),
    ):
        session.sql("SELECT count(*) FROM events")


def test_query_layer_reads_only_the_principals_copies(s3_lake: S3Lake, tmp_path: Path) -> None:
    lake, home, cache = s3_lake.lake, s3_lake.home, tmp_path / "cache"
    AccessPolicy(home).grant("bob", "acme", "auditor")
    opts = lake.storage_options
    with al.open(lake.root, as_="bob", home=home, storage_options=opts) as bob:
        assert bob.sql("SELECT DISTINCT tenant FROM events")["tenant"].to_list() == ["acme"]
        cached = {p.relative_to(cache) for p in cache.rglob("*.parquet")}
        assert cached and all("tenant=acme" in str(p) for p in cached)
        assert not any("tenant=beta" in str(p) for p in cached)
        hits = bob.search("actor:mallory outcome:failure", limit=None).to_arrow()
        assert hits.num_rows == 12
        assert bob.events(tenant="acme").collect().height == 52
        assert bob.sql("SELECT DISTINCT tenant FROM checkpoints")["tenant"].to_list() == ["acme"]
        with pytest.raises(AccessDenied):
            bob.search("tenant:beta")

        # The operator's session copies beta's files into the same cache directory...
        with al.open(lake.root, as_="admin", home=home, storage_options=opts) as admin:
            assert set(admin.sql("SELECT DISTINCT tenant FROM events")["tenant"]) == {
                "acme",
                "beta",
            }
        beta_copy = next(p for p in cache.rglob("*.parquet") if "tenant=beta" in str(p))
        # ...which bob's locked connection still cannot read.
        with pytest.raises(AccessDenied):
            bob.sql(f"SELECT * FROM read_parquet('{beta_copy}')")
    mode = (cache / "objects").stat().st_mode & 0o777
    assert mode == 0o700, oct(mode)
    assert all(p.stat().st_mode & 0o077 == 0 for p in cache.rglob("*.parquet"))


def brute_rule() -> Rule:
    doc = yaml.safe_load(
        """
id: t.brute
title: "Brute force against {actor_id}"
kind: threshold
severity: high
match: "action:login outcome:failure"
group_by: [actor_id]
window: 10m
threshold: 10
"""
    )
    return rule_from_dict(doc, "test")


class NestedRun:
    """A sink that runs detection again before the outer run commits: an overlapping run."""

    name = "nested-run"

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.inner: Any = None

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.inner is None:
            self.inner = run(self.lake, [brute_rule()], now=T0 + timedelta(days=3))

    def close(self) -> None:
        return None


def alert_rows(lake: Lake) -> list[tuple[str, str, str, int]]:
    rows = lake.read_alerts().to_pylist()
    return sorted((a["rule_id"], a["tenant"], a["title"], a["event_count"]) for a in rows)


def test_detect_runs_on_s3_and_overlapping_runs_never_duplicate(s3_lake: S3Lake) -> None:
    """No file lock on S3: the alerts commit is the fence. A run that another run overtook
    (here: one started from its sink, before it commits) writes nothing."""
    lake, now = s3_lake.lake, T0 + timedelta(days=3)
    nested = NestedRun(lake)
    with pytest.raises(RunBusy, match="another"):  # both would create the alerts table
        run(lake, [brute_rule()], now=now, sinks=[nested])
    assert nested.inner is not None and len(nested.inner.new) == 1
    mallory = ("t.brute", "acme", "Brute force against mallory", 12)
    assert alert_rows(lake) == [mallory]

    at = T0 + timedelta(hours=30)
    burst = [login("beta", "trudy", at + timedelta(seconds=15 * k), "failure") for k in range(11)]
    append(lake, validate(burst, namespace=b"trudy").table, s3_lake.signer)
    nested = NestedRun(lake)
    with pytest.raises(RunBusy, match="another"):  # both would merge into the same version
        run(lake, [brute_rule()], now=now, sinks=[nested])
    trudy = ("t.brute", "beta", "Brute force against trudy", 11)
    assert alert_rows(lake) == [mallory, trudy]

    again = run(lake, [brute_rule()], now=now)
    assert not again.new and not again.changed
    assert alert_rows(lake) == [mallory, trudy]


def test_retention_removes_objects_and_cached_copies(
    s3: S3, s3_lake: S3Lake, tmp_path: Path
) -> None:
    lake, home = s3_lake.lake, s3_lake.home
    admin = AccessPolicy(home).principal("admin")
    with al.open(lake.root, home=home, storage_options=lake.storage_options) as session:
        session.sql("SELECT count(*) FROM events")  # copies every acme file
        first_day = (T0).date().isoformat()
        assert list((tmp_path / "cache").rglob(f"tenant=acme/event_date={first_day}/*.parquet"))
        set_policy(lake, s3_lake.signer, admin, "acme", days=1, now=T0 + timedelta(days=1))
        apply_retention(lake, s3_lake.signer, admin, tenants=["acme"], now=T0 + timedelta(days=2))
        assert not s3.keys(s3_lake.bucket, f"audit/events/tenant=acme/event_date={first_day}/")
        left = session.sql("SELECT min(event_date) AS d FROM events WHERE tenant = 'acme'")
        assert str(left["d"][0]) > first_day
        assert not list((tmp_path / "cache").rglob(f"tenant=acme/event_date={first_day}/*"))
    report = verify_lake(s3_lake.reopen(), TrustStore(home).keys())
    assert report.ok, report.findings


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, "AWS_S3_ALLOW_UNSAFE_RENAME"),
        ({"conditional_put": "disabled"}, "conditional writes"),
        ({"AWS_ALLOW_HTTP": "false"}, "AWS_ALLOW_HTTP=true"),
    ],
)
def test_unsafe_configurations_are_refused(s3: S3, extra: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        Lake.open(f"s3://{s3.bucket()}/audit", storage_options={**s3.options(), **extra})


def test_unsafe_rename_from_the_environment_is_refused(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    with pytest.raises(UsageError, match="unset it"):
        Lake.open(f"s3://{s3.bucket()}/audit", storage_options=s3.options())


def test_errors_never_carry_secrets(s3: S3) -> None:
    with pytest.raises(UsageError) as in_uri:
        Lake.open(f"s3://testing:{SECRET}@bucket/audit")
    assert SECRET not in str(in_uri.value)
    with pytest.raises(UsageError, match="no '\\?' options"):
        Lake.open(f"s3://bucket/audit?secret_key={SECRET}")
    missing = Lake.open  # a bucket that does not exist, then an endpoint nobody serves
    with pytest.raises(LakeError) as no_bucket:
        missing("s3://no-such-bucket-here/audit", storage_options=s3.options())
    refused = {**s3.options(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    with pytest.raises(StorageError) as no_server:
        missing("s3://bucket/audit", storage_options=refused)
    for exc in (no_bucket.value, no_server.value):
        text = str(exc)
        assert SECRET not in text and "\n" not in text, text
    assert "127.0.0.1:9" in str(no_server.value)


def test_every_delta_table_is_opened_through_the_lake() -> None:
    """Storage options reach a table only if `Lake` opens it: no other module may."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for pkg in ("lake", "detect", "ingest", "auditlake", "tui", "dashboards")
        for path in sorted((root / pkg).rglob("*.py"))
        if path.relative_to(root).as_posix() != "lake/storage/_lake.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bDeltaTable(\.create)?\(", line)
    ]
    assert not offenders, offenders
