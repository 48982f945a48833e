"""Red-team checks of the read audit on an encrypted lake (#17 A7).

String literals, comments and quoted identifiers were recorded as keyed-hash tokens, but
a number was recorded as typed: `json_extract(details, '$.ssn')::BIGINT = 123456789`
put the encrypted field's value, in plaintext, into the reserved tenant's log (and an
unquoted address, a syntax error, too), beyond the reach of `keys shred`.

An auditor of one tenant saw the whole text of a read that covered another tenant too:
`WHERE tenant = 'globex' AND actor_id = '...'` run by a principal of both tenants named
globex's data to contoso's auditor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_testkit import Built, EncryptedAppend

import lake.api as al
from lake.query import TOKEN_PREFIX, WITHHELD, Redactor
from lake.storage import Lake

SSN = "918273645"
ADDRESS = "198.51.100.77"


@pytest.fixture
def enc(encrypted_lake: EncryptedAppend) -> tuple[Lake, Path]:
    event: dict[str, object] = {
        "tenant": "acme", "time": "2026-11-02T10:00:00Z", "category": "authentication",
        "action": "login", "outcome": "failure", "actor": {"id": "victim@x", "ip": ADDRESS},
        "details": {"ssn": int(SSN)},
    }  # fmt: skip
    return encrypted_lake([event])


def test_a_number_in_sql_leaves_no_plaintext_value(enc: tuple[Lake, Path]) -> None:
    lake, home = enc
    s = al.open(lake.base, home=home)
    query = f"SELECT count(*) AS n FROM events WHERE CAST(details->>'ssn' AS BIGINT) = {SSN}"
    assert s.sql(query)["n"][0] == 1
    with pytest.raises(Exception, match="SQL error"):
        s.sql(f"SELECT count(*) FROM events WHERE actor_ip = {ADDRESS}")  # forgot the quotes
    s.close()
    for needle in (SSN.encode(), ADDRESS.encode()):
        leaks = [p for p in Path(lake.base).rglob("*") if p.is_file() and needle in p.read_bytes()]
        assert leaks == [], needle


def test_the_redactor_tokens_numbers_outside_names() -> None:
    r = Redactor(b"k" * 32)
    out = r.sql("SELECT t1.x2, $1 FROM events t1 WHERE a = 42 AND b = 1.5e3 AND c = .5")
    assert "t1.x2" in out and "events t1" in out and "$1" in out  # names and parameters
    assert "42" not in out and "1.5e3" not in out and ".5" not in out
    assert out.count(TOKEN_PREFIX) == 3
    assert f"c = {r.token('.5')}" in out
    assert r.token(ADDRESS) in r.sql(f"WHERE actor_ip = {ADDRESS}")  # the search's token


def test_an_auditor_does_not_see_the_text_of_a_read_over_other_tenants_too(
    built_lake: Built, tmp_path: Path
) -> None:
    copy = built_lake.copy_with_home(tmp_path)
    policy = copy.policy
    policy.grant("multi", "contoso", "viewer")
    policy.grant("multi", "globex", "viewer")
    policy.grant("carol", "contoso", "auditor")
    policy.grant("olga", "contoso", "auditor")
    policy.grant("olga", "globex", "auditor")

    query = "SELECT count(*) FROM events WHERE tenant = 'globex' AND actor_id = 'globex-ceo'"
    copy.session("multi").sql(query).to_arrow()
    seen = copy.session("carol").sql(
        "SELECT details->>'query' AS q, details->>'tenants' AS t FROM query_audit"
        " WHERE actor_id = 'multi'"
    ).to_arrow().to_pylist()  # fmt: skip
    assert seen == [{"q": WITHHELD, "t": '["contoso"]'}]
    # An auditor of every tenant the read covered sees it whole.
    whole = (
        copy.session("olga")
        .sql("SELECT details->>'query' AS q FROM query_audit WHERE actor_id = 'multi'")
        .to_arrow()
    )
    assert whole["q"].to_pylist() == [query]
