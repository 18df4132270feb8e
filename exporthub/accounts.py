"""Projects, users, memberships and roles: the operator's work, shared by the CLI and the admin page.

Every call takes the actor first:

* a **username** when the call comes from the UI. The user must be an active global admin, or the
  call is refused with "Permission denied";
* a :class:`SystemActor` when it comes from the server-side CLI. Whoever can run ``exporthub`` on
  the server can read the data folder and the database credentials anyway, so the CLI is trusted like
  a migration script. It acts as ``cli:<operating-system user>`` (for example ``cli:root``) in the
  audit trail, so the trail still says who ran the command. Usernames cannot contain ``:``, so a
  system actor is never mistaken for a user.

Each change writes exactly one audit event in the same transaction; each refusal writes one too
(outcome ``refused``). Reads write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from exporthub import audit, lockout, sessions
from exporthub.access import get_project, get_user
from exporthub.account_views import AuditEntry, ProjectView, UserView, project_view, user_view
from exporthub.authorization import (
    Actor,
    SystemActor,
    actor_name,
    audited_change,
    authorize,
    cli_actor,
    is_global_admin,
)
from exporthub.db import Database, rowcount
from exporthub.errors import AlreadyExists, InvalidTransition, InvalidValue, NotFound
from exporthub.models import ApiToken, Membership, Project, User, utcnow
from exporthub.passwords import generate_password, hash_password
from exporthub.permissions import role_table
from exporthub.settings import Settings
from exporthub.states import ProjectStatus
from exporthub.validation import (
    timezone_names,
    validate_currency,
    validate_email,
    validate_hourly_rate,
    validate_password,
    validate_role,
    validate_slug,
    validate_timezone,
    validate_username,
)

# The account service's names, and those of the modules it was split into that its callers use.
__all__ = ["AccountService", "Actor", "AuditEntry", "ProjectView", "SystemActor", "UserView", "actor_name",
           "cli_actor", "generate_password", "is_global_admin", "role_table",
           "timezone_names"]  # the admin page's timezone picker (its home is exporthub.validation)

T = TypeVar("T")


# ---------------------------------------------------------------------- the service


class AccountService:
    """Projects, users, memberships and the audit trail, for global admins and the CLI."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ plumbing
    def _change(
        self,
        actor: Actor,
        action: str,
        work: Callable[[Session], tuple[T, str | None]],
        *,
        project: str | None = None,
        target: str | None = None,
        duplicate: str | None = None,
    ) -> T:
        return audited_change(self.db, actor, action, work, project=project, target=target, duplicate=duplicate)

    def _read(self, actor: Actor, work: Callable[[Session], T]) -> T:
        with self.db.read() as s:
            authorize(s, actor)
            return work(s)

    # ------------------------------------------------------------------ projects
    def list_projects(self, actor: Actor) -> list[ProjectView]:
        """Every project, by slug."""
        return self._read(
            actor, lambda s: [project_view(p) for p in s.scalars(select(Project).order_by(Project.slug))]
        )

    def create_project(self, actor: Actor, slug: str, name: str, timezone: str = "UTC") -> ProjectView:
        """Create an open project. Raises :class:`InvalidValue` (slug, name, timezone),
        :class:`AlreadyExists` or :class:`PermissionDenied`."""

        def work(s: Session) -> tuple[ProjectView, str]:
            validate_slug(slug)
            validate_timezone(timezone)
            if not name.strip():
                raise InvalidValue("A project needs a name")
            if s.scalar(select(Project.id).where(Project.slug == slug)) is not None:
                raise AlreadyExists(f"A project with the slug {slug!r} exists already")
            project = Project(slug=slug, name=name.strip(), timezone=timezone, status=str(ProjectStatus.OPEN),
                              created_at=utcnow())
            s.add(project)
            s.flush()
            return project_view(project), f"{name.strip()} ({timezone})"

        return self._change(
            actor,
            "project-add",
            work,
            project=slug,
            target=f"project:{slug}",
            duplicate=f"A project with the slug {slug!r} exists already",
        )

    def close_project(self, actor: Actor, slug: str) -> ProjectView:
        """Close an open project (exports that need a closed project become possible)."""

        def work(s: Session) -> tuple[ProjectView, str]:
            project = get_project(s, slug)
            if project.status != ProjectStatus.OPEN:
                raise InvalidTransition(
                    f"Project {slug} is {project.status}; only an open project can be closed"
                )
            project.status, project.closed_at = str(ProjectStatus.CLOSED), utcnow()
            return project_view(project), "open -> closed"

        return self._change(actor, "project-close", work, project=slug, target=f"project:{slug}")

    def reopen_project(self, actor: Actor, slug: str) -> ProjectView:
        """Reopen a closed project. A published project stays published: its files went out."""

        def work(s: Session) -> tuple[ProjectView, str]:
            project = get_project(s, slug)
            if project.status != ProjectStatus.CLOSED:
                raise InvalidTransition(
                    f"Project {slug} is {project.status}; only a closed project can be reopened"
                )
            project.status, project.closed_at = str(ProjectStatus.OPEN), None
            return project_view(project), "closed -> open"

        return self._change(actor, "project-reopen", work, project=slug, target=f"project:{slug}")

    def set_project_currency(self, actor: Actor, slug: str, currency: str) -> ProjectView:
        """Set what the project's costs are in (see :data:`~exporthub.validation.CURRENCIES`). Raises
        :class:`InvalidValue`, :class:`NotFound` or :class:`PermissionDenied`."""

        def work(s: Session) -> tuple[ProjectView, str]:
            code, project = validate_currency(currency), get_project(s, slug)
            old, project.currency = project.currency, code
            return project_view(project), f"currency {old} -> {code}"

        return self._change(actor, "project-currency", work, project=slug, target=f"project:{slug}")

    # ------------------------------------------------------------------ users
    def list_users(self, actor: Actor) -> list[UserView]:
        """Every user with their project roles, by username."""

        def work(s: Session) -> list[UserView]:
            roles: dict[int, dict[str, str]] = {}
            rows = s.execute(
                select(Membership.user_id, Project.slug, Membership.role)
                .join(Project, Project.id == Membership.project_id)
                .order_by(Project.slug)
            )
            for user_id, slug, role in rows:
                roles.setdefault(user_id, {})[slug] = role
            return [user_view(u, roles.get(u.id)) for u in s.scalars(select(User).order_by(User.username))]

        return self._read(actor, work)

    def get_user(self, actor: Actor, username: str) -> UserView:
        """One user with their roles. Raises :class:`NotFound`."""
        for user in self.list_users(actor):
            if user.username == username:
                return user
        raise NotFound(f"Unknown user: {username}")

    def create_user(
        self,
        actor: Actor,
        username: str,
        *,
        password: str | None,
        display_name: str | None = None,
        email: str | None = None,
        admin: bool = False,
        hourly_rate: float = 0.0,
    ) -> UserView:
        """Create an active user. ``password=None`` makes an account that cannot log in (field staff).

        Raises :class:`InvalidValue`, :class:`AlreadyExists` or :class:`PermissionDenied`.
        """

        def work(s: Session) -> tuple[UserView, str]:
            validate_username(username)
            if password is not None:
                validate_password(password)
            elif admin:
                raise InvalidValue("A global admin must be able to log in: give a password")
            if email:
                validate_email(email)
            rate = validate_hourly_rate(hourly_rate)
            # Usernames are matched exactly at login; refusing case variants avoids "Ann" next to "ann".
            if s.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None:
                raise AlreadyExists(f"A user named {username!r} exists already")
            user = User(
                username=username,
                display_name=(display_name or "").strip() or username,
                email=email or None,
                password_hash=hash_password(password) if password else None,
                active=True,
                is_admin=admin,
                hourly_rate=rate,
                created_at=utcnow(),
            )
            s.add(user)
            s.flush()
            kind = "global admin" if admin else ("login user" if password else "cannot log in")
            return user_view(user), kind

        return self._change(
            actor,
            "user-add",
            work,
            target=f"user:{username}",
            duplicate=f"A user named {username!r} exists already",
        )

    def set_password(self, actor: Actor, username: str, password: str) -> UserView:
        """Set (or reset) a password; also clears a login lock-out. An account without a password
        gains the ability to log in."""

        def work(s: Session) -> tuple[UserView, str | None]:
            validate_password(password)
            user = get_user(s, username)
            user.password_hash = hash_password(password)
            lockout.clear(s, username)
            # Every session opened with the old password ends now, on every replica.
            ended = sessions.end_all(s, user.id, sessions.EndReason.PASSWORD_CHANGED)
            return user_view(user), f"{ended} session(s) ended" if ended else None

        return self._change(actor, "user-password", work, target=f"user:{username}")

    def set_hourly_rate(self, actor: Actor, username: str, rate: float) -> UserView:
        """Set a user's hourly rate (used by the users export's labour figures)."""

        def work(s: Session) -> tuple[UserView, str | None]:
            value = validate_hourly_rate(rate)
            user = get_user(s, username)
            before = user.hourly_rate
            user.hourly_rate = value
            return user_view(user), f"{before} -> {value}"

        return self._change(actor, "user-rate", work, target=f"user:{username}")

    def set_active(self, actor: Actor, username: str, active: bool) -> UserView:
        """Activate or deactivate an account. A deactivated account holds no permission, at once.

        Refused for a deleted account, for the actor's own account, for the last active global admin,
        and when nothing would change.
        """
        action = "user-activate" if active else "user-deactivate"

        def work(s: Session) -> tuple[UserView, str | None]:
            user = get_user(s, username)
            if user.deleted_at is not None:
                raise InvalidTransition(f"User {username} was deleted")
            if user.active == active:
                raise InvalidTransition(f"User {username} is already {'active' if active else 'deactivated'}")
            if not active:
                if not isinstance(actor, SystemActor) and actor == username:
                    raise InvalidTransition("You cannot deactivate your own account")
                if user.is_admin and _active_admins(s) <= 1:
                    raise InvalidTransition(f"User {username} is the last active global admin")
            user.active = active
            if active:
                return user_view(user), None
            # Sessions and API tokens end for good: reactivating the account does not revive them.
            ended = sessions.end_all(s, user.id, sessions.EndReason.DISABLED)
            revoked = rowcount(s.execute(update(ApiToken)
                                         .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                         .values(revoked_at=utcnow())))
            return user_view(user), f"{ended} session(s) ended, {revoked} API token(s) revoked"

        return self._change(actor, action, work, target=f"user:{username}")

    # ------------------------------------------------------------------ sessions
    def live_sessions(self, actor: Actor, settings: Settings) -> list[sessions.SessionInfo]:
        """Every live browser session (not ended, not idle, not too old), newest activity first."""
        return self._read(actor, lambda s: sessions.live(s, settings))

    def end_sessions(self, actor: Actor, username: str) -> int:
        """End every live session of ``username`` at once (their open tabs show the login page on their
        next refresh). Returns how many ended; one ``sessions-end`` audit event."""

        def work(s: Session) -> tuple[int, str]:
            user = get_user(s, username)
            ended = sessions.end_all(s, user.id, sessions.EndReason.ENDED_BY_ADMIN)
            return ended, f"{ended} session(s) ended"

        return self._change(actor, "sessions-end", work, target=f"user:{username}")

    # ------------------------------------------------------------------ memberships
    def set_membership(self, actor: Actor, username: str, project_slug: str, role: str) -> UserView:
        """Grant ``role`` on a project, replacing any role the user had there (idempotent).

        Raises :class:`InvalidValue` for an unknown role, :class:`NotFound`, :class:`InvalidTransition`
        for a deleted user, or :class:`PermissionDenied`."""

        def work(s: Session) -> tuple[UserView, str]:
            validate_role(role)
            user = get_user(s, username)
            project = get_project(s, project_slug)
            if user.deleted_at is not None:
                raise InvalidTransition(f"User {username} was deleted")
            member = s.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.project_id == project.id)
            )
            before = member.role if member else None
            if member is None:
                s.add(Membership(user_id=user.id, project_id=project.id, role=role))
            else:
                member.role = role  # setting the same role again is a harmless no-op, so scripts can re-run
            s.flush()
            change = f"{role} (unchanged)" if before == role else f"{before or 'none'} -> {role}"
            return user_view(user, _roles_of(s, user)), change

        return self._change(actor, "member-set", work, project=project_slug, target=f"user:{username}")

    def remove_membership(self, actor: Actor, username: str, project_slug: str) -> UserView:
        """Revoke a user's role on a project. Raises :class:`NotFound` when they have none there."""

        def work(s: Session) -> tuple[UserView, str]:
            user = get_user(s, username)
            project = get_project(s, project_slug)
            member = s.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.project_id == project.id)
            )
            if member is None:
                raise NotFound(f"{username} has no role on {project_slug}")
            role = member.role
            s.delete(member)
            s.flush()
            return user_view(user, _roles_of(s, user)), f"{role} -> none"

        return self._change(actor, "member-remove", work, project=project_slug, target=f"user:{username}")

    # ------------------------------------------------------------------ audit trail
    def audit_trail(
        self,
        actor: Actor,
        *,
        user: str | None = None,
        action: str | None = None,
        project: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """Audit events, newest first, filtered by acting user, action, project and time [since, until)."""

        def work(s: Session) -> list[AuditEntry]:
            events = audit.query(s, actor=user, action=action, project=project, since=since, until=until, limit=limit)
            return [AuditEntry.of(e) for e in events]

        return self._read(actor, work)

    def audit_facets(self, actor: Actor) -> dict[str, list[str]]:
        """The distinct actors, actions and projects in the audit trail (for filter pickers)."""
        return self._read(actor, audit.facets)


# ---------------------------------------------------------------------- helpers


def _active_admins(s: Session) -> int:
    live_admin = (User.is_admin.is_(True), User.active.is_(True), User.deleted_at.is_(None))
    return int(s.scalar(select(func.count()).select_from(User).where(*live_admin)) or 0)


def _roles_of(s: Session, user: User) -> dict[str, str]:
    rows = s.execute(
        select(Project.slug, Membership.role)
        .join(Project, Project.id == Membership.project_id)
        .where(Membership.user_id == user.id)
        .order_by(Project.slug)
    )
    return {slug: role for slug, role in rows}
