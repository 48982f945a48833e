"""Every page renders for every kind of principal, from the operator down to one with no
grant at all, without an exception, and names the product in its header."""

from __future__ import annotations

import pytest
from dashkit import Demo, open_page, sign_in

from lake.secrets import SigninStore

PAGES = ("overview", "integrity", "alerts", "search", "compliance")


@pytest.mark.parametrize("principal", ["admin", "alice", "bob", "dave", "carol"])
def test_every_page_renders_for_every_principal(demo: Demo, principal: str) -> None:
    # carol holds a token but no grant: every page must say so rather than fail.
    token = demo.tokens.get(principal) or SigninStore(demo.home).create(principal)
    at = sign_in(token)
    assert not at.exception, [e.value for e in at.exception]

    for name in PAGES:
        open_page(at, name)
        assert [t.value for t in at.title] == [f"auditlake · {name.capitalize()}"]
        assert not at.error, (name, [e.value for e in at.error])
        if principal == "carol":
            assert not at.dataframe and not at.metric, name
            assert at.info, name
