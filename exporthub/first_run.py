"""First run outside the demo: the first global admin of a new instance."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exporthub.account_views import UserView, user_view
from exporthub.accounts import AccountService
from exporthub.authorization import SystemActor
from exporthub.db import Database
from exporthub.errors import InvalidTransition
from exporthub.models import User, utcnow
from exporthub.passwords import hash_password
from exporthub.validation import validate_password, validate_username


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
        return user_view(user), "first global admin"

    return service._change(
        actor, "init", work, target=f"user:{username}", duplicate=f"A user named {username!r} exists already"
    )
