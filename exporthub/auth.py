"""Logins and browser sessions: argon2 passwords, throttling, signed session tokens.

The web app checks a password with :func:`authenticate`, hands the browser a one-time sign-in
ticket (:func:`issue_ticket`), and an HTTP route trades the ticket for a session token
(:func:`redeem_ticket`) that it stores in an HttpOnly cookie. Every request and script run checks
that token with :func:`validate_session`, which also re-reads the user, so a deactivated account is
refused at once. Tokens are stateless: they carry the user id, the issue time, the last time the
session was seen and a fingerprint of the password hash, signed with HMAC-SHA256 under a key
derived from the instance secret. A session ends when it has been idle for
``settings.session_idle_seconds``, when it is older than :data:`SESSION_MAX_AGE_SECONDS`, when
the password changes, or when the user is deactivated or deleted.

Every call to :func:`authenticate` writes exactly one audit event (``login``, ok or refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporthub import audit
from exporthub.access import is_usable, visible_projects
from exporthub.context import ProjectInfo
from exporthub.db import Database
from exporthub.errors import ExporthubError
from exporthub.models import LoginAttempt, User, utcnow
from exporthub.passwords import verify_password
from exporthub.settings import Settings

SESSION_COOKIE = "exporthub_session"
# An active user is asked for the password again after this long, however busy the session.
SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600
# A sign-in ticket travels in a URL once, right after the password was checked.
TICKET_TTL_SECONDS = 60
_MAX_USERNAME = 64  # the width of the username columns
_MAX_TOKEN = 4096  # anything longer is not one of ours; refuse before decoding


class LoginRefused(ExporthubError):
    """Wrong username or password, or an account that may not log in. Deliberately vague."""

    def __init__(self, message: str = "Invalid username or password") -> None:
        super().__init__(message)


class LoginThrottled(LoginRefused):
    """Too many failed attempts for this username; ``retry_after`` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionUser:
    """Who is logged in, as the UI needs it."""

    id: int
    username: str
    display_name: str
    is_admin: bool


@dataclass(frozen=True)
class SessionToken:
    """The decoded, verified content of a session token."""

    user_id: int
    issued: datetime
    seen: datetime


