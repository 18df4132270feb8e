"""Per-user API tokens for scripts: ``Authorization: Bearer eh_…`` on a download link.

A download link belongs to one user, and without that user's browser session it asks for a login. A
script has no browser, so it presents a token of the same user instead. Tokens are made, listed and
revoked by the operator (``exporthub tokens``, the system actor) or a global admin; the token itself
is shown once, when it is made, and only its sha256 is stored. A token stops working when it is
revoked, when it expires, and when its user is deactivated (which revokes it for good) or deleted.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exporthub import signing
from exporthub.access import get_user, is_usable
from exporthub.authorization import Actor, audited_change, authorize
from exporthub.db import Database
from exporthub.errors import InvalidTransition, InvalidValue, NotFound
from exporthub.models import ApiToken, User, utcnow
from exporthub.sessions import SessionUser, session_user
from exporthub.views import iso

PREFIX = "eh_"
MAX_NAME = 100
MAX_TTL_DAYS = 3660
_TOKEN = re.compile(r"\Aeh_[A-Za-z0-9_-]{43}\Z")
# The last use is written at most this often per token: a script looping over files costs no extra writes.
_USE_WRITE_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenView:
    id: int
    username: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.username, "name": self.name, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "last_used_at": iso(self.last_used_at),
                "revoked_at": iso(self.revoked_at), "active": self.active}


def _view(row: ApiToken, username: str) -> TokenView:
    return TokenView(row.id, username, row.name, row.created_at, row.expires_at, row.last_used_at, row.revoked_at)


def create(
    db: Database, actor: Actor, username: str, name: str, *, ttl_days: int | None = None
) -> tuple[TokenView, str]:
    """A new token for ``username``: its view and the token itself (shown once, never stored).

    Raises :class:`NotFound`, :class:`InvalidValue` (name, lifetime), :class:`InvalidTransition` (an
    account that cannot log in) or :class:`PermissionDenied`. One ``token-create`` audit event.
    """
    name = (name or "").strip()

    def work(s: Session) -> tuple[tuple[TokenView, str], str]:
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidValue(f"A token needs a name of 1 to {MAX_NAME} printable characters")
        if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
            raise InvalidValue(f"A token lives between 1 and {MAX_TTL_DAYS} days")
        user = get_user(s, username)
        if not is_usable(user) or user.password_hash is None:
            raise InvalidTransition(f"User {username} cannot log in, so cannot hold an API token")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiToken(user_id=user.id, name=name, token_hash=signing.token_hash(secret), created_at=now,
                       expires_at=None if ttl_days is None else now + timedelta(days=ttl_days))
        s.add(row)
        s.flush()
        return (_view(row, user.username), secret), f"token {row.id} ({name})"

    return audited_change(db, actor, "token-create", work, target=f"user:{username}")


def list_tokens(db: Database, actor: Actor, username: str | None = None) -> list[TokenView]:
    """Every token (or one user's), newest first; revoked and expired ones included, flagged."""
    with db.read() as s:
        authorize(s, actor)
        stmt = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
        if username is not None:
            stmt = stmt.where(User.username == get_user(s, username).username)
        return [_view(row, name) for row, name in s.execute(stmt)]


def revoke(db: Database, actor: Actor, token_id: int) -> TokenView:
    """Revoke a token at once. Raises :class:`NotFound` or :class:`InvalidTransition` (revoked already)."""

    def work(s: Session) -> tuple[TokenView, str]:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"Unknown API token: {token_id}")
        if row.revoked_at is not None:
            raise InvalidTransition(f"API token {token_id} was revoked already")
        row.revoked_at = utcnow()
        user = s.get(User, row.user_id)
        return _view(row, user.username if user else "?"), row.name

    return audited_change(db, actor, "token-revoke", work, target=f"token:{token_id}")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value, or ``None``."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(db: Database, token: str | None, *, now: datetime | None = None) -> SessionUser | None:
    """The active user a live token belongs to, or ``None`` (malformed, unknown, revoked, expired,
    or a user who may not log in). Records the token's last use."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    now = now or utcnow()
    with db.read() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == signing.token_hash(token)))
        if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        user = s.get(User, row.user_id)
        if user is None or not is_usable(user) or user.password_hash is None:
            return None
        who, token_id, last = session_user(user), row.id, row.last_used_at
    if last is None or now - last >= _USE_WRITE_EVERY:
        with db.write() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return who
