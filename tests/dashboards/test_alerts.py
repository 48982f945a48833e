"""Alerts: the triage table holds the principal's tenants' alerts only, its filters change
the counts, and an alert opens its evidence events and an evidence pack of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
from dashkit import Demo, cli, frame_with, metrics, number, open_page, page_text
from streamlit.testing.v1 import AppTest


def test_alerts_are_scoped_filtered_and_open_their_evidence(
    demo: Demo, signed_in: Callable[[str], AppTest], tmp_path: Path
) -> None:
    every = demo.admin_sql("SELECT * FROM alerts")
    mine = every.filter(pl.col("tenant") == "northwind")
    assert 0 < mine.height < every.height
    at = open_page(signed_in("dave"), "alerts")  # investigator on northwind

    assert number(metrics(at)["Alerts"]) == mine.height
    assert number(metrics(at)["Evidence events"]) == mine["event_count"].sum()
    table = frame_with(at, "alert_id")
    assert set(table["tenant"]) == {"northwind"}
    assert set(table["alert_id"]) == set(mine["alert_id"].to_list())
    for other in ("contoso", "globex"):
        assert other not in page_text(at)

    at.multiselect(key="alerts_severity").set_value(["high"]).run()
    high = mine.filter(pl.col("severity") == "high")
    assert number(metrics(at)["Alerts"]) == high.height > 0
    assert number(metrics(at)["High/critical"]) == high.height
    at.multiselect(key="alerts_severity").set_value(["high", "medium"]).run()
    rule = mine["rule_id"][0]
    at.multiselect(key="alerts_rules").set_value([rule]).run()
    assert number(metrics(at)["Alerts"]) == mine.filter(pl.col("rule_id") == rule).height
    at.multiselect(key="alerts_rules").set_value([]).run()
    at.text_input(key="alerts_text").input("NO SUCH ALERT").run()
    assert number(metrics(at)["Alerts"]) == 0 and not at.exception
    at.text_input(key="alerts_text").input("").run()

    alert = high.row(0, named=True)
    at.selectbox(key="alerts_open").set_value(alert["alert_id"]).run()
    assert not at.exception, [e.value for e in at.exception]
    events = frame_with(at, "event_id")
    assert sorted(events["event_id"]) == sorted(alert["event_ids"])
    assert len(events) == alert["event_count"] and set(events["tenant"]) == {"northwind"}
    assert not at.warning

    at.button(key="alerts_build_pack").click().run()
    assert not at.exception, [e.value for e in at.exception]
    picked, pack = at.session_state["alert_pack"]
    assert picked == alert["alert_id"] and pack.events == alert["event_count"]
    assert at.get("download_button")
    path = tmp_path / pack.file_name
    path.write_bytes(pack.data)
    checked = cli("verify-proof", str(path), "--key", demo.verifier_key, env=demo.env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert f"evidence pack OK: {alert['event_count']} proof(s)" in checked.stdout


def test_a_viewer_sees_no_alerts(signed_in: Callable[[str], AppTest]) -> None:
    at = open_page(signed_in("bob"), "alerts")

    assert not at.dataframe and not at.metric
    assert "investigator role" in at.info[0].value
