"""The hub in headless Chromium against ``exporthub up``: log in, survive a reload, generate a scans
CSV through the dialog, watch the list reach Completed without reloading, download the file with
one click and check its rows against the lake; a viewer finds no Generate button; the phone layout
stacks and fills the screen. Screenshots land in test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import RunningHub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
JOB_ROW = '[class*="st-key-jobs-job-"]'


def _login(page, hub: RunningHub, username: str) -> None:
    page.goto(hub.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Reports & Exports").wait_for(timeout=30_000)
    page.get_by_role("heading", name="Jobs").wait_for(timeout=30_000)


def _settle(page) -> None:
    """Wait until the page has drawn its widgets (for screenshots)."""
    page.get_by_role("heading", name="Jobs").wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)


def _lake_totals(hub: RunningHub) -> tuple[int, int, int]:
    row = (
        duckdb.connect()
        .execute(
            "SELECT count(*), sum(quantity), sum(scan_id) FROM read_parquet(?) WHERE NOT deleted",
            [hub.lake("demo-open", "scans")],
        )
        .fetchone()
    )
    return int(row[0]), int(row[1]), int(row[2])


def _job_id(row) -> int:
    match = re.search(r"st-key-jobs-job-(\d+)", row.get_attribute("class") or "")
    assert match, "a job row carries its id in its key"
    return int(match.group(1))


def test_analyst_generates_watches_and_downloads_a_scans_csv(running_hub, browser, artifacts, tmp_path):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    _login(page, running_hub, "analyst")

    cookie = next(c for c in context.cookies() if c["name"] == "exporthub_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"

    page.reload()  # the login survives a reload: no form, straight to the hub
    page.locator(".st-key-card-scans").wait_for(timeout=30_000)
    assert page.get_by_label("Username").count() == 0
    _settle(page)
    page.screenshot(path=str(artifacts / "hub-desktop.png"))

    rows, quantity, scan_ids = _lake_totals(running_hub)
    page.locator(".st-key-card-scans").get_by_role("button", name="Generate").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Export scans").wait_for()
    dialog.get_by_text(f"About {rows:,} rows").wait_for(timeout=20_000)  # the estimate, before starting
    page.screenshot(path=str(artifacts / "dialog-desktop.png"))

    page.evaluate("window.__still_the_same_page = true")
    dialog.get_by_role("button", name="Generate Export").click()
    dialog.wait_for(state="detached", timeout=20_000)
    row = page.locator(JOB_ROW).first
    row.wait_for(timeout=20_000)
    job_id = _job_id(row)
    row = page.locator(f".st-key-jobs-job-{job_id}")
    row.get_by_text("Completed").first.wait_for(timeout=120_000)  # the fragment refreshes it
    # The job this user started has finished: a toast says so, with the file's download link.
    toast = page.locator('[data-testid="stToast"]', has_text="completed")
    toast.wait_for(timeout=10_000)
    assert (toast.locator("a").first.get_attribute("href") or "").startswith("/download/")
    assert page.evaluate("window.__still_the_same_page") is True, "the page was reloaded"
    card = page.locator(".st-key-card-scans")
    card.get_by_text("Completed").first.wait_for(timeout=10_000)

    link = row.locator("a.eh-file", has_text=".csv")
    href = link.get_attribute("href")
    assert href and href.startswith("/download/")
    page.wait_for_timeout(4_500)  # two or three refreshes of the list
    assert row.locator("a.eh-file", has_text=".csv").get_attribute("href") == href, (
        "the link must stay stable"
    )
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "hub-desktop-completed.png"))

    with page.expect_download(timeout=30_000) as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("scans_export_") and download.suggested_filename.endswith(
        ".csv"
    )
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    got = (
        duckdb.connect()
        .execute("SELECT count(*), sum(quantity), sum(scan_id) FROM read_csv(?, header = true)", [str(saved)])
        .fetchone()
    )
    assert (int(got[0]), int(got[1]), int(got[2])) == (rows, quantity, scan_ids)

    row.get_by_role("link", name="Details", exact=True).click()
    page.get_by_role("heading", name=f"Scans · job #{job_id}").wait_for(timeout=20_000)
    page.get_by_text(f"{download.suggested_filename}").first.wait_for()
    page.get_by_text("1 download", exact=False).first.wait_for(timeout=20_000)  # counted by the server
    page.locator('[data-testid="stDataFrame"]').nth(1).wait_for()
    page.wait_for_timeout(1_000)  # the tables draw on a canvas
    page.screenshot(path=str(artifacts / "job-details-desktop.png"))

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Username").wait_for(timeout=20_000)
    page.get_by_text("You have been logged out.").wait_for()
    assert not [c for c in context.cookies() if c["name"] == "exporthub_session"]
    page.reload()
    page.get_by_label("Username").wait_for(timeout=20_000)
    context.close()


def test_viewer_finds_no_generate_button(running_hub, browser, artifacts):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    _login(page, running_hub, "viewer")
    _settle(page)
    assert page.get_by_role("button", name="Generate").count() == 0
    assert page.get_by_role("button", name="Generate Export").count() == 0
    assert page.get_by_role("button", name="Publish Project Files").count() == 0
    page.screenshot(path=str(artifacts / "hub-desktop-viewer.png"))
    context.close()


def test_wrong_password_stays_on_the_login_form(running_hub, browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(running_hub.url + "/")
    page.get_by_label("Username").fill("analyst")
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Invalid username or password").wait_for(timeout=20_000)
    assert not [c for c in context.cookies() if c["name"] == "exporthub_session"]
    context.close()


def test_phone_layout_stacks_cards_and_fills_the_screen_with_the_dialog(running_hub, browser, artifacts):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    _login(page, running_hub, "analyst")
    _settle(page)
    page.locator(".st-key-card-scans").get_by_role("button", name="Generate").wait_for()
    page.screenshot(path=str(artifacts / "hub-mobile.png"))
    scans = page.locator(".st-key-card-scans").bounding_box()
    users = page.locator(".st-key-card-users").bounding_box()
    assert scans and users
    assert abs(scans["x"] - users["x"]) < 2 and users["y"] >= scans["y"] + scans["height"] - 1, "cards stack"
    assert scans["width"] > PHONE["width"] * 0.85
    generate = page.locator(".st-key-card-scans").get_by_role("button", name="Generate").bounding_box()
    assert generate and generate["height"] >= 44, "touch-sized"

    page.locator(".st-key-card-scans").get_by_role("button", name="Generate").tap()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Export scans").wait_for(timeout=20_000)
    dialog.get_by_text("Estimate").wait_for(timeout=20_000)
    page.wait_for_timeout(500)  # let the opening animation settle
    box = dialog.bounding_box()
    assert box and box["width"] >= PHONE["width"] - 1 and box["x"] <= 1, "the dialog fills the screen"
    page.screenshot(path=str(artifacts / "dialog-mobile.png"))
    dialog.get_by_role("button", name="Cancel").tap()
    dialog.wait_for(state="detached", timeout=20_000)
    page.locator(".st-key-card-scans").wait_for()
    context.close()


def _contrast(rgb: str, background: tuple[int, int, int] = (255, 255, 255)) -> float:
    def luminance(channels: tuple[int, ...]) -> float:
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (x / 255 for x in channels)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    fg = tuple(int(x) for x in re.findall(r"\d+", rgb)[:3])
    hi, lo = sorted((luminance(fg), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_muted_text_is_readable_and_status_icons_need_no_emoji_font(running_hub, browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    _login(page, running_hub, "analyst")
    _settle(page)
    colours = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"] p, .eh-muted'))
             .map(e => getComputedStyle(e).color)"""
    )
    assert colours and all(_contrast(c) >= 4.5 for c in colours), colours  # WCAG AA
    # The status badges and the types' icons are Material icons: a web font Streamlit ships.
    fonts = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"] span[role="img"]'))
             .map(e => getComputedStyle(e).fontFamily)"""
    )
    assert fonts and all("Material Symbols" in f for f in fonts), fonts
    text = page.locator("section.main, [data-testid='stMain']").first.inner_text()
    assert not re.search("[\u2705\u274c\u23f3\U0001F552\U0001F4E5\U0001F6AB]", text)
    context.close()


def test_screenshots_exist(artifacts: Path):
    # Runs last in this module: the files the other tests wrote are there for a person to look at.
    for name in ("hub-desktop.png", "dialog-desktop.png", "hub-mobile.png", "dialog-mobile.png"):
        assert (artifacts / name).stat().st_size > 10_000, name
