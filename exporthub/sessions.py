"""Server-side login sessions: one row per browser login, ended on the server.

The browser's cookie carries only the session id, signed (``<id>.<HMAC>``, see
:mod:`exporthub.signing`); the ``sessions`` row, keyed by the id's sha256, says whose session it is,
when it started and was last seen, and whether and why it ended. So every web replica sees a logout,
a deactivation, a password change or an admin's "end sessions" at once, and an old cookie replayed
later opens nothing.

A session ends when its user logs out, after ``settings.session_idle_seconds`` without activity,
:data:`SESSION_MAX_AGE_SECONDS` after it started however active, when the password is set again,
when the account is deactivated or deleted, or when an admin ends it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from exporthub import audit, signing
from exporthub.access import is_usable
from exporthub.db import Database, rowcount
from exporthub.models import LoginSession, User, utcnow
from exporthub.settings import Settings

SESSION_COOKIE = "exporthub_session"
# An active user is asked for the password again after this long, however busy the session.
SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600
# Activity is written at most this often per session: a page rerun every second costs no write.
TOUCH_EVERY_SECONDS = 60
_PURPOSE = "session"
_COOKIE = re.compile(r"\A([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})\Z")
_MAX_USER_AGENT = 300
_KEEP_ENDED = timedelta(seconds=SESSION_MAX_AGE_SECONDS) + timedelta(days=30)


class EndReason(StrEnum):
    """Why a session ended; the login page shows a sentence for each."""

    SIGNED_OUT = "signed-out"
    IDLE = "idle"
    EXPIRED = "expired"  # older than SESSION_MAX_AGE_SECONDS
    PASSWORD_CHANGED = "password-changed"
    DISABLED = "disabled"  # the account was deactivated or deleted
    ENDED_BY_ADMIN = "ended-by-admin"


@dataclass(frozen=True)
class SessionUser:
    """Who is logged in, as the UI needs it."""

    id: int
    username: str
    display_name: str
    is_admin: bool


@dataclass(frozen=True)
class SessionCheck:
    """The answer of :func:`check`: the user of a live session, or why there is none.

    ``reason`` is an :class:`EndReason` value, or ``"ended"`` for a cookie that names no session.
    """

    user: SessionUser | None
    reason: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    """One live session, for the admin page (never the id itself, only a short fingerprint)."""

    fingerprint: str
    username: str
    source: str
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime


def session_user(user: User) -> SessionUser:
    return SessionUser(user.id, user.username, user.display_name, user.is_admin)


def _verified_key(settings: Settings, cookie: str | None) -> str | None:
    """The row id a cookie names (the sha256 of its session id) if its signature holds, else ``None``."""
    if not isinstance(cookie, str):
        return None
    match = _COOKIE.match(cookie) if len(cookie) <= 100 else None
    if match is None or not signing.verify(settings, _PURPOSE, match.group(1), match.group(2)):
        return None
    return signing.token_hash(match.group(1))


def create(
    s: Session, settings: Settings, user_id: int, *, source: str = "password", user_agent: str | None = None,
    now: datetime | None = None,
) -> str:
    """Start a session for ``user_id`` in the caller's transaction; returns the cookie value."""
    now = now or utcnow()
    # Rows of sessions over for a month are of no use to anyone (the audit trail keeps the logins).
    s.execute(delete(LoginSession).where(LoginSession.last_seen_at < now - _KEEP_ENDED))
    session_id = secrets.token_urlsafe(32)
    s.add(LoginSession(id=signing.token_hash(session_id), user_id=user_id, source=source,
                       user_agent=(user_agent or "")[:_MAX_USER_AGENT] or None, created_at=now,
                       last_seen_at=now))
    return f"{session_id}.{signing.sign(settings, _PURPOSE, session_id)}"


def start(
    db: Database, settings: Settings, user_id: int, *, source: str = "password", user_agent: str | None = None,
    now: datetime | None = None,
) -> str:
    """:func:`create` in a transaction of its own."""
    with db.write() as s:
        return create(s, settings, user_id, source=source, user_agent=user_agent, now=now)


def _over(row: LoginSession, settings: Settings, now: datetime) -> EndReason | None:
    if now - row.created_at > timedelta(seconds=SESSION_MAX_AGE_SECONDS):
        return EndReason.EXPIRED
    if now - row.last_seen_at > timedelta(seconds=settings.session_idle_seconds):
        return EndReason.IDLE
    return None


