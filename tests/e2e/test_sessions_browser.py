"""Sessions and links in headless Chromium against ``exporthub up`` (issue 13's "Done when"):

- log out, replay the old cookie in a fresh browser: the login page, not the hub;
- change the password (at the server's command line) while a tab is open: the tab's next job-list
  refresh shows the login page, without a reload;
- open a forwarded download link in a fresh browser, log in as the link's user: the download starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, RunningHub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1366, "height": 900}
SESSION_COOKIE = "exporthub_session"


def _cli(hub: RunningHub, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(hub.data_dir)
    result = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=REPO, input=stdin,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result


def _login(page, hub: RunningHub, username: str, password: str) -> None:
    page.goto(hub.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Reports & Exports").wait_for(timeout=30_000)


def _login_form_shown(page, timeout: float = 30_000) -> None:
    page.get_by_label("Username").wait_for(timeout=timeout)
    assert page.get_by_role("heading", name="Reports & Exports").count() == 0


def test_a_logged_out_cookie_replayed_in_a_fresh_browser_opens_nothing(running_hub, browser, artifacts):
    first = browser.new_context(viewport=DESKTOP)
    page = first.new_page()
    _login(page, running_hub, "viewer", "demo")
    (cookie,) = [c for c in first.cookies() if c["name"] == SESSION_COOKIE]
    page.get_by_role("button", name="Log out").click()
    _login_form_shown(page)
    page.get_by_text("You have been logged out.").wait_for()
    first.close()

    thief = browser.new_context(viewport=DESKTOP)
    thief.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path", "httpOnly", "sameSite")}])
    page = thief.new_page()
    page.goto(running_hub.url + "/")
    _login_form_shown(page)
    page.screenshot(path=str(artifacts / "replayed-cookie.png"))
    assert not [c for c in thief.cookies() if c["name"] == SESSION_COOKIE and c["value"]], "the cookie is cleared"
    thief.close()


def test_a_password_change_sends_an_open_tab_to_the_login_page_on_its_next_refresh(running_hub, browser, artifacts):
    _cli(running_hub, "users", "add", "erin", "--name", "Erin Example", stdin="erin-password-1\n")
    _cli(running_hub, "members", "set", "erin", "demo-open", "analyst")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    _login(page, running_hub, "erin", "erin-password-1")
    page.get_by_role("heading", name="Jobs").wait_for(timeout=30_000)
    _cli(running_hub, "users", "passwd", "erin", stdin="erin-password-2\n")
    # No reload: the job list refreshes itself every 2 s, notices the ended session, and the app follows.
    _login_form_shown(page, timeout=30_000)
    page.get_by_text("Your password was changed").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts / "password-changed.png"))
    context.close()


def test_a_forwarded_link_asks_for_its_users_login_then_downloads(running_hub, browser, artifacts, tmp_path):
    made = _cli(running_hub, "export", "zones", "--project", "demo-open", "--user", "analyst", "--var", "format=csv",
                "--inline", "--json")
    (file,) = [f for f in json.loads(made.stdout)["job"]["files"] if f["name"].endswith(".csv")]
    link = json.loads(_cli(running_hub, "link", str(file["id"]), "--user", "analyst", "--json").stdout)["link"]
    expected = hashlib.sha256(Path(file["path"]).read_bytes()).hexdigest()

    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)  # a colleague's browser
    page = context.new_page()
    page.goto(running_hub.url + link["path"])
    _login_form_shown(page)
    page.get_by_text("Log in to download the file you opened").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts / "login-for-download.png"))
    page.get_by_label("Username").fill("analyst")
    page.get_by_label("Password", exact=True).fill("demo")
    with page.expect_download(timeout=60_000) as started:
        page.get_by_role("button", name="Log in").click()
    download = started.value
    assert download.suggested_filename == file["name"]
    saved = tmp_path / file["name"]
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == expected
    context.close()

    # Logged in as somebody else, the same link stays refused.
    other = browser.new_context(viewport=DESKTOP)
    page = other.new_page()
    _login(page, running_hub, "manager", "demo")
    response = page.goto(running_hub.url + link["path"])
    assert response is not None and response.status == 403
    other.close()
