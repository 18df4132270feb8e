"""What the hub shows matches what happened, in headless Chromium against ``exporthub up``: deep links
survive the login, ``/exports`` is an address, a job row never shows another job's elements while the
list refreshes (after Retry and after Remove), the header and the cards follow a publish, and Cancel
says "Cancelling…" until the worker has stopped the job.

The hub here registers the test-only ``slow`` export type (tests/_slow_exporter.py), so a running job
stays running long enough to be watched.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator

import pytest

from tests._slow_exporter import write_config
from tests.e2e.conftest import REPO, RunningHub, hub_env, start_hub
from ui import format as fmt

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1440, "height": 900}
ROW = '[class*="st-key-jobs-job-"]'
SLOW_SECONDS = 600  # a slow job runs until it is cancelled
LINGER_SECONDS = 4  # and goes on this long after the cancel request, as a writer finishing a batch does


@pytest.fixture(scope="module")
def slow_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    root = tmp_path_factory.mktemp("e2e-correct")
    env = hub_env(
        root / "data",
        PYTHONPATH=str(REPO),
        EXPORTHUB_EXTRA_EXPORTERS="tests._slow_exporter",
        EXPORTHUB_EXPORT_CONFIG=str(write_config(root / "config.json")),
    )
    with start_hub(root / "data", env, scans=5_000) as hub:
        yield hub


def _db(hub: RunningHub, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(hub.data_dir / "exporthub.db") as con:
        return con.execute(sql, args).fetchall()


def _job_status(hub: RunningHub, job_id: int) -> str:
    return _db(hub, "SELECT status FROM jobs WHERE id = ?", job_id)[0][0]


def _wait(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _fill_login(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("demo")
    page.get_by_role("button", name="Log in").click()


def _logged_in(browser, hub: RunningHub, username: str, path: str = "/exports?project=demo-open"):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(hub.url + path)
    page.get_by_label("Username").wait_for(timeout=30_000)
    _fill_login(page, username)
    page.get_by_role("heading", name="Jobs").wait_for(timeout=30_000)
    return context, page


def _start_slow(hub: RunningHub, page) -> int:  # type: ignore[no-untyped-def]
    page.locator(".st-key-card-slow").get_by_role("button", name="Generate").click()
    dialog = page.get_by_role("dialog")
    for label, value in (("Seconds", SLOW_SECONDS), ("Linger", LINGER_SECONDS)):
        dialog.get_by_label(label).fill(str(value))
        dialog.get_by_label(label).press("Enter")
    dialog.get_by_role("button", name="Generate Export").click()
    dialog.wait_for(state="detached", timeout=20_000)
    (job_id,) = _db(hub, "SELECT max(id) FROM jobs WHERE export_type = 'slow'")[0]
    return int(job_id)


# Every job row, as far as the current run has drawn it: its elements up to the last one this run sent
# (Streamlit marks with data-stale the ones it has not sent again yet), with its key's job id, their text,
# file links and buttons. Past that point the row still shows the previous run's elements, which the run
# is about to overwrite; before it, a stale element is one the run skipped, which stays until the run ends
# (the lingering link of another job this checks for), so it counts as the row's.
_ROWS_JS = """() => [...document.querySelectorAll('[class*="st-key-jobs-job-"]')].map(el => {
    const all = [...el.querySelectorAll('[data-testid="stElementContainer"]')];
    const parts = all.slice(0, all.map(e => e.getAttribute('data-stale') !== 'true').lastIndexOf(true) + 1);
    const buttons = parts.flatMap(p => [...p.querySelectorAll('button')]).map(b => b.innerText.trim());
    return {
        id: Number(el.className.match(/st-key-jobs-job-(\\d+)/)[1]),
        drawn: parts.length > 0,
        text: parts.map(p => p.innerText).join('\\n'),
        links: parts.flatMap(p => [...p.querySelectorAll('a.eh-file')]).map(a => a.getAttribute('href')),
        confirm: buttons.some(t => /Confirm remove$/.test(t)),
        remove: buttons.some(t => /(^|\\s)Remove$/.test(t)),
        cancel: buttons.some(t => /Cancel$/.test(t)),
    };
}).filter(row => row.drawn)"""
_ROW_STATE_JS = "(id) => (" + _ROWS_JS + ")().find(row => row.id === id) || null"


def _watch_rows(page, hub: RunningHub) -> None:  # type: ignore[no-untyped-def]
    """Record, on every change of the page, each drawn row that shows another job's id, more file links
    than its job has files, or a "Remove" next to "Confirm remove"."""
    files = dict(_db(hub, "SELECT j.id, count(f.id) FROM jobs j LEFT JOIN files f ON f.job_id = j.id "
                          "AND f.deleted_at IS NULL GROUP BY j.id"))
    page.evaluate(
        """([rowsJs, files]) => {
            const rows = eval(rowsJs);
            window.__violations = [];
            const check = () => {
                for (const row of rows()) {
                    const ids = [...row.text.matchAll(/· #(\\d+)/g)].map(m => Number(m[1]));
                    const other = ids.filter(i => i !== row.id);
                    const tooMany = row.links.length > (files[row.id] ?? 0);
                    if (other.length || tooMany || (row.confirm && row.remove)) {
                        window.__violations.push({id: row.id, other, links: row.links.length,
                                                  both: row.confirm && row.remove, text: row.text});
                    }
                }
            };
            if (window.__observer) window.__observer.disconnect();
            window.__observer = new MutationObserver(check);
            window.__observer.observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
        }""",
        [_ROWS_JS, {str(k): v for k, v in files.items()}],
    )


def _sample_rows(page, seconds: float) -> list[list[dict]]:  # type: ignore[no-untyped-def]
    """The job rows every 50 ms for ``seconds`` (several refreshes of the list)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(page.evaluate(_ROWS_JS))
        page.wait_for_timeout(50)
    return samples


def _assert_rows_hold_only_their_job(page) -> None:  # type: ignore[no-untyped-def]
    violations = page.evaluate("window.__violations")
    assert violations == [], violations[:3]


def test_a_logged_out_deep_link_reaches_its_page_after_login(slow_hub, browser):
    job_id = _start_job_by_cli(slow_hub)  # a job to link to
    for path, heading in (("/statistics", "Statistics"), (f"/job?job={job_id}", f"· job #{job_id}")):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(slow_hub.url + path)
        page.get_by_label("Username").wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # a "Page not found" dialog would be up by now
        assert page.get_by_text("Page not found").count() == 0
        assert page.url.startswith(slow_hub.url + path.split("?")[0])
        _fill_login(page, "analyst")
        page.get_by_role("heading", name=re.compile(re.escape(heading))).wait_for(timeout=30_000)
        assert page.url.removeprefix(slow_hub.url) == path
        assert page.get_by_text("Page not found").count() == 0
        context.close()


def _start_job_by_cli(hub: RunningHub, *extra: str) -> int:
    import json
    import subprocess
    import sys

    env = hub_env(hub.data_dir, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "cli", "export", "zones", "--project", "demo-open", "--user", "analyst",
         "--json", *extra], env=env, cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    return int(json.loads(out)["job"]["id"])


def test_exports_is_the_hubs_own_address(slow_hub, browser):
    context, page = _logged_in(browser, slow_hub, "manager")
    for path in ("/exports", "/exports?project=demo-closed", "/"):
        page.goto(slow_hub.url + path)
        page.get_by_role("heading", name="Reports & Exports").wait_for(timeout=30_000)
        page.get_by_role("heading", name="Jobs").wait_for(timeout=30_000)
        assert page.get_by_text("Page not found").count() == 0, path
    assert page.url.removeprefix(slow_hub.url).startswith("/exports")  # "/" lands on the hub's address
    page.goto(slow_hub.url + "/exports?project=demo-closed")
    page.get_by_text("Demo Store (closed)").first.wait_for(timeout=30_000)
    context.close()


def test_cancel_says_cancelling_until_stopped_then_retry_and_remove_leave_no_other_jobs_element(
    slow_hub, browser, artifacts
):
    # Completed jobs with files below the slow one: their links are what must not leak into other rows
    # (several, so the list takes a while to redraw after the rows shifted).
    for _ in range(5):
        zones_id = _start_job_by_cli(slow_hub, "--wait")
    context, page = _logged_in(browser, slow_hub, "manager")
    page.locator(f".st-key-jobs-job-{zones_id}").get_by_text("Completed").wait_for(timeout=60_000)

    slow_id = _start_slow(slow_hub, page)
    row = page.locator(f".st-key-jobs-job-{slow_id}")
    row.get_by_text("Running").wait_for(timeout=60_000)
    row.get_by_role("button", name="Cancel").click()
    row.get_by_role("button", name="Confirm cancel").click()  # Cancel asks first
    page.get_by_text(f"Cancelling job #{slow_id}…").wait_for(timeout=10_000)  # the toast
    # Until the worker has stopped the job its row, once drawn, says "Cancelling…" and offers no Cancel.
    states = []
    while _job_status(slow_hub, slow_id) != "cancelled":
        state = page.evaluate(_ROW_STATE_JS, slow_id)
        if _job_status(slow_hub, slow_id) == "cancelled":
            break  # the worker stopped it while we looked
        if state is not None:
            assert "Cancelled" not in state["text"] and not state["cancel"], state
            states.append(state)
        page.wait_for_timeout(100)
    assert any("Cancelling…" in s["text"] for s in states), "the row said 'Cancelling…' until the job stopped"
    row.get_by_text("Cancelled").wait_for(timeout=20_000)
    page.screenshot(path=str(artifacts / "hub-cancelled.png"))

    _watch_rows(page, slow_hub)
    row.get_by_role("button", name="Retry").click()
    _wait(lambda: _db(slow_hub, "SELECT max(id) FROM jobs")[0][0] > slow_id, "the retry")
    samples = _sample_rows(page, 6.0)  # three refreshes of the list
    _assert_rows_hold_only_their_job(page)
    assert any(r["id"] == slow_id for r in samples[-1]) and any(r["id"] == zones_id for r in samples[-1])
    assert not next(r for r in samples[-1] if r["id"] == slow_id)["links"]
    page.screenshot(path=str(artifacts / "hub-after-retry.png"))

    # Stop the retry too (a slow job never ends on its own), then remove the first one.
    (retry_id,) = _db(slow_hub, "SELECT max(id) FROM jobs")[0]
    retry_row = page.locator(f".st-key-jobs-job-{retry_id}")
    retry_row.get_by_role("button", name="Cancel").click()
    retry_row.get_by_role("button", name="Confirm cancel").click()
    _wait(lambda: _job_status(slow_hub, retry_id) == "cancelled", "the retry to stop")
    _watch_rows(page, slow_hub)
    row.get_by_role("button", name=re.compile(r"(^|\s)Remove$")).click()
    row.get_by_role("button", name="Confirm remove").wait_for(timeout=10_000)
    _sample_rows(page, 4.5)  # two refreshes
    _assert_rows_hold_only_their_job(page)
    page.screenshot(path=str(artifacts / "hub-confirm-remove.png"))
    row.get_by_role("button", name="Confirm remove").click()
    row.wait_for(state="detached", timeout=20_000)
    samples = _sample_rows(page, 6.0)
    _assert_rows_hold_only_their_job(page)
    assert slow_id not in {r["id"] for r in samples[-1]}
    context.close()


def test_header_and_cards_match_the_database_after_a_publish(slow_hub, browser, artifacts):
    context, page = _logged_in(browser, slow_hub, "manager", "/exports?project=demo-closed")
    page.get_by_text("· Closed ·").wait_for(timeout=20_000)
    page.get_by_role("button", name="Publish Project Files").click()
    page.get_by_role("dialog").get_by_role("button", name="Generate Export").click()
    page.get_by_role("dialog").wait_for(state="detached", timeout=20_000)
    (publish_id,) = _db(slow_hub, "SELECT max(id) FROM jobs WHERE export_type = 'publish'")[0]
    _wait(lambda: _job_status(slow_hub, publish_id) == "completed", "the publication", timeout=180)
    assert _db(slow_hub, "SELECT status FROM projects WHERE slug = 'demo-closed'") == [("published",)]

    page.get_by_text("· Published ·").wait_for(timeout=20_000)  # the header, without a reload
    children = _db(slow_hub, "SELECT id, export_type, started_at FROM jobs WHERE parent_id = ?", publish_id)
    assert children
    for child_id, export_type, _ in children:
        page.locator(f".st-key-card-{export_type}").get_by_text(f"#{child_id} ·").wait_for(timeout=20_000)
    row = page.locator(f".st-key-jobs-job-{publish_id}")
    row.get_by_text("Completed").wait_for(timeout=20_000)
    names = {n for (n,) in _db(slow_hub, "SELECT name FROM files WHERE job_id = ? AND deleted_at IS NULL",
                                 publish_id)}
    assert len(names) > 1 and "index.json" in names
    shown = {a.inner_text().removeprefix("description").strip() for a in row.locator("a.eh-file").all()}
    assert shown == names
    (finished,) = _db(slow_hub, "SELECT finished_at FROM jobs WHERE id = ?", publish_id)[0]
    first_start = min(started for _, _, started in children)
    expected = fmt.duration(_utc(first_start), _utc(finished))
    assert f"({expected})" in row.inner_text()
    page.screenshot(path=str(artifacts / "hub-after-publish.png"), full_page=True)
    context.close()


def _utc(value: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
