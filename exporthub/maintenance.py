"""Housekeeping that keeps the job table honest: the reaper and the queue sweep.

Run at worker start, periodically on every worker, and from the web app, so that a killed sole
worker never leaves a job ``running`` with nobody to notice.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from exporthub import audit
from exporthub.db import Database
from exporthub.dispatch import Dispatcher
from exporthub.jobs import finish, job_folder, settle_parent
from exporthub.models import Job, JobLog, utcnow
from exporthub.runner import after_job_finished
from exporthub.settings import Settings
from exporthub.states import JobStatus, LogLevel

log = logging.getLogger(__name__)

WORKER_LOST = "worker lost"
# A ready job nobody claimed for this long is handed to the queue again (the queue may have lost it).
REQUEUE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class TickResult:
    reaped: list[int]
    promoted: list[int]
    requeued: list[int]


def reap_stale(db: Database, settings: Settings, dispatcher: Dispatcher) -> list[int]:
    """Fail running jobs whose heartbeat is older than the lease, with "worker lost"."""
    cutoff = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    reaped: list[int] = []
    with db.write() as s:
        stale = s.scalars(
            select(Job).where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff)
        ).all()
        for job in stale:
            finish(s, job, JobStatus.FAILED, error=WORKER_LOST)
            s.add(JobLog(job_id=job.id, time=utcnow(), level=LogLevel.ERROR,
                         message=f"Worker {job.worker_id} stopped sending heartbeats; job failed: {WORKER_LOST}"))
            audit.record(s, action="reap", actor=None, project=job.project.slug, target=f"job:{job.id}",
                         detail=WORKER_LOST)
            # A reaped job never completed, so nothing in its folder was recorded: besides the private
            # work folder that includes an output a killed worker renamed into place just before
            # it could record it. Delete the whole folder, so no partial file stays visible.
            shutil.rmtree(job_folder(settings, job), ignore_errors=True)
            reaped.append(job.id)
    for job_id in reaped:
        log.warning("job %s: %s", job_id, WORKER_LOST)
        after_job_finished(db, job_id, dispatcher)
    return reaped


def promote_due(db: Database, dispatcher: Dispatcher) -> list[int]:
    """Scheduled jobs whose time has come become ready and are queued (a backstop for the queue's eta)."""
    now = utcnow()
    with db.write() as s:
        due = s.scalars(
            select(Job).where(Job.status == JobStatus.WAITING, Job.run_at.is_not(None), Job.run_at <= now)
        ).all()
        ids = []
        for job in due:
            if s.scalar(select(Job.id).where(Job.parent_id == job.id).limit(1)) is not None:
                wake = settle_parent(s, job)  # a parent also needs its children done
                if wake is not None:
                    ids.append(wake)
                continue
            job.status = str(JobStatus.READY)
            ids.append(job.id)
    for job_id in ids:
        dispatcher.enqueue(job_id)
    return ids


def settle_stranded_parents(db: Database, dispatcher: Dispatcher) -> list[int]:
    """Parents still waiting although none of their children is active (a worker died between a child's
    end and waking its parent): fail them or hand them to the queue, as their children decide."""
    woken: list[int] = []
    with db.write() as s:
        child = aliased(Job)
        parents = s.scalars(
            select(Job).where(Job.status == JobStatus.WAITING, select(child.id).where(child.parent_id == Job.id).exists())
        ).all()
        for parent in parents:
            wake = settle_parent(s, parent)
            if wake is not None:
                woken.append(wake)
    for job_id in woken:
        dispatcher.enqueue(job_id)
    return woken


def requeue_stale_ready(db: Database, dispatcher: Dispatcher) -> list[int]:
    """Hand ready jobs that nobody claimed back to the queue (the queue may have lost them).

    Each job is handed back at most once per ``REQUEUE_AFTER`` across all processes: the conditional
    update on ``requeued_at`` lets one process win. Claiming is atomic, so a duplicate is harmless.
    """
    now = utcnow()
    cutoff = now - REQUEUE_AFTER
    with db.write() as s:
        ids = list(
            s.scalars(
                update(Job)
                .where(
                    Job.status == JobStatus.READY, Job.created_at < cutoff,
                    (Job.run_at.is_(None)) | (Job.run_at < cutoff),
                    (Job.requeued_at.is_(None)) | (Job.requeued_at < cutoff),
                )
                .values(requeued_at=now)
                .returning(Job.id)
            )
        )
    for job_id in ids:
        dispatcher.enqueue(job_id)
    return ids


def tick(db: Database, settings: Settings, dispatcher: Dispatcher) -> TickResult:
    """One round of housekeeping."""
    return TickResult(
        reaped=reap_stale(db, settings, dispatcher),
        promoted=promote_due(db, dispatcher) + settle_stranded_parents(db, dispatcher),
        requeued=requeue_stale_ready(db, dispatcher),
    )


_last_tick = float("-inf")
_tick_lock = threading.Lock()


def tick_if_due(
    db: Database, settings: Settings, dispatcher: Dispatcher, *, now: float | None = None
) -> TickResult | None:
    """:func:`tick`, at most once per ``settings.reaper_interval_seconds`` in this process.

    For the web app, which calls it on every script run: when no worker is left to notice, a
    killed sole worker's job still ends "worker lost" while anyone has the app open. Costs a clock
    read when not due; concurrent callers never run two ticks at once (the losers return ``None``
    at once). Returns ``None`` when it did not run. Errors are logged, never raised to the page.
    """
    global _last_tick
    now = time.monotonic() if now is None else now
    if now - _last_tick < settings.reaper_interval_seconds or not _tick_lock.acquire(blocking=False):
        return None
    try:
        if now - _last_tick < settings.reaper_interval_seconds:  # another caller just ran it
            return None
        _last_tick = now
        return tick(db, settings, dispatcher)
    except Exception:  # housekeeping must never break a page; the next due call retries
        log.exception("housekeeping from the web app failed")
        return None
    finally:
        _tick_lock.release()