# ---------------------------------------------------------------------------- passwords


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

    Raises :class:`LoginThrottled` while the username is locked after
    ``settings.login_max_failures`` failures in a row (for ``settings.login_lockout_seconds``), and
    :class:`LoginRefused` for an unknown user, a wrong password, an account without a password
    (field staff), or a deactivated or deleted account. Unknown usernames are throttled too and
    cost the same argon2 time, so the answer does not tell whether an account exists. Writes
    exactly one ``login`` audit event.
    """
    now = _now(now)
    name = _clean_username(username)
    with db.read() as s:
        locked_for = _locked_for(s.get(LoginAttempt, name), now)
        user = s.scalar(select(User).where(User.username == name)) if name else None
        snapshot = _user_snapshot(user)
    if locked_for:
        _audit_login(db, name, ok=False, detail="locked: too many failed attempts")
        raise LoginThrottled(locked_for)
    # argon2 runs outside any transaction: it takes tens of milliseconds on purpose.
    password_ok = verify_password(snapshot["hash"] if snapshot else None, password or "")
    if password_ok and snapshot and snapshot["usable"]:
        with db.write() as s:
            # A lock set by a concurrent failure in the meantime still wins.
            locked_for = _locked_for(_attempt_for_update(s, name), now)
            if not locked_for:
                s.query(LoginAttempt).filter(LoginAttempt.username == name).delete()
                audit.record(s, action="login", actor=name, target=f"user:{snapshot['id']}")
        if not locked_for:
            return SessionUser(snapshot["id"], name, snapshot["display_name"], snapshot["is_admin"])
        _audit_login(db, name, ok=False, detail="locked: too many failed attempts")
        raise LoginThrottled(locked_for)
    reason = "unknown user" if snapshot is None else ("account disabled" if password_ok else "wrong password")
    locked_now = _record_failure(db, settings, name, now, reason)
    if locked_now:
        raise LoginThrottled(settings.login_lockout_seconds)
    raise LoginRefused()


def _user_snapshot(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.id,
        "hash": user.password_hash,
        "usable": is_usable(user),
        "display_name": user.display_name,
        "is_admin": user.is_admin,
    }


def _locked_for(attempt: LoginAttempt | None, now: datetime) -> int:
    """Seconds left on the lock, or 0."""
    if attempt is None or attempt.locked_until is None or attempt.locked_until <= now:
        return 0
    return max(1, int((attempt.locked_until - now).total_seconds()))


def _attempt_for_update(s: Session, name: str) -> LoginAttempt | None:
    return s.scalar(select(LoginAttempt).where(LoginAttempt.username == name).with_for_update())


def _record_failure(db: Database, settings: Settings, name: str, now: datetime, reason: str) -> bool:
    """Count a failure (and the one audit event) in one transaction; True when it set the lock."""
    with db.write() as s:
        attempt = _attempt_for_update(s, name)
        if attempt is None:
            attempt = LoginAttempt(username=name, failures=0, locked_until=None)
            s.add(attempt)
            try:
                with s.begin_nested():
                    s.flush()
            except IntegrityError:  # a concurrent first failure inserted the row: use that one
                attempt = _attempt_for_update(s, name)
                assert attempt is not None
        if attempt.locked_until is not None and attempt.locked_until <= now:
            attempt.locked_until = None  # an expired lock: start counting afresh
        attempt.failures = (attempt.failures or 0) + 1
        locked = attempt.failures >= settings.login_max_failures
        if locked:
            attempt.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            attempt.failures = 0
            reason += f"; locked for {settings.login_lockout_seconds} s"
        audit.record(s, action="login", outcome=audit.Outcome.REFUSED, actor=name or None, detail=reason)
    return locked


def _audit_login(db: Database, name: str, *, ok: bool, detail: str | None = None) -> None:
    with db.write() as s:
        audit.record(
            s,
            action="login",
            outcome=audit.Outcome.OK if ok else audit.Outcome.REFUSED,
            actor=name or None,
            detail=detail,
        )


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
        return SessionUser(user.id, user.username, user.display_name, user.is_admin)


# ---------------------------------------------------------------------------- signed tokens


def _key(settings: Settings, purpose: str) -> bytes:
    # One key per purpose, derived from the instance secret: a ticket can never pass as a session,
    # and neither can pass as a download link signed with the same secret.
    return hmac.new(
        settings.resolved_secret_key().encode(), f"exporthub/{purpose}/v1".encode(), hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(settings: Settings, purpose: str, payload: Mapping[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(_key(settings, purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def _verify(settings: Settings, purpose: str, token: str | None) -> dict[str, Any] | None:
    """The payload of a token signed for ``purpose``, or None for anything malformed or forged."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    try:
        expected = hmac.new(_key(settings, purpose), body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _password_mark(password_hash: str | None) -> str:
    # Changing the password (or removing it) ends every session that was opened with the old one.
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def issue_ticket(db: Database, settings: Settings, user_id: int, *, now: datetime | None = None) -> str:
    """A one-time sign-in ticket for ``user_id``, valid for :data:`TICKET_TTL_SECONDS`."""
    now = _now(now)
    with db.read() as s:
        user = s.get(User, user_id)
        mark = _password_mark(user.password_hash if user else None)
    return _sign(
        settings,
        "ticket",
        {"u": user_id, "x": _epoch(now) + TICKET_TTL_SECONDS, "n": secrets.token_urlsafe(12), "p": mark},
    )


class _UsedTickets:
    """Nonces of redeemed tickets, kept until they expire: a ticket works once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def claim(self, nonce: str, expires: int, now: int) -> bool:
        with self._lock:
            for key in [k for k, x in self._seen.items() if x < now]:
                del self._seen[key]
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires
            return True


_used_tickets = _UsedTickets()


def redeem_ticket(
    db: Database, settings: Settings, ticket: str | None, *, now: datetime | None = None
) -> str | None:
    """Trade a fresh, unused ticket for a session token; ``None`` if the ticket is bad or spent."""
    now = _now(now)
    payload = _verify(settings, "ticket", ticket)
    if payload is None:
        return None
    try:
        user_id, expires, nonce, mark = (
            int(payload["u"]),
            int(payload["x"]),
            str(payload["n"]),
            str(payload["p"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if expires < _epoch(now) or _load_user(db, user_id, mark) is None:
        return None
    if not _used_tickets.claim(nonce, expires, _epoch(now)):
        return None
    return issue_session(db, settings, user_id, now=now)


def issue_session(
    db: Database,
    settings: Settings,
    user_id: int,
    *,
    now: datetime | None = None,
    issued: datetime | None = None,
) -> str:
    """A session token for ``user_id``, seen ``now`` (``issued`` defaults to ``now`` as well)."""
    now = _now(now)
    with db.read() as s:
        user = s.get(User, user_id)
        mark = _password_mark(user.password_hash if user else None)
    return _sign(settings, "session", {"u": user_id, "i": _epoch(issued or now), "s": _epoch(now), "p": mark})


def decode_session(
    db: Database, settings: Settings, token: str | None, *, now: datetime | None = None
) -> tuple[SessionToken, SessionUser] | None:
    """The verified token and its user, or ``None`` when the session is over for any reason:
    bad signature, idle longer than ``settings.session_idle_seconds``, older than
    :data:`SESSION_MAX_AGE_SECONDS`, password changed, or user deleted or deactivated."""
    now = _now(now)
    payload = _verify(settings, "session", token)
    if payload is None:
        return None
    try:
        user_id, issued, seen, mark = (
            int(payload["u"]),
            int(payload["i"]),
            int(payload["s"]),
            str(payload["p"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    current = _epoch(now)
    # A token "seen" in the future was not made by us (or the clocks disagree wildly): refuse it.
    if seen > current + 60 or current - seen > settings.session_idle_seconds:
        return None
    if current - issued > SESSION_MAX_AGE_SECONDS or issued > seen:
        return None
    user = _load_user(db, user_id, mark)
    if user is None:
        return None
    info = SessionToken(user_id, datetime.fromtimestamp(issued, UTC), datetime.fromtimestamp(seen, UTC))
    return info, user


def validate_session(
    db: Database, settings: Settings, token: str | None, *, now: datetime | None = None
) -> SessionUser | None:
    """The logged-in user of a session token, or ``None`` (see :func:`decode_session`)."""
    decoded = decode_session(db, settings, token, now=now)
    return None if decoded is None else decoded[1]


def refresh_session(
    db: Database, settings: Settings, token: str | None, *, now: datetime | None = None
) -> str | None:
    """The same session, seen ``now`` (sliding idle expiry); ``None`` if the session is over."""
    decoded = decode_session(db, settings, token, now=now)
    if decoded is None:
        return None
    info, user = decoded
    return issue_session(db, settings, user.id, now=now, issued=info.issued)


def _load_user(db: Database, user_id: int, mark: str | None) -> SessionUser | None:
    with db.read() as s:
        user = s.get(User, user_id)
        if user is None or not is_usable(user) or user.password_hash is None:
            return None
        if mark is not None and not hmac.compare_digest(mark, _password_mark(user.password_hash)):
            return None
        return SessionUser(user.id, user.username, user.display_name, user.is_admin)


def current_user(db: Database, username: str) -> SessionUser | None:
    """The user by name if the account may still be used (not deactivated or deleted), else ``None``.

    The web app calls this on every script run, so deactivating a user ends their sessions at once.
    """
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not is_usable(user):
            return None
        return SessionUser(user.id, user.username, user.display_name, user.is_admin)


def projects_for(db: Database, username: str) -> list[ProjectInfo]:
    """The projects a user may pick: every project for a global admin, else their memberships."""
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            return []
        return [ProjectInfo(p.id, p.slug, p.name, p.timezone, p.status) for p in visible_projects(s, user)]


def end_session(db: Database, settings: Settings, token: str | None, *, reason: str = "signed-out") -> bool:
    """Record that a live session ended (one ``logout`` audit event). The cookie itself is cleared by
    the caller; a missing or already dead session records nothing. Returns whether one was recorded."""
    user = validate_session(db, settings, token)
    if user is None:
        return False
    with db.write() as s:
        audit.record(s, action="logout", actor=user.username, target=f"user:{user.username}", detail=reason)
    return True
