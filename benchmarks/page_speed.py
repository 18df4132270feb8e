"""The statistics page against the hub, in headless Chromium, in one run (issue 14).

    python -m benchmarks.page_speed [REPEAT]

Run with ``EXPORTHUB_DATA_DIR`` set to a demo data dir. Starts the web app
on a free port (as ``exporthub up`` does, without its worker), logs in as the demo analyst and, after one
untimed pass of each page, measures REPEAT times, alternating:

* the hub: from navigation to its job list (the first job row, or the "no jobs" note);
* statistics: from navigation to the headline figures, and to every chart of the open tab drawn by
  Plotly; then each other chart tab: from the click to its charts drawn.

Each time is that of the browser frame that painted it, taken inside the page (see :data:`PAINT_PROBES`).

Prints one JSON object on its last line: ``seconds`` (statistics, navigation to the open tab's charts),
``hub_seconds``, ``headline_seconds``, ``tab_seconds`` (the slowest other tab), ``cold_*`` for the
untimed first pass, and the ratios to the hub. All figures are medians.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT: Any = {"width": 1440, "height": 900}  # Playwright's ViewportSize
USER, PASSWORD = "analyst", "demo"
TIMEOUT_MS = 180_000
JOB_ROW = '[class*="st-key-jobs-job-"]'
# Timed inside the page, not by Playwright's polling: Playwright checks from the page's main thread, so
# while Plotly draws the charts (long tasks) it notices the figures late, although they were painted
# before. A MutationObserver sees each probe come true; the time kept is that of the next animation frame
# (the frame that paints it), in ms since the navigation started (``performance.now()``).
PAINT_PROBES = """
(() => {
  window.__shown = {};
  window.__chartsWanted = 0;
  const drawnInTab = () => Array.from(document.querySelectorAll('[role="tabpanel"]'))
    .filter(p => p.offsetParent !== null)
    .reduce((k, p) => k + p.querySelectorAll('.js-plotly-plot .main-svg').length / 2, 0);
  const probes = {
    jobs: () => document.querySelector('JOB_ROW') !== null
      || (document.body !== null && document.body.innerText.includes('No jobs yet')),
    headline: () => Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
      .some(m => m.textContent.includes('Total scans')),
    charts: () => window.__chartsWanted > 0 && drawnInTab() >= window.__chartsWanted,
  };
  const check = () => {
    for (const [name, probe] of Object.entries(probes)) {
      if (!(name in window.__shown) && probe()) {
        window.__shown[name] = null;
        requestAnimationFrame(() => { window.__shown[name] = performance.now(); });
      }
    }
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true, characterData: true});
})();
""".replace("JOB_ROW", JOB_ROW)


def painted(page: Any, name: str) -> float:
    """Seconds from the navigation to the frame that painted probe ``name`` (see :data:`PAINT_PROBES`)."""
    page.wait_for_function(f"window.__shown && typeof window.__shown[{name!r}] === 'number'",
                           timeout=TIMEOUT_MS)
    return float(page.evaluate(f"window.__shown[{name!r}]")) / 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    from exporthub.launcher import web_command

    proc = subprocess.Popen(  # the web app as `exporthub up` starts it (theme and settings included)
        web_command(port, "127.0.0.1"),
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise TimeoutError("the web app did not start in 120 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def hub_pass(page: Any, url: str) -> float:
    page.goto(url + "/")
    return painted(page, "jobs")


def statistics_pass(page: Any, url: str, tabs: dict[str, int]) -> dict[str, float]:
    """Seconds to the headline, to the first tab's charts, and from each other tab's click to its charts."""
    first, *others = tabs
    page.goto(url + "/statistics")
    page.evaluate(f"window.__chartsWanted = {tabs[first]}")
    headline = painted(page, "headline")
    charts = painted(page, "charts")
    switches = []
    for name in others:
        page.evaluate(f"delete window.__shown.charts; window.__chartsWanted = {tabs[name]}")
        clicked = float(page.evaluate("performance.now()")) / 1000
        page.get_by_role("tab", name=name).click()
        switches.append(painted(page, "charts") - clicked)
    return {"headline": headline, "charts": charts, "tab": max(switches, default=0.0)}


def measure(repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from ui.stats_view import CHART_TABS

    tabs = {name: len(keys) for name, keys in CHART_TABS.items()}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.add_init_script(PAINT_PROBES)
            page.goto(url + "/")
            page.get_by_label("Username").fill(USER)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT_MS)
            cold_hub = hub_pass(page, url)
            cold = statistics_pass(page, url, tabs)
            hub: list[float] = []
            stats: list[dict[str, float]] = []
            for _ in range(repeat):
                hub.append(hub_pass(page, url))
                stats.append(statistics_pass(page, url, tabs))
            browser.close()
    finally:
        stop_server(proc)
    med = {k: statistics.median(s[k] for s in stats) for k in ("headline", "charts", "tab")}
    hub_s = statistics.median(hub)
    return {
        "seconds": round(med["charts"], 4),
        "hub_seconds": round(hub_s, 4),
        "headline_seconds": round(med["headline"], 4),
        "tab_seconds": round(med["tab"], 4),
        "cold_hub_seconds": round(cold_hub, 4),
        "cold_headline_seconds": round(cold["headline"], 4),
        "cold_charts_seconds": round(cold["charts"], 4),
        "headline_to_hub": round(med["headline"] / hub_s, 3),
        "charts_to_hub": round(med["charts"] / hub_s, 3),
        "tab_to_hub": round(med["tab"] / hub_s, 3),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3)))
