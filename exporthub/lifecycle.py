"""The one owner of a job's status: every change of ``jobs.status`` is made here.

Each change is a single conditional UPDATE that names the state it expects (and, for a running job,
the worker and attempt that hold it), enforces :data:`exporthub.states.TRANSITIONS` and reports
whether it won. The loser changes nothing: under PostgreSQL's read-committed isolation two processes
may both *read* a job as stale or due, but only one UPDATE matches. Times come from the database's
clock (:class:`~exporthub.dbclock.db_now`). Nothing here deletes a file: callers delete files only
after the commit that decided it.

The runner only runs exporters, housekeeping only finds candidates; both ask this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from exporthub import audit
from exporthub.db import Database, rowcount
from exporthub.dbclock import db_now
from exporthub.models import ExportSession, File, Job, JobLog, Project
from exporthub.states import ACTIVE_STATUSES, TRANSITIONS, JobStatus, LogLevel, ProjectStatus

WORKER_LOST = "worker lost"
_BAD_CHILD = (JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class Lease:
    """Who holds a running job: its id, the worker that claimed it, and which attempt this is."""

    job_id: int
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class StoredFile:
    """An output already in place in the files store, for the ``files`` table."""

    name: str
    content_type: str
    size: int
    sha256: str
    storage_key: str
    mtime_ns: int


@dataclass(frozen=True)
class SessionRecord:
    """An export session to record with a completed job (see ``exporthub.models.ExportSession``)."""

    zone_id: int
    watermark_scan_id: int
    scan_count: int
    snapshot_id: int | None = None  # the scans snapshot it read ("only new since last export" starts there)


@dataclass(frozen=True)
class PublishProject:
    """An effect of a completing job: mark its project published (only if it is still closed)."""


@dataclass
class Outcome:
    """How a run ended, as the runner saw it; :func:`finish` decides whether it stands."""

    status: JobStatus
    error: str | None = None
    message: str | None = None  # the log line that says so
    files: list[StoredFile] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    effects: list[PublishProject] = field(default_factory=list)
    honour_cancel: bool = True  # False once the job passed its point of no return


def _expect(current: JobStatus | Iterable[JobStatus], target: JobStatus) -> list[JobStatus]:
    states = [current] if isinstance(current, JobStatus) else list(current)
    for state in states:
        if target not in TRANSITIONS[state]:
            raise ValueError(f"{state} -> {target} is not a job transition")
    return states


def _transition(s: Session, job_id: int, current: JobStatus | Iterable[JobStatus], target: JobStatus,
                *where: Any, **values: Any) -> bool:
    """``UPDATE jobs SET status = target, … WHERE id = job_id AND status IN current AND where…``: won?"""
    states = _expect(current, target)
    result = s.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(states), *where)
        .values(status=target, **values).execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def log(s: Session, job_id: int, level: LogLevel, message: str) -> None:
    """Add a line to the job's log (on the database's clock, so every host's lines sort together)."""
    s.add(JobLog(job_id=job_id, time=db_now(), level=str(level), message=message))


def _held(lease: Lease) -> list[Any]:
    return [Job.worker_id == lease.worker_id, Job.attempt == lease.attempt]


# ---------------------------------------------------------------------- creating


def insert(s: Session, *, project_id: int, user_id: int, export_type: str, variables: dict[str, Any],
           status: JobStatus, run_at: Any = None, parent_id: int | None = None) -> Job:
    """A new job row (``waiting`` or ``ready``); the partial unique index may refuse it on flush."""
    if status not in (JobStatus.WAITING, JobStatus.READY):
        raise ValueError(f"a job starts waiting or ready, not {status}")
    job = Job(project_id=project_id, export_type=export_type, status=status, progress=0, variables=variables,
              user_id=user_id, parent_id=parent_id, run_at=run_at, cancel_requested=False,
              export_sessions_reset=False, attempt=0, created_at=db_now())
    s.add(job)
    return job


# ---------------------------------------------------------------------- waiting -> ready


def _due() -> Any:
    return (Job.run_at.is_(None)) | (Job.run_at <= db_now())