def check(
    db: Database, settings: Settings, cookie: str | None, *, touch: bool = False, now: datetime | None = None
) -> SessionCheck:
    """The user of the live session ``cookie`` names, or why there is none.

    A session found idle, too old or belonging to an unusable account is ended here (one ``logout``
    audit event). ``touch`` counts this request as activity (written at most once a minute); the
    job list's own refreshes pass ``touch=False`` so an open tab alone never keeps a session alive.
    """
    now = now or utcnow()
    key = _verified_key(settings, cookie)
    if key is None:
        return SessionCheck(None, "ended")
    with db.read() as s:
        row = s.get(LoginSession, key)
        if row is None:
            return SessionCheck(None, "ended")
        if row.ended_at is not None:
            return SessionCheck(None, row.end_reason or "ended")
        user = s.get(User, row.user_id)
        reason = _over(row, settings, now)
        if reason is None and (user is None or not is_usable(user)):
            reason = EndReason.DISABLED
        stale = touch and now - row.last_seen_at >= timedelta(seconds=TOUCH_EVERY_SECONDS)
        who = session_user(user) if user is not None else None
    if reason is not None:
        _end_key(db, key, reason, now)
        return SessionCheck(None, str(reason))
    if stale:
        with db.write() as s:
            s.execute(update(LoginSession).where(LoginSession.id == key, LoginSession.ended_at.is_(None))
                      .values(last_seen_at=now))
    return SessionCheck(who)


def validate(
    db: Database, settings: Settings, cookie: str | None, *, now: datetime | None = None
) -> SessionUser | None:
    """The user of a live session, or ``None`` (see :func:`check`)."""
    return check(db, settings, cookie, now=now).user


def touch(db: Database, settings: Settings, cookie: str | None, *, now: datetime | None = None) -> bool:
    """Count activity on a live session (an action inside a refreshing fragment); False if it is over."""
    return check(db, settings, cookie, touch=True, now=now).user is not None


def _end_key(db: Database, key: str, reason: EndReason | str, now: datetime) -> bool:
    """End one session if it is live; one ``logout`` audit event when it was. Returns whether it was."""
    with db.write() as s:
        row = s.get(LoginSession, key)
        if row is None:
            return False
        ended = rowcount(s.execute(
            update(LoginSession).where(LoginSession.id == key, LoginSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=str(reason))
        ))
        if ended:
            user = s.get(User, row.user_id)
            name = user.username if user is not None else None
            audit.record(s, action="logout", actor=name, target=f"user:{name}", detail=str(reason))
    return bool(ended)


def end(db: Database, settings: Settings, cookie: str | None, *, reason: EndReason | str = EndReason.SIGNED_OUT,
        now: datetime | None = None) -> bool:
    """End the session a cookie names (logout). A missing, forged or already ended session records
    nothing; a live one writes one ``logout`` audit event. Returns whether one was ended."""
    key = _verified_key(settings, cookie)
    return False if key is None else _end_key(db, key, reason, now or utcnow())


def end_all(s: Session, user_id: int, reason: EndReason, *, now: datetime | None = None) -> int:
    """End every live session of a user in the caller's transaction (password change, deactivation,
    an admin's "end sessions"); the caller's action is the audit event. Returns how many ended."""
    return rowcount(s.execute(
        update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now or utcnow(), end_reason=str(reason))
    ))


def live(
    s: Session, settings: Settings, *, user_id: int | None = None, now: datetime | None = None
) -> list[SessionInfo]:
    """The live sessions (not ended, not idle, not too old), newest activity first."""
    now = now or utcnow()
    stmt = (
        select(LoginSession, User.username)
        .join(User, User.id == LoginSession.user_id)
        .where(
            LoginSession.ended_at.is_(None),
            LoginSession.last_seen_at >= now - timedelta(seconds=settings.session_idle_seconds),
            LoginSession.created_at >= now - timedelta(seconds=SESSION_MAX_AGE_SECONDS),
        )
        .order_by(LoginSession.last_seen_at.desc())
    )
    if user_id is not None:
        stmt = stmt.where(LoginSession.user_id == user_id)
    return [
        SessionInfo(fingerprint=row.id[:8], username=name, source=row.source, user_agent=row.user_agent,
                    created_at=row.created_at, last_seen_at=row.last_seen_at)
        for row, name in s.execute(stmt)
    ]
