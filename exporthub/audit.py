"""The append-only audit trail. One event per state-changing action or refusal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exporthub.db import Database
from exporthub.errors import ExporthubError
from exporthub.models import AuditEvent, utcnow


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


def record(
    session: Session,
    *,
    action: str,
    outcome: Outcome = Outcome.OK,
    actor: str | None = None,
    project: str | None = None,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one event in the caller's transaction (so it commits or rolls back with the action)."""
    session.add(
        AuditEvent(
            time=utcnow(),
            actor=actor,
            project=project,
            action=action,
            target=target,
            outcome=str(outcome),
            detail=detail[:2000] if detail else None,
        )
    )


def record_refusal(
    db: Database,
    refusal: ExporthubError,
    *,
    action: str,
    actor: str | None,
    project: str | None = None,
    target: str | None = None,
) -> ExporthubError:
    """Append one ``refused`` event in a transaction of its own (the refused action's transaction was
    rolled back), with the refusal's message as detail. Returns ``refusal`` so callers can
    ``raise audit.record_refusal(...)``."""
    with db.write() as s:
        record(s, action=action, outcome=Outcome.REFUSED, actor=actor, project=project, target=target,
               detail=refusal.message)
    return refusal


def query(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    project: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> Sequence[AuditEvent]:
    """Newest first, filtered by any of the given fields."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if project:
        stmt = stmt.where(AuditEvent.project == project)
    if since:
        stmt = stmt.where(AuditEvent.time >= since)
    if until:
        stmt = stmt.where(AuditEvent.time < until)
    return session.scalars(stmt).all()


def facets(s: Session) -> dict[str, list[str]]:
    """The distinct actors, actions and projects in the audit trail (for filter pickers)."""

    def distinct(col: Any) -> list[str]:
        return [v for v in s.scalars(select(col).distinct().order_by(col)) if v]

    return {"actors": distinct(AuditEvent.actor), "actions": distinct(AuditEvent.action),
            "projects": distinct(AuditEvent.project)}