def promote(s: Session, job_id: int) -> bool:
    """``waiting -> ready`` when the job is due and every child (if any) completed. Won?"""
    child = aliased(Job)
    unfinished_child = exists().where(child.parent_id == Job.id, child.status != JobStatus.COMPLETED)
    return _transition(s, job_id, JobStatus.WAITING, JobStatus.READY, _due(), ~unfinished_child,
                       requeued_at=None)


def due_candidates(s: Session, limit: int = 500) -> list[int]:
    """Waiting jobs whose time has come (parents included: :func:`settle_parent` decides those)."""
    return list(s.scalars(
        select(Job.id).where(Job.status == JobStatus.WAITING, Job.run_at.is_not(None), Job.run_at <= db_now())
        .order_by(Job.id).limit(limit)
    ))


def settle_parent(s: Session, parent_id: int) -> int | None:
    """Decide a waiting parent from its children: a failed or cancelled child fails it (and cancels
    the siblings still active); all completed make it ready when due. Returns the parent's id when it
    became ready (the caller hands it to the queue after commit)."""
    children = list(s.execute(
        select(Job.id, Job.export_type, Job.status, Job.error).where(Job.parent_id == parent_id).order_by(Job.id)
    ))
    if not children:
        return None
    bad = [c for c in children if c.status in _BAD_CHILD]
    if bad:
        first = bad[0]
        reason = f"Child job {first.id} ({first.export_type}) {first.status}"
        if first.error:
            reason += f": {first.error}"
        if _transition(s, parent_id, JobStatus.WAITING, JobStatus.FAILED, finished_at=db_now(), error=reason):
            log(s, parent_id, LogLevel.ERROR, reason)
            for child in children:
                if child.status in ACTIVE_STATUSES:
                    cancel(s, child.id, reason=f"Cancelled because {reason[0].lower()}{reason[1:]}")
        return None
    return parent_id if promote(s, parent_id) else None


# ---------------------------------------------------------------------- ready -> running


def claim(db: Database, job_id: int, worker_id: str) -> Lease | None:
    """``ready -> running`` for this worker, attempt + 1; ``None`` when someone else won (or it was
    cancelled, or it is not ready)."""
    with db.write() as s:
        won = _transition(s, job_id, JobStatus.READY, JobStatus.RUNNING, Job.cancel_requested.is_(False),
                          started_at=db_now(), heartbeat_at=db_now(), worker_id=worker_id,
                          attempt=Job.attempt + 1, progress=0, finished_at=None, error=None)
        if not won:
            return None
        attempt = s.scalar(select(Job.attempt).where(Job.id == job_id))
    return Lease(job_id, worker_id, int(attempt or 1))


def heartbeat(db: Database, lease: Lease) -> bool:
    """Prove the worker is alive; ``False`` when the lease is gone (reaped, or handed back)."""
    with db.write() as s:
        result = s.execute(
            update(Job).where(Job.id == lease.job_id, Job.status == JobStatus.RUNNING, *_held(lease))
            .values(heartbeat_at=db_now()).execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1


def report_progress(db: Database, job_id: int, percent: int) -> None:
    with db.write() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                  .values(progress=percent).execution_options(synchronize_session=False))


# ---------------------------------------------------------------------- running -> finished


def finish(db: Database, lease: Lease, outcome: Outcome) -> JobStatus | None:
    """End a run as ``outcome`` says, in one transaction with its files, export sessions, log line and
    effects. A completion becomes a cancellation when a cancel arrived first (unless the job passed its
    point of no return), and a failure when an effect is refused. Returns the status that stands, or
    ``None`` when the lease was lost (reaped or handed back): then nothing is written and the caller
    discards its files."""
    with db.write() as s:
        status, error, message = outcome.status, outcome.error, outcome.message
        if status is JobStatus.COMPLETED:
            completed, refused = _complete(s, lease, outcome)
            if completed:
                _record_outputs(s, lease.job_id, outcome)
                log(s, lease.job_id, LogLevel.INFO, message or "Completed")
                return JobStatus.COMPLETED
            if refused is not None:
                status, error, message = JobStatus.FAILED, refused, refused
            elif outcome.honour_cancel:
                status, message = JobStatus.CANCELLED, "Cancelled while finishing; its output was deleted"
        won = _transition(s, lease.job_id, JobStatus.RUNNING, status, *_held(lease), finished_at=db_now(),
                          error=error if status is JobStatus.FAILED else None)
        if not won:
            return None
        failed = status is JobStatus.FAILED
        if message is None:
            message = (error or "Failed") if failed else str(status).capitalize()
        log(s, lease.job_id, LogLevel.ERROR if failed else LogLevel.INFO, message)
    return status


