"""Helpers shared by the login, session and auth route tests: a fixed clock, users and audit events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from exporthub import auth
from exporthub.models import AuditEvent, LoginSession, User

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


def _uid(hub, name: str) -> int:
    return auth.current_user(hub.db, name).id


def _session_rows(hub) -> list[tuple[int, str | None]]:
    with hub.db.read() as s:
        return [(r.user_id, r.end_reason) for r in s.scalars(select(LoginSession).order_by(LoginSession.created_at))]


def _logouts(hub) -> list[tuple[str | None, str | None]]:
    with hub.db.read() as session:
        return [tuple(r) for r in session.execute(
            select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == "logout").order_by(AuditEvent.id))]


NONCE = "n" * 43
