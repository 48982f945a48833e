"""Integrity: checkpoints and verification of the principal's tenants only; the button
verifies for real and lists what a tampered lake got wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from dashkit import Demo, frame_with, open_page, page_text
from streamlit.testing.v1 import AppTest

from lake.storage import Lake
from lake.verify import last_reports


def test_an_auditor_sees_its_checkpoint_and_verifies_it(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    at = open_page(signed_in("alice"), "integrity")
    contoso = demo.events().filter(pl.col("tenant") == "contoso")
    latest = demo.admin_sql(
        "SELECT tree_size, lower(hex(root_hash)) AS root, key_name FROM checkpoints "
        "WHERE tenant = 'contoso' ORDER BY tree_size DESC LIMIT 1"
    ).row(0, named=True)

    table = frame_with(at, "tree size")
    assert list(table["tenant"]) == ["contoso"]
    assert table["tree size"][0] == latest["tree_size"] == contoso.height
    assert table["root hash"][0] == latest["root"]
    assert table["key"][0] == latest["key_name"]
    assert table["result"][0] == "never verified"
    assert at.multiselect(key="verify_tenants").options == ["contoso"]

    at.button(key="verify_run").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.success] == [
        f"contoso: intact — {contoso.height:,} events, 2 signed checkpoint(s), "
        f"keys {latest['key_name']}"
    ]
    assert not at.error
    recorded = last_reports(Lake.open(demo.lake))
    assert set(recorded) == {"contoso"}
    assert recorded["contoso"]["by"] == "alice" and recorded["contoso"]["ok"] is True
    table = frame_with(at, "tree size")
    assert table["result"][0] == "ok" and table["verified by"][0] == "alice"
    for other in ("globex", "northwind"):
        assert other not in page_text(at)


def test_a_viewer_gets_no_checkpoints_and_no_button(signed_in: Callable[[str], AppTest]) -> None:
    at = open_page(signed_in("bob"), "integrity")

    assert not at.dataframe and not at.button(key="sign_out").disabled
    assert [b.key for b in at.button] == ["sign_out"]
    assert "need the auditor role" in at.info[0].value


def test_findings_of_a_tampered_lake_are_listed_plainly(
    demo: Demo, signed_in: Callable[[str], AppTest]
) -> None:
    lake = Lake.open(demo.lake)
    files = lake.data_files(lake.events_table(), tenants={"northwind"})
    path = Path(lake.root) / "events" / max(files, key=lambda f: f.num_records or 0).path
    table = pq.read_table(path)
    actors = table.column("actor_id").to_pylist()
    actors[3] = "mallory"
    index = table.schema.get_field_index("actor_id")
    pq.write_table(table.set_column(index, "actor_id", pa.array(actors)), path)
    changed = table.column("event_id")[3].as_py()

    at = open_page(signed_in("admin"), "integrity")
    at.multiselect(key="verify_tenants").set_value(["northwind", "globex"]).run()
    at.button(key="verify_run").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error][-1] == "northwind: 1 finding(s) — modified"
    assert at.success[0].value.startswith("globex: intact")
    findings = frame_with(at, "kind")
    assert list(findings["kind"]) == ["modified"]
    assert list(findings["event_id"]) == [changed]
    assert any(changed in m.value and "`modified`" in m.value for m in at.markdown)
    checkpoints = frame_with(at, "tree size")
    result = dict(zip(checkpoints["tenant"], checkpoints["result"], strict=True))
    assert result["northwind"] == "1 finding(s): modified" and result["globex"] == "ok"