def _complete(s: Session, lease: Lease, outcome: Outcome) -> tuple[bool, str | None]:
    """Try ``running -> completed`` with the outcome's effects, all or nothing (a savepoint).

    Returns (completed, the reason an effect was refused)."""
    savepoint = s.begin_nested()
    refused = _apply_effects(s, lease.job_id, outcome.effects)
    if refused is not None:
        savepoint.rollback()
        return False, refused
    guard = [Job.cancel_requested.is_(False)] if outcome.honour_cancel else []
    if _transition(s, lease.job_id, JobStatus.RUNNING, JobStatus.COMPLETED, *_held(lease), *guard,
                   finished_at=db_now(), progress=100):
        savepoint.commit()
        return True, None
    savepoint.rollback()  # lost the lease, or a cancel came first: the effects must not stay
    return False, None


def _record_outputs(s: Session, job_id: int, outcome: Outcome) -> None:
    job = s.get(Job, job_id)
    assert job is not None
    for f in outcome.files:
        s.add(File(job_id=job_id, project_id=job.project_id, export_type=job.export_type, name=f.name,
                   content_type=f.content_type, size=f.size, sha256=f.sha256, storage_key=f.storage_key,
                   mtime_ns=f.mtime_ns, created_at=db_now(), download_count=0))
    for r in outcome.sessions:
        s.add(ExportSession(job_id=job_id, project_id=job.project_id, export_type=job.export_type,
                            zone_id=r.zone_id, watermark_scan_id=r.watermark_scan_id, scan_count=r.scan_count,
                            snapshot_id=r.snapshot_id, created_at=db_now()))


def _apply_effects(s: Session, job_id: int, effects: Sequence[PublishProject]) -> str | None:
    """Apply a completing job's effects; the reason when one is refused (the job then fails)."""
    for _effect in effects:
        job = s.get(Job, job_id)
        assert job is not None
        published = rowcount(s.execute(
            update(Project).where(Project.id == job.project_id, Project.status == ProjectStatus.CLOSED)
            .values(status=str(ProjectStatus.PUBLISHED), published_at=db_now())
            .execution_options(synchronize_session=False)
        )) == 1
        if not published:
            return "Project must be closed (it was reopened, or published by another job, while publishing)"
        audit.record(s, action="publish", actor=job.user.username, project=job.project.slug,
                     target=f"project:{job.project.slug}", detail=f"status closed -> published by job {job_id}")
    return None


def hand_back(db: Database, lease: Lease, reason: str) -> bool:
    """``running -> ready``: a draining worker gives the job back, so another worker runs it."""
    with db.write() as s:
        won = _transition(s, lease.job_id, JobStatus.RUNNING, JobStatus.READY, *_held(lease),
                          worker_id=None, heartbeat_at=None, progress=0, requeued_at=db_now())
        if won:
            log(s, lease.job_id, LogLevel.INFO,
                f"{reason}; the job goes back to the queue (attempt {lease.attempt} did not finish)")
    return won


# ---------------------------------------------------------------------- cancelling


