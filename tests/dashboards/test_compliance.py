"""Compliance: data held per tenant with its retention and holds, the read audit
for those allowed it, and evidence packs that `auditlake verify-proof` accepts offline."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
from dashkit import Demo, cli, frame_with, open_page, page_text
from streamlit.testing.v1 import AppTest

BUILD = "FormSubmitter:compliance_pack_form-Build evidence pack"


def test_an_auditor_sees_its_data_and_takes_an_evidence_pack(
    demo: Demo, signed_in: Callable[[str], AppTest], tmp_path: Path
) -> None:
    contoso = demo.events().filter(pl.col("tenant") == "contoso")
    at = open_page(signed_in("alice"), "compliance")

    held = frame_with(at, "retention")
    assert list(held["tenant"]) == ["contoso"]
    assert held["events"][0] == contoso.height
    assert held["oldest"][0].to_pydatetime() == contoso["time"].min()
    assert held["newest"][0].to_pydatetime() == contoso["time"].max()
    assert held["legal holds"][0] == "none"
    assert held["retention"][0] == "2557 days (default)"
    assert any("retention apply" in c.value for c in at.caption)
    reads = frame_with(at, "interface")  # an auditor sees the reads of its tenant, only
    assert len(reads) > 0 and all(t == '["contoso"]' for t in reads["tenants"])
    assert at.selectbox(key="pack_tenant").options == ["contoso"]

    at.text_input(key="pack_query").input("outcome:failure")
    at.number_input(key="pack_limit").set_value(5)
    at.text_input(key="pack_note").input("case 42")
    at.button(key=BUILD).click().run()

    assert not at.exception, [e.value for e in at.exception]
    pack = at.session_state["compliance_pack"]
    assert pack.events == 5
    assert at.success[0].value.startswith("Evidence pack ready: 5 event(s)")
    path = tmp_path / pack.file_name
    path.write_bytes(pack.data)
    checked = cli("verify-proof", str(path), "--key", demo.verifier_key, env=demo.env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "evidence pack OK: 5 proof(s)" in checked.stdout
    failures = contoso.filter(pl.col("outcome") == "failure").sort("time", descending=True)
    with zipfile.ZipFile(path) as z:
        text = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert all(e in text for e in failures["event_id"].head(5).to_list())
    assert "case 42" in text
    for other in ("globex", "northwind"):
        assert other not in page_text(at)


def test_no_evidence_pack_of_another_tenant(signed_in: Callable[[str], AppTest]) -> None:
    at = open_page(signed_in("alice"), "compliance")

    at.text_input(key="pack_query").input("tenant:globex")
    at.button(key=BUILD).click().run()

    assert not at.exception
    assert len(at.error) == 1
    assert "may not read the events of tenant 'globex'" in at.error[0].value
    assert "compliance_pack" not in at.session_state


def test_the_operator_sees_who_queried_what(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    alice = open_page(signed_in("alice"), "search")
    alice.text_input(key="search_query").input("outcome:failure").run()

    at = open_page(signed_in("admin"), "compliance")

    audit = frame_with(at, "interface")
    assert list(audit.columns) == ["time", "principal", "interface", "query", "tenants", "outcome"]
    by_alice = audit[audit["principal"] == "alice"]
    assert "dashboard.search" in set(by_alice["interface"])
    assert "outcome:failure" in set(by_alice["query"])
    assert all(t == '["contoso"]' for t in by_alice["tenants"])
    at.multiselect(key="compliance_audit_who").set_value(["alice"]).run()
    assert set(frame_with(at, "interface")["principal"]) == {"alice"}


def test_a_viewer_gets_no_evidence_pack(signed_in: Callable[[str], AppTest]) -> None:
    at = open_page(signed_in("bob"), "compliance")

    assert list(frame_with(at, "retention")["tenant"]) == ["globex"]
    assert "read audit is shown to the operator, to the auditors" in at.info[0].value
    assert "investigator role" in at.info[-1].value
    assert not at.get("download_button")
