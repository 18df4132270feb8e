"""Logins and sessions: argon2, throttling, one audit event per login, server-side sessions that end
on the server, browser-bound single-use sign-in tickets, and the cookie routes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update
from starlette.requests import Request

from exporthub import auth, sessions, tickets
from exporthub.accounts import AccountService
from exporthub.errors import PermissionDenied
from exporthub.links import make_token
from exporthub.models import AuditEvent, LoginAttempt, LoginSession, User
from exporthub.settings import reload_settings
from tests.conftest import make_hub
from web import auth_routes

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _login_events(hub) -> list[tuple[str | None, str, str | None]]:
    with hub.db.read() as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == "login")
            .order_by(AuditEvent.id)
        ).all()
    return [tuple(r) for r in rows]


def _set_user(hub, username: str, **values) -> None:
    with hub.db.write() as s:
        s.execute(update(User).where(User.username == username).values(**values))


# ---------------------------------------------------------------------------- authenticate


def test_correct_password_logs_in_with_one_audit_event(demo_hub):
    user = auth.authenticate(demo_hub.db, demo_hub.settings, "analyst", "demo", now=T0)
    assert (user.username, user.display_name, user.is_admin) == ("analyst", "Anaïs Analyst", False)
    assert _login_events(demo_hub) == [("analyst", "ok", None)]


@pytest.mark.parametrize(
    ("username", "password", "detail"),
    [
        ("analyst", "wrong", "wrong password"),
        ("nobody", "demo", "unknown user"),
        ("staff01", "", "wrong password"),  # field staff have no password and never log in
    ],
)
def test_refusals_are_vague_and_audited_once(demo_hub, username, password, detail):
    with pytest.raises(auth.LoginRefused) as info:
        auth.authenticate(demo_hub.db, demo_hub.settings, username, password, now=T0)
    assert info.value.message == "Invalid username or password"
    assert _login_events(demo_hub) == [(username, "refused", detail)]


def test_deactivated_or_deleted_user_is_refused_even_with_the_right_password(demo_hub):
    _set_user(demo_hub, "analyst", active=False)
    _set_user(demo_hub, "viewer", deleted_at=T0)
    for name in ("analyst", "viewer"):
        with pytest.raises(auth.LoginRefused) as info:
            auth.authenticate(demo_hub.db, demo_hub.settings, name, "demo", now=T0)
        assert info.value.message == "Invalid username or password"
    assert [e[1:] for e in _login_events(demo_hub)] == [("refused", "account disabled")] * 2


def test_throttling_locks_after_max_failures_then_unlocks(tmp_path, monkeypatch):
    hub = make_hub(tmp_path, monkeypatch, LOGIN_MAX_FAILURES="3", LOGIN_LOCKOUT_SECONDS="120")
    from exporthub.demo import create_demo

    create_demo(hub.db, hub.settings, scans=200, seed=1)
    s = hub.settings
    for i in range(2):
        with pytest.raises(auth.LoginRefused) as info:
            auth.authenticate(hub.db, s, "analyst", "nope", now=T0 + timedelta(seconds=i))
        assert not isinstance(info.value, auth.LoginThrottled)
    with pytest.raises(auth.LoginThrottled) as info:  # the third failure sets the lock
        auth.authenticate(hub.db, s, "analyst", "nope", now=T0 + timedelta(seconds=2))
    assert info.value.retry_after == 120
    # While locked, even the right password is refused, without touching argon2's answer.
    with pytest.raises(auth.LoginThrottled) as info:
        auth.authenticate(hub.db, s, "analyst", "demo", now=T0 + timedelta(seconds=60))
    assert info.value.retry_after == 62  # locked at +2 s for 120 s, asked at +60 s
    assert info.value.message == "Too many failed attempts. Try again in 2 minutes."
    # Other users are not affected.
    assert auth.authenticate(hub.db, s, "viewer", "demo", now=T0 + timedelta(seconds=61)).username == "viewer"
    # After the lockout the right password works and the counter is gone.
    user = auth.authenticate(hub.db, s, "analyst", "demo", now=T0 + timedelta(seconds=123))
    assert user.username == "analyst"
    with hub.db.read() as session:
        assert session.get(LoginAttempt, "analyst") is None
    events = _login_events(hub)
    assert [(a, o) for a, o, _ in events] == [
        ("analyst", "refused"),
        ("analyst", "refused"),
        ("analyst", "refused"),
        ("analyst", "refused"),
        ("viewer", "ok"),
        ("analyst", "ok"),
    ]
    assert "locked for 120 s" in events[2][2]
    assert events[3][2].startswith("locked")


def test_unknown_usernames_are_throttled_like_real_ones(tmp_path, monkeypatch):
    hub = make_hub(tmp_path, monkeypatch, LOGIN_MAX_FAILURES="2")
    for i in range(2):
        with pytest.raises(auth.LoginRefused):
            auth.authenticate(hub.db, hub.settings, "ghost", "x", now=T0 + timedelta(seconds=i))
    with pytest.raises(auth.LoginThrottled):
        auth.authenticate(hub.db, hub.settings, "ghost", "x", now=T0 + timedelta(seconds=3))


def test_success_resets_the_failure_count(tmp_path, monkeypatch):
    hub = make_hub(tmp_path, monkeypatch, LOGIN_MAX_FAILURES="3")
    from exporthub.demo import create_demo

    create_demo(hub.db, hub.settings, scans=200, seed=1)
    for _round in range(3):  # 2 failures + 1 success, three times: never locked
        for _ in range(2):
            with pytest.raises(auth.LoginRefused) as info:
                auth.authenticate(hub.db, hub.settings, "analyst", "bad", now=T0)
            assert not isinstance(info.value, auth.LoginThrottled)
        auth.authenticate(hub.db, hub.settings, "analyst", "demo", now=T0)


# ---------------------------------------------------------------------------- sessions and tickets


def _uid(hub, name: str) -> int:
    return auth.current_user(hub.db, name).id


def _session_rows(hub) -> list[tuple[int, str | None]]:
    with hub.db.read() as s:
        return [(r.user_id, r.end_reason) for r in s.scalars(select(LoginSession).order_by(LoginSession.created_at))]


def test_session_lives_on_the_server_and_idles_out(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "viewer"), now=T0)
    session_id, mac = cookie.split(".")
    with db.read() as session:  # the database keeps only the id's hash, never the cookie
        row = session.scalars(select(LoginSession)).one()
        assert row.id != session_id and session_id not in row.id and mac not in row.id
    assert sessions.validate(db, s, cookie, now=T0 + timedelta(seconds=10)).username == "viewer"
    idle = s.session_idle_seconds
    # Activity (a full page run) is written at most once a minute and slides the idle window.
    later = T0 + timedelta(seconds=idle - 5)
    assert sessions.touch(db, s, cookie, now=later)
    assert sessions.validate(db, s, cookie, now=later + timedelta(seconds=idle)).username == "viewer"
    check = sessions.check(db, s, cookie, now=later + timedelta(seconds=idle + 1))
    assert (check.user, check.reason) == (None, "idle")
    # Ended for good: being "active" again does not bring it back.
    assert sessions.validate(db, s, cookie, now=later) is None
    assert _session_rows(demo_hub) == [(_uid(demo_hub, "viewer"), "idle")]


def test_fragment_refreshes_alone_do_not_keep_a_session_alive(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "analyst"), now=T0)
    now = T0
    for _ in range(3):  # an open tab's job list, refreshing on its own
        now += timedelta(seconds=s.session_idle_seconds // 4)
        assert sessions.check(db, s, cookie, now=now).user is not None
    assert sessions.check(db, s, cookie, now=T0 + timedelta(seconds=s.session_idle_seconds + 1)).reason == "idle"


def test_session_ends_at_the_maximum_age_however_active(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "analyst"), now=T0)
    now = T0
    while now - T0 < timedelta(seconds=auth.SESSION_MAX_AGE_SECONDS - 3600):
        now += timedelta(seconds=s.session_idle_seconds - 60)
        assert sessions.touch(db, s, cookie, now=now)
    check = sessions.check(db, s, cookie, now=T0 + timedelta(seconds=auth.SESSION_MAX_AGE_SECONDS + 1))
    assert (check.user, check.reason) == (None, "expired")


def test_tampered_forged_or_foreign_cookies_are_no_session(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "analyst"), now=T0)
    session_id, mac = cookie.split(".")
    link = make_token(s, 1, _uid(demo_hub, "analyst"), 2_000_000_000)
    forged = f"{session_id[:-1]}{'A' if session_id[-1] != 'A' else 'B'}.{mac}"
    for bad in ("", "x", "a.b", cookie + "x", forged, f"{session_id}.{session_id}", link, "." * 10, "é.é",
                "a" * 5000, session_id):
        assert sessions.validate(db, s, bad, now=T0) is None, bad


def test_logout_ends_the_session_on_the_server_with_one_event(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "viewer"))
    assert sessions.end(db, s, cookie) is True
    assert sessions.end(db, s, cookie) is False  # twice: nothing more to end, nothing recorded
    assert sessions.end(db, s, "forged.cookie") is False
    assert sessions.validate(db, s, cookie) is None  # the old cookie, replayed, opens nothing
    assert _logouts(demo_hub) == [("viewer", "signed-out")]


def test_deactivation_password_change_and_admin_end_every_session_at_once(tmp_path, monkeypatch):
    hub = make_hub(tmp_path, monkeypatch, SECRET_KEY="first-secret-0123456789abcdef")
    from exporthub.demo import create_demo

    create_demo(hub.db, hub.settings, scans=200, seed=1)
    db, s = hub.db, hub.settings
    accounts = AccountService(db)
    cookies = {name: [sessions.start(db, s, _uid(hub, name)) for _ in range(2)]
               for name in ("analyst", "viewer", "manager", "admin")}
    accounts.set_active("admin", "analyst", False)
    accounts.set_password("admin", "viewer", "a-new-password")
    assert accounts.end_sessions("admin", "manager") == 2
    for name, reason in (("analyst", "disabled"), ("viewer", "password-changed"), ("manager", "ended-by-admin")):
        for cookie in cookies[name]:
            assert sessions.check(db, s, cookie) == sessions.SessionCheck(None, reason)
    assert all(sessions.validate(db, s, c).username == "admin" for c in cookies["admin"])
    # Reactivating the account does not bring its old sessions back.
    accounts.set_active("admin", "analyst", True)
    assert all(sessions.validate(db, s, c) is None for c in cookies["analyst"])
    # The admin page lists live sessions only, per user.
    with db.read() as session:
        live = sessions.live(session, s)
    assert sorted(i.username for i in live) == ["admin", "admin"]
    assert accounts.live_sessions("admin", s) == live
    with pytest.raises(PermissionDenied):
        accounts.end_sessions("viewer", "admin")
    # A rotated secret ends every session as well (the cookie's signature no longer holds).
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "second-secret-0123456789abcdef")
    assert sessions.validate(db, reload_settings(), cookies["admin"][0]) is None


NONCE = "n" * 43


def test_ticket_works_once_for_the_browser_that_asked_and_expires(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user_id = _uid(demo_hub, "analyst")
    ticket = tickets.issue(db, user_id, NONCE, now=T0)
    # Another browser (no nonce, or another one) cannot use it: login CSRF.
    assert tickets.redeem(db, s, ticket, None, now=T0) is None
    assert tickets.redeem(db, s, ticket, "m" * 43, now=T0) is None
    cookie = tickets.redeem(db, s, ticket, NONCE, user_agent="Test/1.0", now=T0 + timedelta(seconds=5))
    assert sessions.validate(db, s, cookie, now=T0 + timedelta(seconds=5)).username == "analyst"
    assert tickets.redeem(db, s, ticket, NONCE, now=T0 + timedelta(seconds=6)) is None  # spent
    late = tickets.issue(db, user_id, NONCE, now=T0)
    assert tickets.redeem(db, s, late, NONCE, now=T0 + timedelta(seconds=tickets.TICKET_TTL_SECONDS + 1)) is None
    pending = tickets.issue(db, user_id, NONCE, now=T0)
    _set_user(demo_hub, "analyst", active=False)
    assert tickets.redeem(db, s, pending, NONCE, now=T0 + timedelta(seconds=1)) is None
    with db.read() as session:
        refused = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "login-ticket", AuditEvent.outcome == "refused"))
    assert refused == 5  # one event for each refused redemption above
    for junk in (None, "", "x", cookie, "a" * 5000):
        assert tickets.redeem(db, s, junk, NONCE) is None
    with pytest.raises(ValueError):
        tickets.issue(db, user_id, "short")


def test_oidc_identity_maps_by_email_then_username(demo_hub):
    db = demo_hub.db
    _set_user(demo_hub, "analyst", email="Anais@Example.org")
    assert auth.login_identity(db, email="anais@example.org", username=None).username == "analyst"
    assert auth.login_identity(db, email="unknown@example.org", username="viewer").username == "viewer"
    assert auth.login_identity(db, email="nobody@example.org", username="nobody") is None
    _set_user(demo_hub, "viewer", active=False)
    assert auth.login_identity(db, email=None, username="viewer") is None
    assert [(o, d) for _a, o, d in _login_events(demo_hub)] == [
        ("ok", "oidc"),
        ("ok", "oidc"),
        ("refused", "oidc: no matching account"),
        ("refused", "oidc: account disabled"),
    ]


def test_projects_for_lists_memberships_or_everything_for_admins(demo_hub):
    def slugs(name: str) -> list[str]:
        return sorted(p.slug for p in auth.projects_for(demo_hub.db, name))

    assert slugs("admin") == ["demo-closed", "demo-open"]
    assert slugs("manager") == ["demo-closed", "demo-open"]
    assert slugs("analyst") == ["demo-open"]
    assert slugs("viewer") == ["demo-open"]
    assert slugs("outsider") == []
    _set_user(demo_hub, "manager", active=False)
    assert slugs("manager") == []


# ---------------------------------------------------------------------------- the cookie routes


def _request(method: str, path: str, query: str = "", cookies: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Request:
    raw = [(b"host", b"testserver")]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    for key, value in (headers or {}).items():
        raw.append((key.lower().encode(), value.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": raw,
        "scheme": "http",
        "server": ("testserver", 80),
        "root_path": "",
    }
    return Request(scope)


def _set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            jar.load(value.decode())
    return jar


def _logouts(hub) -> list[tuple[str | None, str | None]]:
    with hub.db.read() as session:
        return [tuple(r) for r in session.execute(
            select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == "logout").order_by(AuditEvent.id))]


SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}


def test_begin_sets_a_login_nonce_and_remembers_only_download_links(demo_hub):
    response = auth_routes.begin(_request("GET", "/auth/session/begin"))
    assert response.status_code == 303 and response.headers["location"] == "/?nonce=set"
    jar = _set_cookie(response)
    nonce = jar[tickets.NONCE_COOKIE]
    assert tickets.is_nonce(nonce.value) and nonce["httponly"] and nonce["samesite"] == "lax"
    assert auth_routes.NEXT_COOKIE not in jar
    # An existing nonce is kept (the form may be open in another tab).
    again = auth_routes.begin(_request("GET", "/auth/session/begin", cookies={tickets.NONCE_COOKIE: nonce.value}))
    assert tickets.NONCE_COOKIE not in _set_cookie(again)
    link = "/download/1.2.3." + "A" * 43
    carried = auth_routes.begin(_request("GET", "/auth/session/begin", f"next={link}"))
    assert carried.headers["location"] == "/?auth=login-required&nonce=set"
    remembered = _set_cookie(carried)[auth_routes.NEXT_COOKIE]
    assert remembered.value == link and remembered["path"] == auth_routes.LOGIN_PATH
    for elsewhere in ("https://evil.example/", "//evil.example", "/adminx", "/download/../x", "javascript:alert(1)",
                      "/job?job=<script>", "/statistics/../x"):
        odd = auth_routes.begin(_request("GET", "/auth/session/begin", f"next={quote(elsewhere)}"))
        assert auth_routes.NEXT_COOKIE not in _set_cookie(odd), elsewhere
        assert odd.headers["location"] == "/?nonce=set"


def test_begin_brings_a_deep_link_back_to_its_page_for_the_login_form(demo_hub):
    for page in ("/statistics", "/job?job=7", "/exports?project=demo-open"):
        response = auth_routes.begin(_request("GET", "/auth/session/begin", f"auth=idle&next={quote(page)}"))
        sep = "&" if "?" in page else "?"
        assert response.headers["location"] == f"{page}{sep}auth=idle&nonce=set"
        assert auth_routes.NEXT_COOKIE not in _set_cookie(response)  # the form carries the page on


def test_ticket_route_goes_on_to_the_page_a_deep_link_named_and_nowhere_else(demo_hub):
    db, _s = demo_hub.db, demo_hub.settings
    for target, expected in (("/job?job=7", "/job?job=7"), ("/statistics", "/statistics"),
                             ("//evil.example", "/"), ("https://evil.example/", "/")):
        ticket = tickets.issue(db, _uid(demo_hub, "analyst"), NONCE)
        response = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}&next={quote(target)}",
                                                      cookies={tickets.NONCE_COOKIE: NONCE}))
        assert response.headers["location"] == expected, target
        assert auth.SESSION_COOKIE in _set_cookie(response)


def test_ticket_route_sets_the_session_cookie_only_with_the_browsers_nonce(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    ticket = tickets.issue(db, _uid(demo_hub, "analyst"), NONCE)
    # Placed on another page: the victim's browser has no (or another) nonce, and keeps its own session.
    victim = sessions.start(db, s, _uid(demo_hub, "viewer"))
    planted = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}",
                                                 cookies={auth.SESSION_COOKIE: victim}))
    assert planted.headers["location"] == "/?auth=expired-ticket"
    assert auth.SESSION_COOKIE not in _set_cookie(planted)
    assert sessions.validate(db, s, victim).username == "viewer"
    link = "/download/1.2.3." + "A" * 43
    response = auth_routes.start_session(_request(
        "GET", "/auth/session", f"ticket={ticket}",
        cookies={tickets.NONCE_COOKIE: NONCE, auth_routes.NEXT_COOKIE: link}, headers={"user-agent": "Chromium/1"}))
    assert response.status_code == 303 and response.headers["location"] == link  # on to the download
    assert response.headers["cache-control"] == "no-store"
    raw = [v.decode() for k, v in response.raw_headers if k == b"set-cookie"]
    session_header = next(h for h in raw if h.startswith(auth.SESSION_COOKIE))
    assert "HttpOnly" in session_header and "SameSite=lax" in session_header and "Path=/" in session_header
    assert f"Max-Age={auth.SESSION_MAX_AGE_SECONDS}" in session_header
    jar = _set_cookie(response)
    assert sessions.validate(db, s, jar[auth.SESSION_COOKIE].value).username == "analyst"
    assert jar[tickets.NONCE_COOKIE].value == "" and jar[auth_routes.NEXT_COOKIE].value == ""  # used up
    with db.read() as session:
        assert session.scalars(select(LoginSession).where(LoginSession.user_agent == "Chromium/1")).one()
    again = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}",
                                               cookies={tickets.NONCE_COOKIE: NONCE}))
    assert again.headers["location"] == "/?auth=expired-ticket"


def test_logout_is_a_same_site_post_that_ends_the_session(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    cookie = sessions.start(db, s, _uid(demo_hub, "viewer"))
    # A cross-site form, a request without Origin or Sec-Fetch-Site, a foreign Origin: refused, session kept.
    for headers in ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, {},
                    {"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "same-site"}):
        refused = auth_routes.end_session(_request("POST", "/auth/session/end", cookies={auth.SESSION_COOKIE: cookie},
                                                   headers=headers))
        assert refused.status_code == 403 and auth.SESSION_COOKIE not in _set_cookie(refused), headers
    assert sessions.validate(db, s, cookie).username == "viewer"
    ended = auth_routes.end_session(_request("POST", "/auth/session/end", "reason=idle",
                                             cookies={auth.SESSION_COOKIE: cookie}, headers=SAME_ORIGIN))
    assert ended.status_code == 303 and ended.headers["location"] == "/auth/session/begin?auth=idle"
    cleared = _set_cookie(ended)[auth.SESSION_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0"
    assert sessions.validate(db, s, cookie) is None and _logouts(demo_hub) == [("viewer", "idle")]
    # An older browser without Sec-Fetch-Site, but with this site's Origin, may log out too.
    other = sessions.start(db, s, _uid(demo_hub, "analyst"))
    auth_routes.end_session(_request("POST", "/auth/session/end", cookies={auth.SESSION_COOKIE: other},
                                     headers={"origin": "http://testserver"}))
    assert sessions.validate(db, s, other) is None
    # Only known reasons are passed on; nothing from the request decides where the browser goes.
    odd = auth_routes.end_session(_request("POST", "/auth/session/end", "reason=https://evil.example",
                                           headers=SAME_ORIGIN))
    assert odd.headers["location"] == "/auth/session/begin?auth=signed-out"
    assert len(_logouts(demo_hub)) == 2


def test_server_mounts_the_auth_routes_before_streamlit_and_logout_refuses_get():
    from starlette.applications import Starlette

    import server

    paths = {getattr(r, "path", None): r for r in server.ROUTES}
    assert {"/healthz", auth_routes.BEGIN_PATH, auth_routes.LOGIN_PATH, auth_routes.LOGOUT_PATH} <= set(paths)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {**_request("GET", auth_routes.LOGOUT_PATH, cookies={auth.SESSION_COOKIE: "x"}).scope,
             "http_version": "1.1", "raw_path": auth_routes.LOGOUT_PATH.encode()}
    asyncio.run(Starlette(routes=auth_routes.ROUTES)(scope, receive, send))
    assert sent[0]["status"] == 405  # a cross-site link (GET) can never log anybody out


def test_login_attempts_table_stays_small(demo_hub):
    for _ in range(3):
        with pytest.raises(auth.LoginRefused):
            auth.authenticate(demo_hub.db, demo_hub.settings, "analyst", "bad", now=T0)
    with demo_hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 1
        assert s.get(LoginAttempt, "analyst").failures == 3


def test_session_rows_over_for_a_month_are_purged_when_someone_logs_in(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    old = sessions.start(db, s, _uid(demo_hub, "viewer"), now=T0 - timedelta(days=40))
    recent = sessions.start(db, s, _uid(demo_hub, "viewer"), now=T0 - timedelta(days=2))
    sessions.start(db, s, _uid(demo_hub, "analyst"), now=T0)
    assert len(_session_rows(demo_hub)) == 2  # the 40-day-old one is gone
    assert sessions.check(db, s, old, now=T0).reason == "ended"
    assert sessions.check(db, s, recent, now=T0).reason == "idle"