def cancel(s: Session, job_id: int, *, reason: str) -> JobStatus | None:
    """Cancel a job and its active children. A waiting or ready job becomes ``cancelled`` at once; a
    running one gets the flag and its runner ends it. Returns the job's status after the call (``None``
    for an unknown id)."""
    for child_id in s.scalars(select(Job.id).where(Job.parent_id == job_id, Job.status.in_(ACTIVE_STATUSES))):
        cancel(s, child_id, reason=reason)
    if _transition(s, job_id, (JobStatus.WAITING, JobStatus.READY), JobStatus.CANCELLED,
                   finished_at=db_now(), cancel_requested=True):
        log(s, job_id, LogLevel.INFO, reason)
        return JobStatus.CANCELLED
    flagged = rowcount(s.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.cancel_requested.is_(False))
        .values(cancel_requested=True).execution_options(synchronize_session=False)
    )) == 1
    if flagged:
        log(s, job_id, LogLevel.INFO, f"{reason}; stopping")
    status = s.scalar(select(Job.status).where(Job.id == job_id))
    return None if status is None else JobStatus(status)


# ---------------------------------------------------------------------- reaping


@dataclass(frozen=True)
class Reaped:
    job_id: int
    project_slug: str
    export_type: str
    parent_id: int | None


def stale_leases(s: Session, lease_seconds: float, limit: int = 200) -> list[Lease]:
    """Running jobs whose heartbeat is older than the lease, on the database's clock."""
    rows = s.execute(
        select(Job.id, Job.worker_id, Job.attempt)
        .where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < db_now(-lease_seconds))
        .order_by(Job.id).limit(limit)
    )
    return [Lease(r.id, r.worker_id or "", r.attempt) for r in rows]


def reap(db: Database, lease: Lease, lease_seconds: float) -> Reaped | None:
    """``running -> failed`` ("worker lost") if the job is still held by this lease *and* still silent
    for longer than the lease: a heartbeat or a finish that lands first wins, and so does another
    reaper. One log line and one audit event, only for the winner."""
    with db.write() as s:
        won = _transition(s, lease.job_id, JobStatus.RUNNING, JobStatus.FAILED, *_held(lease),
                          Job.heartbeat_at < db_now(-lease_seconds), finished_at=db_now(), error=WORKER_LOST)
        if not won:
            return None
        job = s.get(Job, lease.job_id)
        assert job is not None
        log(s, job.id, LogLevel.ERROR,
            f"Worker {lease.worker_id} stopped sending heartbeats; job failed: {WORKER_LOST}")
        audit.record(s, action="reap", actor=None, project=job.project.slug, target=f"job:{job.id}",
                     detail=f"{WORKER_LOST} (worker {lease.worker_id}, attempt {lease.attempt})")
        return Reaped(job.id, job.project.slug, job.export_type, job.parent_id)


def waiting_parents(s: Session) -> list[int]:
    """Waiting parents none of whose children is active any more (their wake-up may have been lost)."""
    child = aliased(Job)
    active_child = exists().where(child.parent_id == Job.id, child.status.in_(ACTIVE_STATUSES))
    has_child = exists().where(child.parent_id == Job.id)
    return list(s.scalars(select(Job.id).where(Job.status == JobStatus.WAITING, has_child, ~active_child)))


def mark_requeued(s: Session, *, older_than_seconds: float) -> list[int]:
    """Ready jobs nobody claimed for a while, stamped as handed to the queue again now: at most once per
    period across all processes (the conditional update lets one process win). The caller enqueues
    them and rolls back if it cannot, so a process without a queue never takes the turn."""
    cutoff = db_now(-older_than_seconds)
    return list(s.scalars(
        update(Job)
        .where(Job.status == JobStatus.READY, Job.created_at < cutoff,
               (Job.run_at.is_(None)) | (Job.run_at < cutoff),
               (Job.requeued_at.is_(None)) | (Job.requeued_at < cutoff))
        .values(requeued_at=db_now()).returning(Job.id).execution_options(synchronize_session=False)
    ))


def parent_of(s: Session, job_id: int) -> int | None:
    return s.scalar(select(Job.parent_id).where(Job.id == job_id))


__all__ = [
    "WORKER_LOST", "Lease", "Outcome", "PublishProject", "Reaped", "SessionRecord", "StoredFile",
    "cancel", "claim", "due_candidates", "finish", "hand_back", "heartbeat", "insert", "log", "mark_requeued",
    "parent_of", "promote", "reap", "report_progress", "settle_parent", "stale_leases", "waiting_parents",
]
