"""app.py: the login form, logout, idle end, deactivation, the project picker and the navigation,
for each demo role. (The cookie round trip through a real browser is in tests/e2e.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from exporthub import sessions, signing, tickets
from exporthub.accounts import AccountService
from exporthub.models import AuditEvent, LoginSession, LoginTicket, User, utcnow
from tests.pages.conftest import APP, ROLES, TIMEOUT, labels, log_in, open_app, shown, texts
from ui import login_session, oidc

PICKER = {
    "admin": ["demo-closed", "demo-open"],
    "manager": ["demo-closed", "demo-open"],
    "analyst": ["demo-open"],
    "viewer": ["demo-open"],
    "outsider": [],
}


def _login_events(hub) -> list[tuple[str | None, str]]:
    with hub.db.read() as s:
        return [
            tuple(r)
            for r in s.execute(
                select(AuditEvent.actor, AuditEvent.outcome)
                .where(AuditEvent.action == "login")
                .order_by(AuditEvent.id)
            ).all()
        ]


def _html(at: AppTest) -> str:
    return "\n".join(h.value for h in at.html)


NONCE = "n" * 43


@pytest.fixture
def browser_cookies(monkeypatch):
    """The cookies the browser sends when the tab connects (AppTest cannot send any): a login nonce,
    as ``/auth/session/begin`` leaves it, plus whatever a test adds."""
    jar = {tickets.NONCE_COOKIE: NONCE}
    monkeypatch.setattr(login_session, "browser_cookie", lambda name: jar.get(name))
    return jar


def test_logged_out_visitors_see_only_the_login_form(app_hub, browser_cookies):
    at = open_app()
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert at.text_input[1].proto.type == at.text_input[1].proto.PASSWORD
    assert [b.label for b in at.button] == ["Log in"]
    assert "Reports & Exports" not in [t.value for t in at.title]
    assert not at.sidebar.selectbox
    with pytest.raises(ValueError):  # the pages are not even registered
        at.switch_page("pages/exports.py")


def test_without_a_login_nonce_the_browser_fetches_one_first(app_hub, browser_cookies):
    browser_cookies.clear()
    at = open_app(query={"auth": "idle"})
    assert not at.text_input  # no form: a ticket must be bound to this browser
    assert 'window.location.replace("/auth/session/begin?auth=idle")' in _html(at)
    # Back from /auth/session/begin without the cookie: the browser refuses cookies; say so, no loop.
    at = open_app(query={"nonce": "set"})
    assert not at.text_input and "/auth/session/begin" not in _html(at)
    assert any("did not keep Exporthub's login cookie" in e for e in shown(at.error))


def test_wrong_password_is_refused_in_plain_words_and_audited_once(app_hub, browser_cookies):
    at = open_app()
    at.text_input[0].input("analyst")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    assert shown(at.error) == ["Invalid username or password"]
    assert "user" not in at.session_state
    assert "/auth/session" not in _html(at)
    assert _login_events(app_hub) == [("analyst", "refused")]


def test_login_form_hands_this_browser_a_bound_one_time_ticket(app_hub, browser_cookies):
    at = open_app()
    at.text_input[0].input("analyst")
    at.text_input[1].input("demo")
    at.button[0].click().run()
    html = _html(at)
    assert 'window.location.replace("/auth/session?ticket=' in html
    assert _login_events(app_hub) == [("analyst", "ok")]
    ticket = html.split("ticket=", 1)[1].split('"', 1)[0]
    with app_hub.db.read() as s:
        row = s.scalars(select(LoginTicket)).one()
    assert row.id == signing.token_hash(ticket) and row.browser == signing.token_hash(NONCE)
    # The route then starts the session for this browser only (tested in tests/test_auth_routes.py).
    cookie = tickets.redeem(app_hub.db, app_hub.settings, ticket, NONCE)
    browser_cookies[sessions.SESSION_COOKIE] = cookie
    at = open_app()  # the reloaded page: logged in from the cookie
    assert at.session_state["user"] == "analyst"
    assert "Reports & Exports" in [t.value for t in at.title]
    assert at.session_state["project"] == "demo-open"


def test_empty_fields_are_not_sent(app_hub, browser_cookies):
    at = open_app()
    at.button[0].click().run()
    assert shown(at.error) == ["Enter your username and password."]
    assert _login_events(app_hub) == []


@pytest.mark.parametrize("role", ROLES)
def test_project_picker_lists_only_member_projects(app_hub, role):
    at = open_app(role)
    pickers = at.sidebar.selectbox
    if not PICKER[role]:
        assert not pickers
        assert "You are not a member of any project yet" in texts(at)
        assert "Generate" not in labels(at)
        return
    assert sorted(pickers[0].options) == sorted(
        {"demo-open": "Demo Warehouse (open)", "demo-closed": "Demo Store (closed)"}[s] for s in PICKER[role]
    )
    assert at.session_state["project"] in PICKER[role]


@pytest.mark.parametrize("role", ROLES)
def test_navigation_holds_only_permitted_pages(app_hub, role):
    at = open_app(role)
    member = bool(PICKER[role])
    for page in ("pages/exports.py", "pages/job.py"):
        if member:
            at.switch_page(page)  # registered: no error
        else:
            with pytest.raises(ValueError):
                at.switch_page(page)
    if (APP.parent / "pages" / "admin.py").exists():
        if role == "admin":
            at.switch_page("pages/admin.py")
        else:
            with pytest.raises(ValueError):
                at.switch_page("pages/admin.py")
    if (APP.parent / "pages" / "statistics.py").exists():
        if member:
            at.switch_page("pages/statistics.py")
        else:
            with pytest.raises(ValueError):
                at.switch_page("pages/statistics.py")


def test_picking_another_project_switches_the_hub(app_hub):
    at = open_app("manager", project="demo-open")
    assert "Demo Warehouse (open)" in texts(at)
    at.sidebar.selectbox[0].select("demo-closed").run()
    assert at.session_state["project"] == "demo-closed"
    assert "Demo Store (closed)" in texts(at)


def test_a_project_the_user_does_not_belong_to_is_never_picked(app_hub):
    at = open_app("analyst", project="demo-closed")  # e.g. left over from another login
    assert at.session_state["project"] == "demo-open"
    assert "Demo Store (closed)" not in texts(at)


def _ended_with(at: AppTest, reason: str) -> None:
    """The tab forgot its user and sends the browser to clear the cookie with a same-site POST."""
    assert "user" not in at.session_state and "project" not in at.session_state
    html = _html(at)
    assert "f.method = 'POST'" in html and f'"/auth/session/end?reason={reason}"' in html
    assert "Generate" not in labels(at)


def test_logout_ends_the_session_on_the_server_at_once(app_hub):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    cookie = log_in(at, "viewer")
    at.run()
    at.button(key="logout").click().run()
    _ended_with(at, "signed-out")
    # Ended in the database before the browser even clears its cookie: a replayed cookie opens nothing.
    assert sessions.check(app_hub.db, app_hub.settings, cookie) == sessions.SessionCheck(None, "signed-out")
    with app_hub.db.read() as s:
        assert s.scalars(select(AuditEvent.actor).where(AuditEvent.action == "logout")).all() == ["viewer"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [("deactivate", "disabled"), ("password", "password-changed"), ("end-sessions", "ended-by-admin")],
)
def test_an_open_tab_is_sent_to_the_login_form_on_its_next_run(app_hub, change, reason):
    at = open_app("analyst")
    assert "Generate" in labels(at)
    accounts = AccountService(app_hub.db)
    {
        "deactivate": lambda: accounts.set_active("admin", "analyst", False),
        "password": lambda: accounts.set_password("admin", "analyst", "a-brand-new-password"),
        "end-sessions": lambda: accounts.end_sessions("admin", "analyst"),
    }[change]()
    at.run()
    _ended_with(at, reason)


def test_idle_session_ends_with_a_message(app_hub):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    log_in(at, "analyst")
    at.run()
    with app_hub.db.write() as s:
        s.execute(update(LoginSession).values(
            last_seen_at=utcnow() - timedelta(seconds=app_hub.settings.session_idle_seconds + 5)))
    at.run()
    _ended_with(at, "idle")


def test_each_run_counts_as_activity_at_most_once_a_minute(app_hub):
    at = open_app("analyst")
    long_ago = utcnow() - timedelta(minutes=30)
    with app_hub.db.write() as s:
        s.execute(update(LoginSession).values(last_seen_at=long_ago))
    at.run()
    with app_hub.db.read() as s:
        first = s.scalars(select(LoginSession.last_seen_at)).one()
    assert first > long_ago + timedelta(minutes=29)
    at.run()  # a minute has not passed: nothing written
    with app_hub.db.read() as s:
        assert s.scalars(select(LoginSession.last_seen_at)).one() == first
    assert at.session_state["user"] == "analyst"


def test_a_tab_without_a_server_side_session_is_nobody(app_hub):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["user"] = "admin"  # a name alone proves nothing
    at.run()
    assert "user" not in at.session_state and "Generate" not in labels(at)


# ---------------------------------------------------------------------------- OIDC


OIDC_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-long-random-cookie-secret-for-tests",
        "client_id": "exporthub",
        "client_secret": "secret",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    }
}


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        (None, False),
        ({}, False),
        ({"auth": {"redirect_uri": "x", "cookie_secret": "y"}}, False),  # no provider
        ({"auth": {"client_id": "c", "cookie_secret": "y"}}, False),  # no redirect URI
        (OIDC_SECRETS, True),
        ({"auth": {"redirect_uri": "x", "cookie_secret": "y", "google": {"client_id": "c"}}}, True),
        ({"database": {"client_id": "c"}}, False),
    ],
)
def test_oidc_is_used_only_when_auth_secrets_configure_a_provider(secrets, expected):
    assert oidc.oidc_configured(secrets) is expected


def test_oidc_providers_are_named_for_the_login_buttons():
    assert oidc.oidc_providers(OIDC_SECRETS) == [None]
    named = {
        "auth": {
            "redirect_uri": "x",
            "cookie_secret": "y",
            "google": {"client_id": "c"},
            "okta": {"client_id": "d"},
        }
    }
    assert oidc.oidc_providers(named) == ["google", "okta"]


def _oidc_app(user: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets = dict(OIDC_SECRETS)
    at.user = user
    return at.run()


def test_oidc_login_replaces_the_password_form(app_hub):
    at = _oidc_app({"is_logged_in": False})
    assert not at.text_input  # no password form
    assert labels(at) == ["Log in"]


def test_oidc_user_is_mapped_to_an_account_by_email(app_hub):
    with app_hub.db.write() as s:
        s.execute(update(User).where(User.username == "analyst").values(email="anais@example.org"))
    at = _oidc_app({"is_logged_in": True, "email": "Anais@example.org", "name": "Anaïs"})
    assert at.session_state["user"] == "analyst"
    assert "Reports & Exports" in [t.value for t in at.title]
    assert _login_events(app_hub) == [("analyst", "ok")]


def test_oidc_user_without_an_account_gets_no_access(app_hub):
    at = _oidc_app({"is_logged_in": True, "email": "stranger@example.org", "name": "Stranger"})
    assert "user" not in at.session_state
    assert "no active Exporthub account matches it" in texts(at)
    assert _login_events(app_hub) == [("stranger@example.org", "refused")]


def test_projects_sharing_a_name_get_distinct_picker_labels(app_hub):
    """Found in QA: the browser sends the label back, so equal labels collapsed onto one project."""
    from exporthub.models import Project

    with app_hub.db.write() as s:
        s.scalar(select(Project).where(Project.slug == "demo-closed")).name = "Demo Warehouse (open)"
    at = open_app("manager", project="demo-open")
    options = at.sidebar.selectbox[0].options
    assert sorted(options) == ["Demo Warehouse (open) (demo-closed)", "Demo Warehouse (open) (demo-open)"]
    at.sidebar.selectbox[0].select("demo-closed").run()
    assert at.session_state["project"] == "demo-closed"
