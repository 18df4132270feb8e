"""Periodic work that runs once per period across every process (retention, housekeeping, …).

Every worker (and the web app) asks on its own schedule; a run starts only for the process whose
conditional UPDATE of the task's ``periodic_runs`` row wins, judged on the database's clock. No lock is
held while the task runs, and a process that dies mid-run costs one period, not the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from exporthub.db import Database, rowcount
from exporthub.dbclock import db_now
from exporthub.models import PeriodicRun

T = TypeVar("T")


def _ensure_row(db: Database, name: str) -> None:
    insert = sqlite_insert if db.is_sqlite else pg_insert
    with db.write() as s:
        s.execute(insert(PeriodicRun).values(name=name, runs=0).on_conflict_do_nothing(index_elements=["name"]))


def claim_run(db: Database, name: str, period_seconds: float, holder: str) -> bool:
    """Start a run of ``name`` if none started within the last ``period_seconds``: won?"""
    _ensure_row(db, name)
    with db.write() as s:
        result = s.execute(
            update(PeriodicRun)
            .where(PeriodicRun.name == name,
                   PeriodicRun.started_at.is_(None) | (PeriodicRun.started_at <= db_now(-period_seconds)))
            .values(started_at=db_now(), holder=holder, runs=PeriodicRun.runs + 1)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1


def _finished(db: Database, name: str, holder: str) -> None:
    with db.write() as s:
        s.execute(update(PeriodicRun).where(PeriodicRun.name == name, PeriodicRun.holder == holder)
                  .values(finished_at=db_now()).execution_options(synchronize_session=False))


def run_if_due(db: Database, name: str, period_seconds: float, holder: str, task: Callable[[], T]) -> T | None:
    """``task()`` if this process won the period's run of ``name``; ``None`` when another process has it."""
    if not claim_run(db, name, period_seconds, holder):
        return None
    try:
        return task()
    finally:
        _finished(db, name, holder)
