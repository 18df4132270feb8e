"""Logging in: argon2 passwords behind an atomic lockout, and identities vouched for by OIDC.

The web app checks a password with :func:`authenticate`, then hands the browser a one-time,
browser-bound sign-in ticket (:mod:`exporthub.tickets`) that an HTTP route trades for a server-side
session (:mod:`exporthub.sessions`). Throttling lives in :mod:`exporthub.lockout`: every attempt is
counted and checked against the lock *before* argon2 runs, so parallel guesses cannot get around it.

Every call to :func:`authenticate` writes exactly one audit event (``login``, ok or refused).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from exporthub import audit, lockout
from exporthub.access import is_usable, visible_projects
from exporthub.context import ProjectInfo
from exporthub.db import Database
from exporthub.errors import LoginRefused, LoginThrottled
from exporthub.models import User, utcnow
from exporthub.passwords import verify_password
from exporthub.sessions import SESSION_COOKIE, SESSION_MAX_AGE_SECONDS, SessionUser, session_user
from exporthub.settings import Settings

_MAX_USERNAME = 64  # the width of the username columns

__all__ = [
    "SESSION_COOKIE", "SESSION_MAX_AGE_SECONDS", "LoginRefused", "LoginThrottled", "SessionUser", "authenticate",
    "current_user", "login_identity", "projects_for",
]


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime")
    return now.astimezone(UTC)


def _clean_username(username: str) -> str:
    return (username or "").strip()[:_MAX_USERNAME]


def authenticate(
    db: Database, settings: Settings, username: str, password: str, *, now: datetime | None = None
) -> SessionUser:
    """Check a password and return the user.

    Raises :class:`LoginThrottled` while the username is locked after ``settings.login_max_failures``
    failures (for ``settings.login_lockout_seconds``), whatever the password, and without checking it;
    :class:`LoginRefused` for an unknown user, a wrong password, an account without a password (field
    staff), or a deactivated or deleted account. Unknown usernames are throttled too and cost the same
    argon2 time, so the answer does not tell whether an account exists. Writes exactly one ``login``
    audit event.
    """
    now = _now(now)
    name = _clean_username(username)
    lockout.admit(db, settings, name, now)
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == name)) if name else None
        who = session_user(user) if user is not None else None
        password_hash, usable = (user.password_hash, is_usable(user)) if user is not None else (None, False)
    # argon2 runs outside any transaction: it takes tens of milliseconds on purpose.
    password_ok = verify_password(password_hash, password or "")
    if password_ok and usable and who is not None:
        lockout.succeeded(db, name, who.id)
        return who
    reason = "unknown user" if who is None else ("account disabled" if password_ok else "wrong password")
    lockout.failed(db, settings, name, now, reason)
    raise LoginRefused()


def login_identity(
    db: Database, *, email: str | None, username: str | None, provider: str = "oidc"
) -> SessionUser | None:
    """The active user an identity provider vouched for, matched by e-mail, else by username.

    Used when Streamlit's OIDC login (``st.login``) is configured. Writes one ``login`` audit event:
    ok when a usable account matched, refused otherwise.
    """
    with db.write() as s:
        user = None
        if email:
            user = s.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None and username:
            user = s.scalar(select(User).where(User.username == _clean_username(username)))
        label = (email or username or "")[:_MAX_USERNAME] or None
        if user is None or not is_usable(user):
            audit.record(
                s,
                action="login",
                outcome=audit.Outcome.REFUSED,
                actor=label,
                detail=f"{provider}: {'no matching account' if user is None else 'account disabled'}",
            )
            return None
        audit.record(s, action="login", actor=user.username, target=f"user:{user.id}", detail=provider)
        return session_user(user)


def current_user(db: Database, username: str) -> SessionUser | None:
    """The user by name if the account may still be used (not deactivated or deleted), else ``None``."""
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not is_usable(user):
            return None
        return session_user(user)


def projects_for(db: Database, username: str) -> list[ProjectInfo]:
    """The projects a user may pick: every project for a global admin, else their memberships."""
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            return []
        return [ProjectInfo(p.id, p.slug, p.name, p.timezone, p.status, p.currency) for p in visible_projects(s, user)]
