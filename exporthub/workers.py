"""The worker fleet as the database sees it: each worker process reports itself here.

A worker registers when it starts, reports its state on every housekeeping round and says ``stopped``
when it exits. Liveness is judged on the database's clock: a worker silent for longer than
:func:`live_window` is gone, whatever its last state said (a SIGKILL leaves no goodbye).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from exporthub.db import Database, rowcount
from exporthub.dbclock import db_now
from exporthub.models import Job, Worker
from exporthub.settings import Settings
from exporthub.states import JobStatus

RUNNING, DRAINING, STOPPED, UNHEALTHY = "running", "draining", "stopped", "unhealthy"
FORGET_AFTER_SECONDS = 24 * 3600  # rows of workers gone this long are deleted by housekeeping


def version() -> str:
    try:
        return metadata.version("exporthub")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a tree without install
        return "dev"


def live_window(settings: Settings) -> float:
    """Seconds of silence after which a worker counts as gone: three housekeeping rounds, at least 15 s."""
    return max(3 * settings.reaper_interval_seconds, 15.0)


@dataclass(frozen=True)
class WorkerView:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime
    state: str
    detail: str | None
    threads: int
    live: bool
    running_jobs: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "version": self.version,
            "started_at": self.started_at.isoformat(), "last_seen_at": self.last_seen_at.isoformat(),
            "state": self.state if self.live else "gone", "detail": self.detail, "threads": self.threads,
            "running_jobs": list(self.running_jobs),
        }


def register(db: Database, worker_id: str, *, threads: int) -> None:
    """Say this worker started (again, if the id was seen before)."""
    insert = sqlite_insert if db.is_sqlite else pg_insert
    values = {"host": socket.gethostname(), "pid": os.getpid(), "version": version(), "started_at": db_now(),
              "last_seen_at": db_now(), "state": RUNNING, "detail": None, "threads": threads}
    with db.write() as s:
        s.execute(insert(Worker).values(id=worker_id, **values)
                  .on_conflict_do_update(index_elements=["id"], set_=values))


def report(db: Database, worker_id: str, state: str, detail: str | None = None) -> None:
    """This worker's heartbeat, with its state and, when unhealthy, why."""
    with db.write() as s:
        s.execute(update(Worker).where(Worker.id == worker_id)
                  .values(state=state, detail=detail, last_seen_at=db_now())
                  .execution_options(synchronize_session=False))


def forget_gone(db: Database) -> int:
    """Delete rows of workers not seen for a day (their history is in the jobs they ran)."""
    with db.write() as s:
        return rowcount(s.execute(delete(Worker).where(Worker.last_seen_at < db_now(-FORGET_AFTER_SECONDS))))


def list_workers(db: Database, settings: Settings, *, include_gone: bool = False) -> list[WorkerView]:
    """Workers newest first, each with the jobs it is running; gone ones only with ``include_gone``."""
    with db.read() as s:
        threshold = s.scalar(select(db_now(-live_window(settings))))
        running: dict[str, list[int]] = {}
        for job_id, worker_id in s.execute(
            select(Job.id, Job.worker_id).where(Job.status == JobStatus.RUNNING).order_by(Job.id)
        ):
            running.setdefault(worker_id or "", []).append(job_id)
        views = [
            WorkerView(w.id, w.host, w.pid, w.version, w.started_at, w.last_seen_at, w.state, w.detail, w.threads,
                       live=w.state != STOPPED and w.last_seen_at >= _aware(threshold),
                       running_jobs=tuple(running.get(w.id, ())))
            for w in s.scalars(select(Worker).order_by(Worker.started_at.desc()))
        ]
    return [v for v in views if include_gone or v.live]


def live_count(db: Database, settings: Settings) -> int:
    """Workers that reported within the live window and are taking jobs (running, not draining)."""
    return sum(1 for w in list_workers(db, settings) if w.state == RUNNING)


@dataclass(frozen=True)
class QueueStats:
    ready: int
    oldest_ready_seconds: float | None


def queue_stats(db: Database) -> QueueStats:
    """Jobs waiting for a worker, and how long the oldest has waited (database clock)."""
    with db.read() as s:
        count, oldest, now = s.execute(
            select(func.count(), func.min(Job.created_at), db_now()).where(Job.status == JobStatus.READY)
        ).one()
    age = None if oldest is None else max(0.0, (_naive(now) - _naive(oldest)).total_seconds())
    return QueueStats(int(count), age)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FleetOverview:
    workers: list[WorkerView]
    queue: QueueStats


def overview(db: Database, settings: Settings, actor: str) -> FleetOverview:
    """The workers (gone ones too) and the queue, for a global admin. Raises ``PermissionDenied``."""
    from exporthub.accounts import is_global_admin
    from exporthub.errors import PermissionDenied

    if not is_global_admin(db, actor):
        raise PermissionDenied()
    return FleetOverview(list_workers(db, settings, include_gone=True), queue_stats(db))
