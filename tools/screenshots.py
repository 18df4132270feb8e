"""Screenshots of the hub, the export dialog, Statistics and Job Details at 1440×900 and 390×844.

    python -m tools.screenshots [OUT_DIR]     (default docs/screenshots)

Makes a 20,000-scan demo in a temporary folder, runs one scans export for the job list to show, starts
the web app on a free port and photographs each page in headless Chromium as the demo analyst.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.page_speed import CHROMIUM, CHROMIUM_ARGS, JOB_ROW, _free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
SIZES: dict[str, Any] = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 120_000


def _demo(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env |= {"EXPORTHUB_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "cli"]
    subprocess.run([*cli, "demo", "--scans", "20000", "--anchor", "2026-11-20"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    for export_type in ("scans", "users"):
        subprocess.run([*cli, "export", export_type, "--project", "demo-open", "--user", "analyst", "--var",
                        "format=csv", "--inline"], env=env, cwd=ROOT, check=True, capture_output=True)
    os.environ.update(env)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1_500)


def shoot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for size, viewport in SIZES.items():
                page = browser.new_page(viewport=viewport)
                page.goto(url + "/")
                page.get_by_label("Username").fill("analyst")
                page.get_by_label("Password", exact=True).fill("demo")
                page.get_by_role("button", name="Log in").click()
                page.locator(JOB_ROW).first.wait_for(timeout=TIMEOUT_MS)
                _settle(page)
                shots.append(out / f"hub-{size}.png")
                page.screenshot(path=shots[-1])

                page.locator(".st-key-generate-scans button").click()
                page.get_by_role("dialog").get_by_text("Estimate").wait_for(timeout=TIMEOUT_MS)
                _settle(page)
                shots.append(out / f"export-dialog-{size}.png")
                page.screenshot(path=shots[-1])

                page.goto(url + "/statistics")
                page.locator('[data-testid="stMetric"]', has_text="Total scans").wait_for(timeout=TIMEOUT_MS)
                page.locator(".js-plotly-plot .main-svg").nth(5).wait_for(state="attached", timeout=TIMEOUT_MS)
                _settle(page)
                if size == "phone":  # the figures stack on a phone: show the charts
                    page.get_by_role("tab", name="Activity").evaluate("e => e.scrollIntoView({block: 'start'})")
                    page.wait_for_timeout(500)
                shots.append(out / f"statistics-{size}.png")
                page.screenshot(path=shots[-1])

                page.goto(url + "/job?job=1")
                page.get_by_role("heading", name="Log").wait_for(timeout=TIMEOUT_MS)
                _settle(page)
                shots.append(out / f"job-details-{size}.png")
                page.screenshot(path=shots[-1])
                page.close()
            browser.close()
    finally:
        stop_server(proc)
    return shots


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory(prefix="exporthub-shots-") as tmp:
        _demo(Path(tmp) / "data")
        for path in shoot(out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
