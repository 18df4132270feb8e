"""The statistics page in a real browser: Plotly charts render, a filter updates them, and a report
starts from the view. Runs the real server (``streamlit run server.py``) on its own port and data dir."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("stats-e2e") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data)
    subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--scans", "20000", "--anchor", "2026-11-20"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "server.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not start")
        yield url, data
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _total_scans(page) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text="Total scans")
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


# The order things reach the page in (the figures, the charts' held places, the first chart), and whether
# a chart was there a frame and a task after the figures arrived (once the browser had painted them).
_FIGURES_BEFORE_CHARTS_JS = """(() => {
    const order = [];
    const charts = () => document.querySelectorAll('.js-plotly-plot').length;
    const once = (what) => { if (!order.includes(what)) order.push(what); };
    window.__figures = {order};
    const seen = new MutationObserver(() => {
        if ([...document.querySelectorAll('[data-testid="stMetric"]')]
                .some(m => m.textContent.includes('Total scans')) && !order.includes('figures')) {
            once('figures');
            requestAnimationFrame(() => setTimeout(() => { window.__figures.afterPaint = charts(); }, 0));
        }
        if (document.body.innerText.includes('Drawing the charts')) once('places');
        if (charts()) { once('chart'); seen.disconnect(); }
    });
    seen.observe(document, {subtree: true, childList: true, characterData: true});
})()"""


def test_charts_render_update_and_start_a_report(server):
    from playwright.sync_api import expect, sync_playwright

    url, data = server
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.get_by_label("Username").fill("analyst")
        page.get_by_role("textbox", name="Password").fill("demo")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=60_000)
        page.add_init_script(_FIGURES_BEFORE_CHARTS_JS)
        page.goto(url + "/statistics")
        page.wait_for_function("() => window.__figures.order.includes('chart')", timeout=90_000)
        # The figures come with the charts' places held (in either order: the metric's code loads lazily),
        # and the charts only in the run that follows, after the browser has painted the figures.
        figures = page.evaluate("window.__figures")
        assert sorted(figures["order"][:2]) == ["figures", "places"] and figures["order"][2:] == ["chart"], figures
        assert figures["afterPaint"] == 0

        plots = page.locator(".js-plotly-plot")
        # The open tab's three charts and the explore chart; each other tab draws its charts when opened.
        expect(plots.nth(3)).to_be_attached(timeout=90_000)
        for tab, charts in (("People and zones", 2), ("Cost", 3)):
            page.get_by_role("tab", name=tab).click()
            panel = page.get_by_role("tabpanel", name=tab)
            expect(panel.locator(".js-plotly-plot .main-svg").nth(2 * charts - 1)).to_be_attached(timeout=60_000)
        before = _total_scans(page)
        assert re.fullmatch(r"[\d,]+", before)

        # The filters wait behind their button (the browser has not drawn their widgets), their settings
        # beside it.
        assert page.locator('[data-testid="stMultiSelect"]').count() == 0
        expect(page.get_by_text("All time · per day · all zones · all users")).to_be_visible(timeout=60_000)
        # One zone only: the headline and the charts follow.
        page.get_by_role("button", name="Filters").click()
        page.get_by_role("combobox", name="Zones (empty = all)").click()
        # A zone by its code: the list's first entry is Streamlit's "Select all".
        page.get_by_role("option", name=re.compile(r"^Z-")).first.click()
        page.keyboard.press("Escape")  # the list of zones
        expect(
            page.locator('[data-testid="stMetric"]', has_text="Total scans").locator(
                '[data-testid="stMetricValue"]'
            )
        ).not_to_have_text(before, timeout=60_000)
        after = _total_scans(page)
        assert int(after.replace(",", "")) < int(before.replace(",", ""))
        expect(page.get_by_text(re.compile(r"^All time · per day · zones Z-[^,]+ · all users$"))).to_be_visible(
            timeout=60_000)
        page.keyboard.press("Escape")  # the filters
        # The full run holds the place of the tabs, and the browser then asks for them: they come back, on
        # the tab that was open (the Cost tab's three charts, and Explore's).
        expect(page.get_by_text("Drawing the charts…")).to_have_count(0, timeout=60_000)
        expect(plots.nth(3)).to_be_attached(timeout=60_000)
        expect(page.get_by_role("tab", name="Cost")).to_have_attribute("aria-selected", "true")

        page.get_by_role("button", name="Generate report from this view").click()
        started = page.get_by_text(re.compile(r"started as job #\d+"))
        expect(started).to_be_visible(timeout=60_000)
        # The click leaves the view as it is: its run keeps the charts drawn, and the message stays.
        expect(page.get_by_text("Drawing the charts…")).to_have_count(0)
        expect(plots.nth(3)).to_be_attached()
        page.wait_for_timeout(1_000)  # a rerun asked for after painting would have wiped the message by now
        expect(started).to_be_visible()
        browser.close()

    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data / 'exporthub.db'}")
    with engine.connect() as conn:
        variables = conn.execute(
            text("SELECT variables FROM jobs WHERE export_type = 'statistics' ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    zones = (json.loads(variables) if isinstance(variables, str) else variables)["zones"]
    assert len(zones) == 1 and zones[0].startswith("Z-"), zones
