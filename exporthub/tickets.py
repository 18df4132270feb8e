"""One-time sign-in tickets, kept in the database and bound to the browser that asked for them.

The login page runs inside Streamlit, which cannot set cookies. So once the password is checked, the
page hands the browser a ticket and sends it to ``/auth/session?ticket=…``, where an HTTP route trades
the ticket for a session cookie. Two things keep that hand-over safe:

- **Single use across replicas.** The ticket's sha256 is a row; redeeming it is one conditional
  ``UPDATE … WHERE used_at IS NULL AND expires_at > now``, so exactly one request, on any web
  replica, wins it.
- **Bound to one browser** (login CSRF). Before the login form is shown, the browser gets a random
  nonce in an HttpOnly cookie (:data:`NONCE_COOKIE`, set by ``/auth/session/begin``); the ticket
  carries the nonce's sha256 and is only redeemed by a request carrying that same cookie. A ticket
  an attacker captured from their own login and placed on another page opens nothing in the
  victim's browser.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update

from exporthub import audit, sessions, signing
from exporthub.access import is_usable
from exporthub.db import Database
from exporthub.models import LoginTicket, User, utcnow
from exporthub.settings import Settings

NONCE_COOKIE = "exporthub_login_nonce"
# A ticket travels in a URL once, right after the password was checked.
TICKET_TTL_SECONDS = 60
_SECRET = re.compile(r"\A[A-Za-z0-9_-]{32,64}\Z")


def new_nonce() -> str:
    """A fresh browser nonce for :data:`NONCE_COOKIE`."""
    return secrets.token_urlsafe(32)


def is_nonce(value: object) -> bool:
    """Whether ``value`` has the shape of a nonce we hand out (anything else is no nonce at all)."""
    return isinstance(value, str) and _SECRET.match(value) is not None


def issue(db: Database, user_id: int, nonce: str, *, now: datetime | None = None) -> str:
    """A ticket for ``user_id``, redeemable once within :data:`TICKET_TTL_SECONDS` by the browser
    holding ``nonce``. Raises ``ValueError`` for a malformed nonce."""
    if not is_nonce(nonce):
        raise ValueError("a login ticket needs the browser's nonce")
    now = now or utcnow()
    ticket = secrets.token_urlsafe(32)
    with db.write() as s:
        # Spent and expired tickets are useless: keep the table to the last hour's logins.
        s.execute(delete(LoginTicket).where(LoginTicket.expires_at < now - timedelta(hours=1)))
        s.add(LoginTicket(id=signing.token_hash(ticket), user_id=user_id, browser=signing.token_hash(nonce),
                          created_at=now, expires_at=now + timedelta(seconds=TICKET_TTL_SECONDS)))
    return ticket


def redeem(
    db: Database, settings: Settings, ticket: str | None, nonce: str | None, *, user_agent: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """Trade a fresh, unused ticket presented with its browser's nonce for a session cookie value.

    ``None`` when the ticket is malformed, unknown, spent, expired, presented by another browser, or
    its user may no longer log in; such a refusal writes one ``login-ticket`` audit event.
    """
    now = now or utcnow()
    if not (isinstance(ticket, str) and _SECRET.match(ticket) and is_nonce(nonce)):
        _refused(db, "malformed ticket or no browser nonce")
        return None
    assert ticket is not None and nonce is not None
    with db.write() as s:
        won = s.execute(
            update(LoginTicket)
            .where(LoginTicket.id == signing.token_hash(ticket), LoginTicket.used_at.is_(None),
                   LoginTicket.expires_at > now, LoginTicket.browser == signing.token_hash(nonce))
            .values(used_at=now)
            .returning(LoginTicket.user_id)
        ).first()
        user = s.get(User, won[0]) if won is not None else None
        if user is not None and is_usable(user) and user.password_hash is not None:
            return sessions.create(s, settings, user.id, source="password", user_agent=user_agent, now=now)
    _refused(db, "unknown, spent or expired ticket, another browser's ticket, or an unusable account")
    return None


def _refused(db: Database, detail: str) -> None:
    with db.write() as s:
        audit.record(s, action="login-ticket", outcome=audit.Outcome.REFUSED, detail=detail)
