"""AppTest helpers: the demo instance wired into the app, and an app already logged in as a role."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import Hub

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"
ROLES = ("admin", "manager", "analyst", "viewer", "outsider")
TIMEOUT = 60  # the first run imports DuckDB, the exporters and the lake


@pytest.fixture(autouse=True)
def _navigation_like_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``app.py`` on every AppTest run, as the server does once ``st.navigation`` was called.

    AppTest resets ``PagesManager.uses_pages_directory`` before each run, and because a ``pages/``
    folder exists it then runs the page script alone from the second run on (the legacy MPA v1
    path), skipping ``app.py``'s login check and sidebar. The live server sets the flag to False
    for good on the first ``st.navigation`` call (streamlit/streamlit#9446, PR #14217 fixed only the
    case without a ``pages/`` folder); this does the same for each AppTest run.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def _queue_of_this_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """``worker`` builds its queue from the settings when first imported; each test has its own instance."""
    import sys

    monkeypatch.delitem(sys.modules, "worker", raising=False)


@pytest.fixture
def app_hub(demo_hub: Hub) -> Hub:
    """The demo instance, with the app's JobService using the test's recording dispatcher
    (so no Huey queue is needed; tests run queued jobs with ``hub.run_queued()``)."""
    from ui import session

    session.use_services(demo_hub.service())
    return demo_hub


def log_in(at: AppTest, username: str) -> str | None:
    """A real server-side session for ``username`` in ``at``'s browser session, as the cookie route
    would start it (AppTest cannot send cookies). Returns the session cookie's value."""
    from sqlalchemy import select

    from exporthub import sessions
    from exporthub.db import get_database
    from exporthub.models import User
    from exporthub.settings import get_settings
    from ui import session as ui_session

    settings = get_settings()
    db = get_database(settings)
    with db.read() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
    at.session_state["user"] = username
    if user_id is None:
        return None
    cookie = sessions.start(db, settings, user_id)
    at.session_state[ui_session.SESSION_KEY] = cookie
    return cookie


def open_app(
    username: str | None = None, *, project: str | None = None, query: dict[str, str] | None = None
) -> AppTest:
    """The app after one run, logged in as ``username`` (as the login form leaves it) on ``project``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if username is not None:
        log_in(at, username)
    if project is not None:
        at.session_state["project"] = project
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(markdown: str) -> str:
    """Markdown made with ``ui.format.md_escape`` back as the text a person reads."""
    return _ESCAPED.sub(r"\1", markdown).replace("\u200b", "")


def shown(elements) -> list[str]:  # type: ignore[no-untyped-def]
    """The text of each element (``at.error``, ``at.success`` …) as a person reads it."""
    return [plain(str(e.value)) for e in elements]


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for "is it there" checks."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
    ):
        parts.extend(plain(str(e.value)) for e in getattr(at, kind))
    return "\n".join(parts)


def labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def page_links(at: AppTest) -> list[tuple[str, str]]:
    """(label, query string) of every ``st.page_link`` in the tree."""
    return [(link.value, link.proto.query_string) for link in at.page_link]


@pytest.fixture
def run_function() -> Callable[..., AppTest]:
    """``AppTest.from_function`` with a session logged in as ``username`` on ``project``."""

    def _run(fn: Callable[..., None], username: str, project: str, *, kwargs: dict | None = None) -> AppTest:
        at = AppTest.from_function(fn, default_timeout=TIMEOUT, kwargs=kwargs or {})
        log_in(at, username)
        at.session_state["project"] = project
        return at.run()

    return _run
