"""Logging in (exporthub.auth): argon2, vague refusals, throttling, one audit event, OIDC, projects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exporthub import auth
from exporthub.models import LoginAttempt
from tests._auth_helpers import T0, _login_events, _set_user
from tests.conftest import make_hub


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


def test_login_attempts_table_stays_small(demo_hub):
    for _ in range(3):
        with pytest.raises(auth.LoginRefused):
            auth.authenticate(demo_hub.db, demo_hub.settings, "analyst", "bad", now=T0)
    with demo_hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 1
        assert s.get(LoginAttempt, "analyst").failures == 3


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
