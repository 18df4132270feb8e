"""Who may do what on which project. Every domain call goes through :func:`require`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exporthub.errors import NotFound, PermissionDenied
from exporthub.models import Membership, Project, User
from exporthub.permissions import ALL_PERMISSIONS, Permission, role_permissions


def get_user(session: Session, username: str) -> User:
    """The user by username. Raises :class:`NotFound` for an unknown username."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Unknown user: {username}")
    return user


def get_project(session: Session, slug: str) -> Project:
    """The project by slug. Raises :class:`NotFound` for an unknown slug."""
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        raise NotFound(f"Unknown project: {slug}")
    return project


def is_usable(user: User) -> bool:
    """A deactivated or deleted account holds no permission anywhere, at once."""
    return user.active and user.deleted_at is None


def permissions_on(session: Session, user: User, project: Project) -> frozenset[Permission]:
    if not is_usable(user):
        return frozenset()
    if user.is_admin:
        return ALL_PERMISSIONS
    role = session.scalar(
        select(Membership.role).where(Membership.user_id == user.id, Membership.project_id == project.id)
    )
    return role_permissions(role) if role else frozenset()


def has(session: Session, user: User, project: Project, permission: Permission) -> bool:
    return permission in permissions_on(session, user, project)


def require(session: Session, user: User, project: Project, permission: Permission) -> None:
    """Raise :class:`PermissionDenied` unless ``user`` holds ``permission`` on ``project``."""
    if not has(session, user, project, permission):
        raise PermissionDenied()


def visible_projects(session: Session, user: User) -> Sequence[Project]:
    """The projects a user may see: all for a global admin, else those they are a member of."""
    if not is_usable(user):
        return []
    stmt = select(Project).order_by(Project.name)
    if not user.is_admin:
        stmt = stmt.join(Membership, Membership.project_id == Project.id).where(Membership.user_id == user.id)
    return session.scalars(stmt).all()


def user_rows(session: Session) -> list[dict[str, Any]]:
    """Every user (deleted ones too: old scans name them) as the rows of the lake's ``users`` view."""
    return [
        {"user_id": u.id, "username": u.username, "display_name": u.display_name, "email": u.email,
         "hourly_rate": u.hourly_rate, "active": u.active, "deleted_at": u.deleted_at,
         "can_log_in": u.password_hash is not None}
        for u in session.scalars(select(User).order_by(User.id))
    ]
