"""Names are text: hostile project names, display names, usernames and job errors, rendered through
AppTest on every page, never turn into a link or an image.

AppTest hands back the Markdown source of each element; this renders it with a CommonMark parser
with GitHub's extensions (tables, strikethrough, bare-URL autolinks, raw HTML), close to what the
browser does, and looks for any link or image pointing at the attacker's host. The same names must
still be there as text, so the test fails if a page simply stopped showing them.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from markdown_it import MarkdownIt
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from exporthub.accounts import AccountService, SystemActor
from exporthub.charts import ChartSpec, Series
from exporthub.models import Job, Project, User
from exporthub.states import JobStatus
from tests.pages.conftest import APP, TIMEOUT, log_in, open_app, plain
from ui.charts_plotly import figure
from ui.format import md_escape

EVIL = "evil.example"
PROJECT_NAME = "Depot ![t](http://evil.example/pixel.png) [win](https://evil.example/phish) $x$"
DISPLAY_NAME = "Ana <img src=https://evil.example/x.png> www.evil.example :red[Admin] :material/warning:"
USERNAME = "mallory@evil.example"  # a valid username, and an e-mail address GFM would link
JOB_ERROR = "Boom https://evil.example/plain\n# Heading\n[a](http://evil.example) <a href='http://evil.example'>x</a>"

_RENDER = MarkdownIt("gfm-like")  # commonmark + tables + strikethrough + linkify + raw HTML
_LINK_OR_IMAGE = re.compile(r"<(?:a|img)\b[^>]*>", re.IGNORECASE)
_MARKDOWN_KINDS = ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error",
                   "success", "toast")


def markdown_sources(at: AppTest) -> list[str]:
    """Every string the page handed to Markdown: text elements and widget labels."""
    sources = [str(e.value) for kind in _MARKDOWN_KINDS for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "text_input", "selectbox", "multiselect", "radio", "toggle"):
        sources += [str(w.label) for w in getattr(at, kind)]
    sources += [str(link.value) for link in at.page_link]
    return sources


def hostile_links(sources: list[str]) -> list[tuple[str, str]]:
    found = []
    for source in sources:
        for tag in _LINK_OR_IMAGE.findall(_RENDER.render(source)):
            if EVIL in tag:
                found.append((tag, source))
    return found


def _visible(sources: list[str], text: str) -> bool:
    return any(text in plain(s) for s in sources)


@pytest.fixture
def hostile(app_hub):
    """The demo with hostile names: the project, the analyst's display name, a member named like an
    e-mail address who started a job, and a failed job whose error is hostile."""
    accounts = AccountService(app_hub.db)
    actor = SystemActor("pytest")
    accounts.create_user(actor, USERNAME, password="mallory-password", display_name=DISPLAY_NAME)
    accounts.set_membership(actor, USERNAME, "demo-open", "analyst")
    with app_hub.db.write() as s:
        s.execute(update(Project).where(Project.slug == "demo-open").values(name=PROJECT_NAME))
        s.execute(update(User).where(User.username == "analyst").values(display_name=DISPLAY_NAME))
    job = app_hub.service().start(USERNAME, "demo-open", "zones", {"format": "csv"})
    with app_hub.db.write() as s:
        row = s.get(Job, job.id)
        row.status, row.error = str(JobStatus.FAILED), JOB_ERROR
    return app_hub, job.id


def test_the_hub_shows_hostile_names_as_text(hostile):
    _hub, _job_id = hostile
    at = open_app("analyst", project="demo-open")
    assert not at.exception
    sources = markdown_sources(at)
    assert hostile_links(sources) == []
    assert _visible(sources, "![t](http://evil.example/pixel.png)")  # the project name, as typed
    assert _visible(sources, "Ana <img src=https://evil.example/x.png> www.evil.example")  # the sidebar
    assert _visible(sources, f"by {DISPLAY_NAME}")  # the requester by display name, as text
    assert _visible(sources, "Boom https://evil.example/plain")  # the failed job's first error line


def test_job_details_show_a_hostile_error_and_user_as_text(hostile):
    _hub, job_id = hostile
    at = open_app("analyst", project="demo-open")
    at.query_params["job"] = str(job_id)
    at = at.switch_page("pages/job.py").run()
    assert not at.exception
    sources = markdown_sources(at)
    assert hostile_links(sources) == []
    assert _visible(sources, "Boom https://evil.example/plain")  # users see the error's first line
    assert _visible(sources, DISPLAY_NAME)  # "Requested by": the display name, as text
    admin = open_app("admin", project="demo-open")
    admin.query_params["job"] = str(job_id)
    admin = admin.switch_page("pages/job.py").run()
    sources = markdown_sources(admin)
    assert hostile_links(sources) == []
    assert _visible(sources, "[a](http://evil.example) <a href='http://evil.example'>x</a>")  # admins: all


def test_statistics_and_admin_pages_show_hostile_names_as_text(hostile):
    _hub, _job_id = hostile
    at = open_app("admin", project="demo-open")
    stats = at.switch_page("pages/statistics.py").run()
    assert not stats.exception
    assert hostile_links(markdown_sources(stats)) == []
    assert _visible(markdown_sources(stats), "Depot ![t]")
    admin = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    log_in(admin, "admin")
    admin.run()
    admin = admin.switch_page("pages/admin.py").run()
    assert not admin.exception
    # An action on the hostile user: its flash message carries the name.
    admin.selectbox(key="account_user").set_value(USERNAME).run()
    next(b for b in admin.button if b.key == "reset_password").click().run()
    sources = markdown_sources(admin)
    assert hostile_links(sources) == []
    assert _visible(sources, f"New temporary password for {USERNAME}")


def test_the_login_page_welcome_shows_a_hostile_display_name_as_text(hostile, monkeypatch):
    from exporthub import tickets
    from ui import login_session

    monkeypatch.setattr(login_session, "browser_cookie",
                        lambda name: "n" * 43 if name == tickets.NONCE_COOKIE else None)
    at = open_app()
    at.text_input[0].input(USERNAME)
    at.text_input[1].input("mallory-password")
    at.button[0].click().run()
    sources = markdown_sources(at)
    assert hostile_links(sources) == [] and _visible(sources, f"Welcome, {DISPLAY_NAME}")


@pytest.mark.parametrize("name", [PROJECT_NAME, DISPLAY_NAME, USERNAME, JOB_ERROR, "a\\b", "`code`", "**bold**",
                                  "<script>alert(1)</script>", "x" * 300, "李娜 Ünïcødé", "ftp://evil.example/x",
                                  "mailto:x@evil.example", "[x]: http://evil.example\n\n[x]"])
def test_md_escape_keeps_every_name_plain_text(name):
    rendered = _RENDER.render(md_escape(name))
    assert not _LINK_OR_IMAGE.findall(rendered), rendered
    assert "<script" not in rendered and "<h1" not in rendered and "<strong" not in rendered
    assert plain(md_escape(name)) == re.sub(r"[\r\n]+", " ", name)


def test_chart_labels_are_plain_text_for_plotly():
    data = pa.table({"zone": ["<a href='http://evil.example'>Z</a>", "<b>B</b>"], "n": [1, 2]})
    spec = ChartSpec(key="k", kind="bar", title="t", x_label="Zone", y_label="Scans", x="zone",
                     series=(Series(column="n", name="<img src=x>", colour="#000000"),), data=data)
    fig = figure(spec)
    labels = [str(v) for trace in fig.data for v in trace.x] + [trace.name for trace in fig.data]
    assert labels and all("<" not in v for v in labels), labels
    assert "&lt;a href='http://evil.example'&gt;Z&lt;/a&gt;" in labels
