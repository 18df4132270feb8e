"""Who acts, and whether they may change accounts: the CLI's system actor or an active global admin.

Every change to projects, users and memberships runs through :func:`audited_change`: one write
transaction, one audit event, and refusals audited too.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporthub import audit
from exporthub.access import is_usable
from exporthub.db import Database
from exporthub.errors import AlreadyExists, ExporthubError, PermissionDenied
from exporthub.models import User

T = TypeVar("T")


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


def is_global_admin(db: Database, username: str | None) -> bool:
    """Whether ``username`` is an active global admin (the admin page shows itself only to them)."""
    if not username:
        return False
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        return bool(user and is_usable(user) and user.is_admin)
