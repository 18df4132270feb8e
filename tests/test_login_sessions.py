"""Server-side login sessions and sign-in tickets: idle and maximum age, ending them, single use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exporthub import auth, sessions, tickets
from exporthub.accounts import AccountService
from exporthub.errors import PermissionDenied
from exporthub.links import make_token
from exporthub.models import AuditEvent, LoginSession
from exporthub.settings import reload_settings
from tests._auth_helpers import NONCE, T0, _logouts, _session_rows, _set_user, _uid
from tests.conftest import make_hub


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


def test_session_rows_over_for_a_month_are_purged_when_someone_logs_in(demo_hub):
    db, s = demo_hub.db, demo_hub.settings
    old = sessions.start(db, s, _uid(demo_hub, "viewer"), now=T0 - timedelta(days=40))
    recent = sessions.start(db, s, _uid(demo_hub, "viewer"), now=T0 - timedelta(days=2))
    sessions.start(db, s, _uid(demo_hub, "analyst"), now=T0)
    assert len(_session_rows(demo_hub)) == 2  # the 40-day-old one is gone
    assert sessions.check(db, s, old, now=T0).reason == "ended"
    assert sessions.check(db, s, recent, now=T0).reason == "idle"
