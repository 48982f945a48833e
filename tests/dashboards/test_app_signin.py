"""Sign-in: nothing is shown without a known token, and a token stands for one principal
whose current grants (and token) are checked again on every render."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dashkit import Demo, fresh_app, metrics, sign_in
from streamlit.testing.v1 import AppTest

from ingest.tokens import TokenStore
from lake.secrets import AccessPolicy, SigninStore


def assert_signed_out(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["auditlake"]
    assert at.text_input(key="token_input").label == "Sign-in token"
    assert not at.metric and not at.dataframe
    assert "signin_token" not in at.session_state


def test_nothing_but_the_sign_in_form_before_sign_in(demo: Demo) -> None:
    at = fresh_app().run()

    assert_signed_out(at)
    assert not at.error


@pytest.mark.parametrize("kind", ["empty", "made up", "a principal's name", "collector token"])
def test_a_bad_token_is_refused(demo: Demo, kind: str) -> None:
    presented = {
        "empty": "",
        "made up": "als_" + "x" * 43,
        "a principal's name": "admin",
        "collector token": TokenStore(demo.home).create(["contoso"]),
    }[kind]

    at = sign_in(presented)

    assert_signed_out(at)
    assert [e.value for e in at.error] == ["That sign-in token is not known here."]


def test_a_good_token_signs_in_as_its_principal(signed_in: Callable[[str], AppTest]) -> None:
    at = signed_in("alice")

    assert [t.value for t in at.title] == ["auditlake · Overview"]
    assert "Signed in as **alice**" in [m.value for m in at.sidebar.markdown]
    assert "auditor on contoso" in [c.value for c in at.sidebar.caption]
    assert at.multiselect(key="overview_tenants").options == ["contoso"]
    assert metrics(at)["Events"]


def test_sign_out_forgets_everything(signed_in: Callable[[str], AppTest]) -> None:
    at = signed_in("alice")

    at.button(key="sign_out").click().run()

    assert_signed_out(at)
    assert "viewer" not in at.session_state


def test_a_revoked_token_signs_out_at_the_next_click(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = signed_in("alice")
    assert SigninStore(demo.home).revoke("alice") == 1

    at.run()

    assert_signed_out(at)
    assert [w.value for w in at.warning] == [
        "Your sign-in token is no longer valid; sign in again."
    ]


def test_changed_grants_apply_at_the_next_click(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = signed_in("bob")  # viewer on globex
    assert at.multiselect(key="overview_tenants").options == ["globex"]
    policy = AccessPolicy(demo.home)

    policy.grant("bob", "contoso", "viewer")
    at.run()
    assert at.multiselect(key="overview_tenants").options == ["contoso", "globex"]

    policy.revoke("bob")
    at.run()
    assert not at.exception
    assert not at.metric
    assert "holds no grant" in at.info[0].value  # the lake refuses it every query now


def test_a_missing_lake_setting_is_a_message_not_a_traceback(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDITLAKE_LAKE")

    at = sign_in(demo.tokens["alice"])

    assert not at.exception, [e.value for e in at.exception]
    assert "AUDITLAKE_LAKE is not set" in at.error[0].value
