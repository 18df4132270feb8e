"""Logins and sessions: argon2, throttling, one audit event per login, signed expiring sessions,
one-time sign-in tickets, deactivated users, and the cookie routes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import func, select, update
from starlette.requests import Request

from exporthub import auth
from exporthub.models import AuditEvent, LoginAttempt, User
from exporthub.passwords import hash_password
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


def test_session_token_round_trip_and_idle_expiry(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user = auth.authenticate(db, s, "viewer", "demo", now=T0)
    token = auth.issue_session(db, s, user.id, now=T0)
    assert auth.validate_session(db, s, token, now=T0 + timedelta(seconds=10)) == user
    idle = s.session_idle_seconds
    assert auth.validate_session(db, s, token, now=T0 + timedelta(seconds=idle)) == user
    assert auth.validate_session(db, s, token, now=T0 + timedelta(seconds=idle + 1)) is None
    # Activity slides the idle window but keeps the issue time.
    later = T0 + timedelta(seconds=idle - 5)
    fresh = auth.refresh_session(db, s, token, now=later)
    assert fresh is not None and fresh != token
    info, _ = auth.decode_session(db, s, fresh, now=later)
    assert (info.issued, info.seen) == (T0, later)
    assert auth.validate_session(db, s, fresh, now=later + timedelta(seconds=idle)) == user
    assert auth.refresh_session(db, s, token, now=T0 + timedelta(seconds=idle + 1)) is None


def test_session_ends_at_the_maximum_age_however_active(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user_id = auth.current_user(db, "analyst").id
    token = auth.issue_session(db, s, user_id, now=T0)
    now = T0
    while now - T0 < timedelta(seconds=auth.SESSION_MAX_AGE_SECONDS - 3600):
        now += timedelta(seconds=s.session_idle_seconds - 60)
        token = auth.refresh_session(db, s, token, now=now)
        assert token is not None
    assert (
        auth.validate_session(db, s, token, now=T0 + timedelta(seconds=auth.SESSION_MAX_AGE_SECONDS + 1))
        is None
    )


def test_tampered_forged_or_cross_purpose_tokens_are_refused(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user_id = auth.current_user(db, "analyst").id
    token = auth.issue_session(db, s, user_id, now=T0)
    body, mac = token.split(".")
    admin_id = auth.current_user(db, "admin").id
    forged_body = auth._b64(auth._unb64(body).replace(f'"u":{user_id}'.encode(), f'"u":{admin_id}'.encode()))
    ticket = auth.issue_ticket(db, s, user_id, now=T0)
    for bad in ("", "x", "a.b", token + "x", f"{forged_body}.{mac}", ticket, "." * 10, "é.é", "a" * 5000):
        assert auth.validate_session(db, s, bad, now=T0) is None, bad
    # A session token is not a ticket either.
    assert auth.redeem_ticket(db, s, token, now=T0) is None


def test_deactivation_password_change_and_secret_rotation_end_sessions(tmp_path, monkeypatch):
    hub = make_hub(tmp_path, monkeypatch, SECRET_KEY="first-secret-0123456789abcdef")
    from exporthub.demo import create_demo

    create_demo(hub.db, hub.settings, scans=200, seed=1)
    db, s = hub.db, hub.settings
    ids = {name: auth.current_user(db, name).id for name in ("analyst", "viewer", "manager")}
    tokens = {name: auth.issue_session(db, s, uid, now=T0) for name, uid in ids.items()}
    _set_user(hub, "analyst", active=False)
    _set_user(hub, "viewer", password_hash=hash_password("new-password"))
    assert auth.validate_session(db, s, tokens["analyst"], now=T0) is None
    assert auth.validate_session(db, s, tokens["viewer"], now=T0) is None
    assert auth.validate_session(db, s, tokens["manager"], now=T0).username == "manager"
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "second-secret-0123456789abcdef")
    rotated = reload_settings()
    assert auth.validate_session(db, rotated, tokens["manager"], now=T0) is None


def test_ticket_works_once_and_expires(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user_id = auth.current_user(db, "analyst").id
    ticket = auth.issue_ticket(db, s, user_id, now=T0)
    session = auth.redeem_ticket(db, s, ticket, now=T0 + timedelta(seconds=5))
    assert auth.validate_session(db, s, session, now=T0 + timedelta(seconds=5)).username == "analyst"
    assert auth.redeem_ticket(db, s, ticket, now=T0 + timedelta(seconds=6)) is None  # spent
    late = auth.issue_ticket(db, s, user_id, now=T0)
    assert auth.redeem_ticket(db, s, late, now=T0 + timedelta(seconds=auth.TICKET_TTL_SECONDS + 1)) is None
    # A ticket of a user deactivated in the meantime is refused.
    pending = auth.issue_ticket(db, s, user_id, now=T0)
    _set_user(demo_hub, "analyst", active=False)
    assert auth.redeem_ticket(db, s, pending, now=T0 + timedelta(seconds=1)) is None


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


def _request(method: str, path: str, query: str = "", cookie: str | None = None) -> Request:
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"{auth.SESSION_COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": headers,
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


def test_routes_set_refresh_and_clear_an_httponly_samesite_cookie(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    user_id = auth.current_user(db, "analyst").id
    ticket = auth.issue_ticket(db, s, user_id)
    response = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}"))
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert response.headers["cache-control"] == "no-store"
    raw = response.headers["set-cookie"]
    assert "HttpOnly" in raw and "SameSite=lax" in raw and "Path=/" in raw
    assert f"Max-Age={s.session_idle_seconds}" in raw
    token = _set_cookie(response)[auth.SESSION_COOKIE].value
    assert auth.validate_session(db, s, token).username == "analyst"

    again = auth_routes.start_session(_request("GET", "/auth/session", f"ticket={ticket}"))
    assert again.headers["location"] == "/?auth=expired-ticket"
    assert _set_cookie(again)[auth.SESSION_COOKIE].value == ""

    refreshed = auth_routes.refresh_session(_request("POST", "/auth/session/refresh", cookie=token))
    assert refreshed.status_code == 204
    assert (
        auth.validate_session(db, s, _set_cookie(refreshed)[auth.SESSION_COOKIE].value).username == "analyst"
    )
    denied = auth_routes.refresh_session(_request("POST", "/auth/session/refresh", cookie="forged.token"))
    assert denied.status_code == 401 and _set_cookie(denied)[auth.SESSION_COOKIE].value == ""

    ended = auth_routes.end_session(_request("GET", "/auth/session/end", "reason=idle", cookie=token))
    assert ended.status_code == 303 and ended.headers["location"] == "/?auth=idle"
    cleared = _set_cookie(ended)[auth.SESSION_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0"
    # Only known reasons are passed on: the route decides where the browser goes, not the request.
    odd = auth_routes.end_session(_request("GET", "/auth/session/end", "reason=https://evil.example"))
    assert odd.headers["location"] == "/?auth=signed-out"


def test_server_mounts_the_auth_routes_before_streamlit():
    import server

    paths = [getattr(r, "path", None) for r in server.ROUTES]
    assert {"/healthz", auth_routes.LOGIN_PATH, auth_routes.LOGOUT_PATH, auth_routes.REFRESH_PATH} <= set(
        paths
    )
    health = asyncio.run(server.health(_request("GET", "/healthz")))
    assert health.status_code == 200


def test_login_attempts_table_stays_small(demo_hub):
    for _ in range(3):
        with pytest.raises(auth.LoginRefused):
            auth.authenticate(demo_hub.db, demo_hub.settings, "analyst", "bad", now=T0)
    with demo_hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 1
        assert s.get(LoginAttempt, "analyst").failures == 3


def test_logging_out_a_live_session_writes_one_logout_event(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    token = auth.issue_session(db, s, auth.current_user(db, "viewer").id)

    def logouts() -> list[tuple[str | None, str | None]]:
        with db.read() as session:
            return session.execute(
                select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == "logout")
            ).all()

    auth_routes.end_session(_request("GET", "/auth/session/end", cookie=token))
    assert logouts() == [("viewer", "signed-out")]
    # Without a live session (no cookie, or a forged one) nothing is recorded.
    auth_routes.end_session(_request("GET", "/auth/session/end"))
    auth_routes.end_session(_request("GET", "/auth/session/end", cookie="forged.token"))
    assert len(logouts()) == 1
