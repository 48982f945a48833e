"""What a first hour with the dashboard found (#17): the last verification on screen and
current, verifier keys shown where the page says to use them, stored values never turned
into links, the read audit without one's own page renders, downloads of every match."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable

import polars as pl
from dashkit import Demo, cli, frame_with, open_page
from streamlit.testing.v1 import AppTest

from dashboards import data

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
CODE_SPAN = re.compile(r"(`+).*?\1")


def bare_emails(at: AppTest) -> list[str]:
    """Email addresses in rendered Markdown outside code spans (Markdown links those)."""
    found: list[str] = []
    for kind in ("markdown", "caption", "info", "success", "error", "warning"):
        for element in getattr(at, kind):
            found += [m.group(0) for m in EMAIL.finditer(CODE_SPAN.sub("", str(element.value)))]
    return found


def codes(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.code)


def test_the_last_verification_leads_the_table_and_the_hash_column_is_narrow(
    signed_in: Callable[[str], AppTest],
) -> None:
    at = open_page(signed_in("alice"), "integrity")

    table = at.dataframe[0]
    assert list(table.value.columns)[:4] == [
        "tenant",
        "result",
        "last verified (UTC)",
        "verified by",
    ]
    assert list(table.value.columns)[-1] == "root hash"
    config = json.loads(table.proto.columns)
    assert config["root hash"]["width"] == "small"


def test_a_verification_run_elsewhere_shows_at_the_next_render(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = open_page(signed_in("alice"), "integrity")
    assert frame_with(at, "tree size")["result"][0] == "never verified"

    ran = cli("verify", "--tenant", "contoso", env=demo.env, cwd=demo.lake.parent)
    assert ran.returncode == 0, ran.stderr
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    table = frame_with(at, "tree size")
    assert table["result"][0] == "ok"
    assert table["verified by"][0] == "admin"


def test_integrity_shows_the_trusted_verifier_keys(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = open_page(signed_in("alice"), "integrity")

    assert demo.verifier_key in codes(at)


def test_an_opened_alert_names_actors_without_mailto_links_and_gives_the_real_key(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = open_page(signed_in("admin"), "alerts")
    box = at.selectbox(key="alerts_open")
    with_email = [i for i, label in enumerate(box.options) if EMAIL.search(label)]
    assert with_email, box.options  # the demo's actors are email addresses
    box.select_index(with_email[0]).run()
    assert not at.exception, [e.value for e in at.exception]

    assert bare_emails(at) == []
    assert any(EMAIL.search(str(m.value)) for m in at.markdown)  # shown, as code

    at.button(key="alerts_build_pack").click().run()
    assert not at.exception, [e.value for e in at.exception]
    command = codes(at)
    assert "auditlake verify-proof evidence-" in command
    assert f"--key '{demo.verifier_key}'" in command
    assert "KEY'" not in command.replace(demo.verifier_key, "")


def test_findings_are_escaped_markdown(demo: Demo, signed_in: Callable[[str], AppTest]) -> None:
    from dashboards.controls import literal, prose

    assert literal("alice@example.com") == "`alice@example.com`"
    assert literal("a`b") == "``a`b``"
    assert prose("[x](http://evil) *y*") == r"\[x\]\(http://evil\) \*y\*"


def test_the_read_audit_can_hide_the_dashboards_own_reads(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    searched = cli("search", "--tenant", "contoso", "--limit", "1", env=demo.env, cwd=demo.lake)
    assert searched.returncode == 0, searched.stderr
    at = signed_in("admin")
    for name in ("overview", "search", "compliance"):
        open_page(at, name)  # each render of a page is recorded in the read audit

    at.run()  # the previous renders' reads are flushed by now
    shown = frame_with(at, "principal")
    dashboard = shown["interface"].str.startswith("dashboard")
    own = shown[(shown["principal"] == "admin") & dashboard]
    assert own.empty
    assert ((shown["principal"] == "admin") & shown["interface"].str.startswith("cli")).any()

    at.checkbox(key="compliance_audit_hide_own").uncheck().run()
    shown = frame_with(at, "principal")
    own = shown[(shown["principal"] == "admin") & shown["interface"].str.startswith("dashboard")]
    assert not own.empty


def test_search_downloads_hold_every_match_not_one_page(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    contoso = demo.events().filter(pl.col("tenant") == "contoso")
    at = open_page(signed_in("alice"), "search")
    at.selectbox(key="search_limit").set_value(25).run()
    assert len(frame_with(at, "event_id")) == 25 < contoso.height

    viewer = at.session_state["viewer"]
    rows = list(csv.DictReader(io.StringIO(data.search_export(viewer, "", "csv").decode())))
    assert sorted(r["event_id"] for r in rows) == sorted(contoso["event_id"].to_list())
    as_json = json.loads(data.search_export(viewer, "outcome:failure", "json"))
    failures = contoso.filter(pl.col("outcome") == "failure")
    assert sorted(e["event_id"] for e in as_json) == sorted(failures["event_id"].to_list())
