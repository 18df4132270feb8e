"""What the account service returns: plain, frozen views of projects, users and audit entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exporthub.models import AuditEvent, Project, User
from exporthub.views import iso


@dataclass(frozen=True)
class ProjectView:
    slug: str
    name: str
    timezone: str
    status: str
    created_at: datetime
    closed_at: datetime | None
    published_at: datetime | None
    currency: str = "EUR"  # what the project's costs are in (ISO 4217)

    def to_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "timezone": self.timezone,
            "status": self.status,
            "created_at": iso(self.created_at),
            "closed_at": iso(self.closed_at),
            "published_at": iso(self.published_at),
        }


@dataclass(frozen=True)
class UserView:
    username: str
    display_name: str
    email: str | None
    is_admin: bool
    active: bool
    deleted: bool
    can_log_in: bool
    roles: dict[str, str] = field(default_factory=dict)  # project slug -> role
    hourly_rate: float = 0.0  # the users export's labour figures use it

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "is_admin": self.is_admin,
            "active": self.active,
            "deleted": self.deleted,
            "can_log_in": self.can_log_in,
            "roles": dict(self.roles),
            "hourly_rate": self.hourly_rate,
        }


@dataclass(frozen=True)
class AuditEntry:
    time: datetime
    actor: str | None
    project: str | None
    action: str
    target: str | None
    outcome: str
    detail: str | None

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEntry:
        return cls(time=e.time, actor=e.actor, project=e.project, action=e.action, target=e.target,
                   outcome=e.outcome, detail=e.detail)


def project_view(p: Project) -> ProjectView:
    return ProjectView(
        slug=p.slug,
        name=p.name,
        timezone=p.timezone,
        status=p.status,
        created_at=p.created_at,
        closed_at=p.closed_at,
        published_at=p.published_at,
        currency=p.currency,
    )


def user_view(u: User, roles: dict[str, str] | None = None) -> UserView:
    return UserView(
        username=u.username,
        display_name=u.display_name,
        email=u.email,
        is_admin=u.is_admin,
        active=u.active,
        deleted=u.deleted_at is not None,
        can_log_in=u.password_hash is not None,
        roles=dict(roles or {}),
        hourly_rate=float(u.hourly_rate or 0.0),
    )
