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

import functools
import getpass
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, TypeVar
from zoneinfo import available_timezones

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporthub import audit, lockout, sessions
from exporthub.access import get_project, get_user, is_usable
from exporthub.db import Database, rowcount
from exporthub.errors import AlreadyExists, ExporthubError, InvalidTransition, InvalidValue, NotFound, PermissionDenied
from exporthub.models import ApiToken, Membership, Project, User, utcnow
from exporthub.passwords import hash_password
from exporthub.permissions import ROLES, Permission
from exporthub.settings import Settings
from exporthub.states import ProjectStatus

T = TypeVar("T")

# Slugs name folders (lake/<slug>, files/<slug>) and appear in URLs: lower-case words joined by "-".
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 64
# No ":" in usernames, so "cli:<name>" in the audit trail can never be a user.
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class SystemActor:
    """The operator at the server's command line; recorded as ``cli:<label>`` in the audit trail."""

    label: str

    @property
    def name(self) -> str:
        return f"cli:{self.label}"


Actor = str | SystemActor


def cli_actor() -> SystemActor:
    """The system actor for this process: the operating-system user who runs the command."""
    try:
        label = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        label = "unknown"
    return SystemActor(label[:60])


def actor_name(actor: Actor) -> str:
    return actor.name if isinstance(actor, SystemActor) else actor


def generate_password() -> str:
    """A random temporary password (16 URL-safe characters) for the admin page to hand out."""
    return secrets.token_urlsafe(12)


def role_table() -> dict[str, tuple[str, ...]]:
    """Each built-in role with its permissions, in the order of :class:`Permission`."""
    order = list(Permission)
    return {role: tuple(str(p) for p in order if p in perms) for role, perms in ROLES.items()}


# ---------------------------------------------------------------------- views


