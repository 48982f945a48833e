"""The real thing: `auditlake dashboard` as a subprocess on 127.0.0.1, headless Chromium
(Debian's, driven by Playwright) signs in, a screenshot is kept in the test's tmp dir,
and the rendered page's text is what is asserted on.

Chromium runs with no network to reach (no first-run, sync, component update or
background traffic) and a fresh profile directory.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dashkit import Demo
from testkit import AUDITLAKE, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 60.0
PAGE_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`; "
        "make test installs it)",
    ),
]


@pytest.fixture
def dashboard(demo: Demo, tmp_path: Path) -> Iterator[str]:
    """`auditlake dashboard` on a free port; its URL once it answers."""
    assert AUDITLAKE
    port = free_port()
    log = (tmp_path / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [AUDITLAKE, "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        env=demo.env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the dashboard did not answer in time"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()  # the CLI exec'd Streamlit: this is the server itself
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def signed_in_page(url: str, token: str, profile: Path) -> Iterator[Any]:
    """Headless Chromium on `url`, signed in with `token`, on the Overview page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(url)
            page.get_by_label("Sign-in token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="auditlake · Overview").wait_for()
            yield page
        finally:
            browser.close()


def test_a_browser_signs_in_and_sees_only_its_tenant(
    dashboard: str, demo: Demo, tmp_path: Path
) -> None:
    events = demo.events().filter(pl.col("tenant") == "contoso").height
    shot = tmp_path / "overview.png"
    with signed_in_page(dashboard, demo.tokens["alice"], tmp_path / "chromium-profile") as page:
        page.get_by_text("Newest high-severity events").wait_for()
        page.get_by_text(f"{events:,}", exact=True).first.wait_for()
        # Charts and tables draw after their scripts load: wait, so the screenshot
        # shows them rather than placeholders.
        page.locator('[data-testid="stVegaLiteChart"] svg').first.wait_for()
        page.locator('[data-testid="data-grid-canvas"]').first.wait_for()
        page.screenshot(path=str(shot), full_page=True)
        text = page.inner_text("body")

    assert shot.stat().st_size > 10_000
    assert "auditlake · Overview" in text
    assert "Signed in as alice" in text
    assert "contoso" in text
    assert "globex" not in text and "northwind" not in text
    assert "Failure rate" in text


def test_a_browser_gets_no_mailto_links_and_downloads_every_match(
    dashboard: str, demo: Demo, tmp_path: Path
) -> None:
    mine = demo.events().filter(pl.col("tenant") == "northwind")  # dave investigates it
    with signed_in_page(dashboard, demo.tokens["dave"], tmp_path / "chromium-profile") as page:
        # Top actors are email addresses: nowhere on the page may one become a link.
        page.get_by_text("Top actors and addresses").wait_for()
        page.get_by_role("link", name="Alerts").click()
        page.get_by_role("heading", name="auditlake · Alerts").wait_for()
        page.get_by_text("Open an alert").wait_for()
        page.get_by_role("combobox", name="Alert", exact=True).click()
        page.get_by_role("option").first.click()
        page.get_by_text("grouped by").wait_for()
        mailto = page.locator('a[href^="mailto:"]').count()

        page.get_by_role("link", name="Search").click()
        page.get_by_role("heading", name="auditlake · Search").wait_for()
        page.locator('[data-testid="data-grid-canvas"]').first.wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="CSV", exact=True).click()
        saved = tmp_path / "download.csv"
        download.value.save_as(saved)

    assert mailto == 0
    downloaded = pl.read_csv(saved)
    assert downloaded.height == mine.height > 100  # more than the page of 100 shown
    assert sorted(downloaded["event_id"].to_list()) == sorted(mine["event_id"].to_list())
