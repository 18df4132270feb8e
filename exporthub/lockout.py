"""Login throttling that holds under concurrency, on SQLite and PostgreSQL.

Each attempt is *admitted* before its password is checked: in one write transaction that holds the
username's row locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` takes the
database's write lock), the lock is checked and the attempt counted as *pending*. Failures plus
pending attempts never exceed ``settings.login_max_failures``, so N parallel guesses past the limit
are refused without argon2 ever seeing their passwords. An admitted attempt gets the true answer for
its password; a refused one gets :class:`LoginThrottled`, the same answer for every attempt during a
lockout, right password or wrong. The failure that reaches the limit sets the lock. A pending count
lapses after :data:`PENDING_SECONDS`, so a process killed mid-check cannot shrink the budget for good.

The row is created with ``INSERT … ON CONFLICT DO NOTHING`` before it is locked, so simultaneous
first attempts never raise a unique violation. Every attempt writes exactly one ``login`` audit
event: a refused one when it is refused here, an admitted one when :func:`succeeded` or
:func:`failed` records its outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exporthub import audit
from exporthub.db import Database
from exporthub.errors import LoginThrottled
from exporthub.models import LoginAttempt
from exporthub.settings import Settings

LOCKED_DETAIL = "locked: too many failed attempts"


def _row(s: Session, name: str) -> LoginAttempt:
    """The username's counter row, created if missing, locked for this transaction."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(LoginAttempt)
        .values(username=name, failures=0, locked_until=None, pending=0, pending_until=None)
        .on_conflict_do_nothing(index_elements=["username"])
    )
    row = s.scalar(select(LoginAttempt).where(LoginAttempt.username == name).with_for_update())
    assert row is not None  # inserted above or by a concurrent attempt that committed
    return row


PENDING_SECONDS = 60  # argon2 takes well under a second; an admission older than this was abandoned


def _seconds_left(row: LoginAttempt, now: datetime) -> int:
    if row.locked_until is None or row.locked_until <= now:
        return 0
    return max(1, int((row.locked_until - now).total_seconds()))


def admit(db: Database, settings: Settings, name: str, now: datetime) -> None:
    """Admit an attempt for ``name`` before its password is checked.

    Raises :class:`LoginThrottled` (after writing the attempt's one audit event) while the username
    is locked, or while the failures and the attempts still being checked already reach the limit.
    """
    with db.write() as s:
        row = _row(s, name)
        if row.locked_until is not None and row.locked_until <= now:
            row.locked_until, row.failures = None, 0  # the lock ran out: count afresh
        if row.pending_until is None or row.pending_until <= now:
            row.pending = 0
        left = _seconds_left(row, now)
        if not left and (row.failures or 0) + (row.pending or 0) >= settings.login_max_failures:
            left = settings.login_lockout_seconds  # the budget is taken by attempts being checked
        if left:
            audit.record(s, action="login", outcome=audit.Outcome.REFUSED, actor=name or None,
                         detail=LOCKED_DETAIL)
        else:
            row.pending = (row.pending or 0) + 1
            row.pending_until = now + timedelta(seconds=PENDING_SECONDS)
    if left:
        raise LoginThrottled(left)


def succeeded(db: Database, name: str, user_id: int) -> None:
    """An admitted attempt had the right password: forget the count, record the login."""
    with db.write() as s:
        s.execute(delete(LoginAttempt).where(LoginAttempt.username == name))
        audit.record(s, action="login", actor=name, target=f"user:{user_id}")


def failed(db: Database, settings: Settings, name: str, now: datetime, reason: str) -> None:
    """An admitted attempt failed (``reason`` goes to the audit trail): count the failure.

    Raises :class:`LoginThrottled` when this failure reaches the limit (which sets the lock), or when
    a lock is in place already, so that every answer during a lockout is the same.
    """
    with db.write() as s:
        row = _row(s, name)
        row.pending = max(0, (row.pending or 0) - 1)
        row.failures = (row.failures or 0) + 1
        left = _seconds_left(row, now)
        if not left and row.failures >= settings.login_max_failures:
            row.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            left = settings.login_lockout_seconds
            reason += f"; locked for {settings.login_lockout_seconds} s"
        audit.record(s, action="login", outcome=audit.Outcome.REFUSED, actor=name or None, detail=reason)
    if left:
        raise LoginThrottled(left)


def clear(s: Session, name: str) -> None:
    """Lift a lock (an admin set a new password), in the caller's transaction."""
    s.execute(delete(LoginAttempt).where(LoginAttempt.username == name))