@dataclass(frozen=True)
class ProjectView:
    slug: str
    name: str
    timezone: str
    status: str
    created_at: datetime
    closed_at: datetime | None
    published_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat().replace("+00:00", "Z")

        return {
            "slug": self.slug,
            "name": self.name,
            "timezone": self.timezone,
            "status": self.status,
            "created": iso(self.created_at),
            "closed": iso(self.closed_at),
            "published": iso(self.published_at),
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
            "name": self.display_name,
            "email": self.email,
            "admin": self.is_admin,
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


def _project_view(p: Project) -> ProjectView:
    return ProjectView(
        slug=p.slug,
        name=p.name,
        timezone=p.timezone,
        status=p.status,
        created_at=p.created_at,
        closed_at=p.closed_at,
        published_at=p.published_at,
    )


def _user_view(u: User, roles: dict[str, str] | None = None) -> UserView:
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


# ---------------------------------------------------------------------- validation


def validate_slug(slug: str) -> str:
    if not slug or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise InvalidValue(
            f"Invalid project slug {slug!r}: use lower-case letters, digits and single hyphens "
            f"(e.g. 'warehouse-2026'), at most {SLUG_MAX} characters"
        )
    return slug


@functools.cache
def timezone_names() -> frozenset[str]:
    """The IANA zone names (from the ``tzdata`` package's list; the system's as a fallback).

    Not the files on disk: a system zoneinfo folder also holds ``localtime``, ``posixrules`` and the
    like, which name no place.
    """
    try:
        names = set(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
    except (ModuleNotFoundError, FileNotFoundError):
        names = set(available_timezones())
    return frozenset(names - {"Factory", "localtime", "posixrules"})


def validate_timezone(tz: str) -> str:
    if tz not in timezone_names():
        raise InvalidValue(f"Unknown timezone {tz!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'")
    return tz


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username or ""):
        raise InvalidValue(
            f"Invalid username {username!r}: start with a letter or digit, then letters, digits, '.', '_', "
            "'@' or '-', at most 64 characters"
        )
    return username


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise InvalidValue(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


MAX_HOURLY_RATE = 100_000.0


def validate_hourly_rate(rate: float) -> float:
    """A rate per hour in the project's currency: a finite number from 0 up to a sane maximum."""
    if not (0.0 <= rate <= MAX_HOURLY_RATE):  # also refuses NaN
        raise InvalidValue(f"The hourly rate must be between 0 and {MAX_HOURLY_RATE:,.0f}, got {rate}")
    return round(float(rate), 4)


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValue(f"Unknown role {role!r}; the roles are: {', '.join(ROLES)}")
    return role


def authorize(s: Session, actor: Actor) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` is the system or an active global admin."""
    if isinstance(actor, SystemActor):
        return
    user = s.scalar(select(User).where(User.username == actor))
    if user is None or not is_usable(user) or not user.is_admin:
        raise PermissionDenied()


def audited_change(
    db: Database,
    actor: Actor,
    action: str,
    work: Callable[[Session], tuple[T, str | None]],
    *,
    project: str | None = None,
    target: str | None = None,
    duplicate: str | None = None,
) -> T:
    """Run ``work`` in one write transaction with one audit event; audit and re-raise refusals.

    ``work`` returns (result, audit detail). ``duplicate`` is the message for a unique-index
    violation (two admins creating the same name at once). The actor must be the system or an active
    global admin.
    """
    try:
        try:
            with db.write() as s:
                authorize(s, actor)
                result, detail = work(s)
                audit.record(s, action=action, actor=actor_name(actor), project=project, target=target,
                             detail=detail)
                return result
        except IntegrityError:
            raise AlreadyExists(duplicate or "It exists already") from None
    except ExporthubError as exc:
        raise audit.record_refusal(db, exc, action=action, actor=actor_name(actor), project=project,
                                   target=target) from None


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
            actor, lambda s: [_project_view(p) for p in s.scalars(select(Project).order_by(Project.slug))]
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
            project = Project(
                slug=slug,
                name=name.strip(),
                timezone=timezone,
                status=str(ProjectStatus.OPEN),
                created_at=utcnow(),
            )
            s.add(project)
            s.flush()
            return _project_view(project), f"{name.strip()} ({timezone})"

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
            return _project_view(project), "open -> closed"

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
            return _project_view(project), "closed -> open"

        return self._change(actor, "project-reopen", work, project=slug, target=f"project:{slug}")

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
            return [_user_view(u, roles.get(u.id)) for u in s.scalars(select(User).order_by(User.username))]

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
            if email and not EMAIL_RE.match(email):
                raise InvalidValue(f"Invalid email address {email!r}")
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
            return _user_view(user), kind

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
            return _user_view(user), f"{ended} session(s) ended" if ended else None

        return self._change(actor, "user-password", work, target=f"user:{username}")

    def set_hourly_rate(self, actor: Actor, username: str, rate: float) -> UserView:
        """Set a user's hourly rate (used by the users export's labour figures)."""

        def work(s: Session) -> tuple[UserView, str | None]:
            value = validate_hourly_rate(rate)
            user = get_user(s, username)
            before = user.hourly_rate
            user.hourly_rate = value
            return _user_view(user), f"{before} -> {value}"

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
                return _user_view(user), None
            # Sessions and API tokens end for good: reactivating the account does not revive them.
            ended = sessions.end_all(s, user.id, sessions.EndReason.DISABLED)
            revoked = rowcount(s.execute(update(ApiToken)
                                         .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                         .values(revoked_at=utcnow())))
            return _user_view(user), f"{ended} session(s) ended, {revoked} API token(s) revoked"

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
            return _user_view(user, _roles_of(s, user)), change

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
            return _user_view(user, _roles_of(s, user)), f"{role} -> none"

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
            events = audit.query(
                s, actor=user, action=action, project=project, since=since, until=until, limit=limit
            )
            return [
                AuditEntry(
                    time=e.time,
                    actor=e.actor,
                    project=e.project,
                    action=e.action,
                    target=e.target,
                    outcome=e.outcome,
                    detail=e.detail,
                )
                for e in events
            ]

        return self._read(actor, work)

    def audit_facets(self, actor: Actor) -> dict[str, list[str]]:
        """The distinct actors, actions and projects in the audit trail (for filter pickers)."""
        from exporthub.models import AuditEvent

        def work(s: Session) -> dict[str, list[str]]:
            def distinct(col: Any) -> list[str]:
                return [v for v in s.scalars(select(col).distinct().order_by(col)) if v]

            return {
                "actors": distinct(AuditEvent.actor),
                "actions": distinct(AuditEvent.action),
                "projects": distinct(AuditEvent.project),
            }

        return self._read(actor, work)


def initialize(
    db: Database, actor: SystemActor, username: str, password: str, display_name: str | None = None
) -> UserView:
    """First run outside the demo: create the first global admin (the schema is migrated by
    :func:`exporthub.db.get_database`). Refused once any global admin exists."""
    service = AccountService(db)

    def work(s: Session) -> tuple[UserView, str]:
        if s.scalar(select(func.count()).select_from(User).where(User.is_admin.is_(True))):
            raise InvalidTransition(
                "This instance is initialised already (a global admin exists); "
                "use 'exporthub users add' to add more people"
            )
        validate_username(username)
        validate_password(password)
        user = User(
            username=username,
            display_name=(display_name or "").strip() or username,
            email=None,
            password_hash=hash_password(password),
            active=True,
            is_admin=True,
            hourly_rate=0.0,
            created_at=utcnow(),
        )
        s.add(user)
        s.flush()
        return _user_view(user), "first global admin"

    return service._change(
        actor, "init", work, target=f"user:{username}", duplicate=f"A user named {username!r} exists already"
    )


# ---------------------------------------------------------------------- helpers


def _active_admins(s: Session) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.is_admin.is_(True), User.active.is_(True), User.deleted_at.is_(None))
        )
        or 0
    )


def _roles_of(s: Session, user: User) -> dict[str, str]:
    rows = s.execute(
        select(Project.slug, Membership.role)
        .join(Project, Project.id == Membership.project_id)
        .where(Membership.user_id == user.id)
        .order_by(Project.slug)
    )
    return {slug: role for slug, role in rows}


def is_global_admin(db: Database, username: str | None) -> bool:
    """Whether ``username`` is an active global admin (the admin page shows itself only to them)."""
    if not username:
        return False
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        return bool(user and is_usable(user) and user.is_admin)
