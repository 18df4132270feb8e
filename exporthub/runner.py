"""Runs one job in this process: claim, execute the exporter, publish its files, finish.

Huey cannot stop a task it is running, so cancellation is the job row's flag: a watcher thread polls
it, sets the context's cancel event and interrupts the DuckDB query in flight. The same thread
writes the heartbeat that the reaper (``exporthub.maintenance``) uses to detect a lost worker.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import shutil
import socket
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import func, select, update

from exporthub import lake
from exporthub.context import JobContext, JobReporter, PastExportSession, ProjectInfo, users_table
from exporthub.db import Database
from exporthub.dispatch import Dispatcher
from exporthub.errors import Cancelled
from exporthub.export_config import ExportDefinition, load_config, resolve_date_window
from exporthub.jobs import build_view, finish, job_folder, settle_parent
from exporthub.lake import fsync_dir
from exporthub.lake.incremental import export_watermarks
from exporthub.models import ExportSession, File, Job, JobLog, User, utcnow
from exporthub.settings import Settings
from exporthub.states import ACTIVE_STATUSES, JobStatus, LogLevel

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"  # the job's private work folder; never served, deleted on failure

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
}


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class _DbReporter(JobReporter):
    def __init__(self, db: Database, job_id: int) -> None:
        self.db, self.job_id = db, job_id

    def progress(self, percent: int) -> None:
        with self.db.write() as s:
            s.execute(
                update(Job).where(Job.id == self.job_id, Job.status == JobStatus.RUNNING).values(progress=percent)
            )

    def log(self, level: LogLevel, message: str) -> None:
        with self.db.write() as s:
            s.add(JobLog(job_id=self.job_id, time=utcnow(), level=str(level), message=message))

    def cancel_requested(self) -> bool:
        with self.db.read() as s:
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))


@dataclass
class _Watch:
    """The watcher thread's state for one running job."""

    ctx: JobContext
    stop: threading.Event
    shutdown_reason: str | None = None


_running: dict[int, _Watch] = {}
_running_lock = threading.Lock()


def interrupt_running(reason: str) -> list[int]:
    """Stop every job running in this process (worker shutdown); they end failed with ``reason``."""
    with _running_lock:
        watches = list(_running.items())
    for job_id, watch in watches:
        watch.shutdown_reason = reason
        watch.ctx.cancel_event.set()
        if watch.ctx.con is not None:
            watch.ctx.con.interrupt()
    return [job_id for job_id, _ in watches]


def _watch(db: Database, settings: Settings, job_id: int, worker_id: str, watch: _Watch) -> None:
    ctx = watch.ctx
    last_beat = 0.0
    import time

    while not watch.stop.wait(0.25):
        try:
            if ctx.reporter.cancel_requested():
                ctx.cancel_event.set()
                if ctx.con is not None:
                    ctx.con.interrupt()
            now = time.monotonic()
            if now - last_beat >= settings.heartbeat_seconds:
                with db.write() as s:
                    beat = s.execute(
                        update(Job)
                        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker_id == worker_id)
                        .values(heartbeat_at=utcnow())
                    )
                last_beat = now
                if not beat.rowcount and not ctx.cancel_event.is_set():
                    # The reaper gave up on us (we stalled longer than the lease): the job is already
                    # failed, so stop spending the machine on it. Its output would be dropped anyway.
                    watch.shutdown_reason = "worker lost"
                    ctx.cancel_event.set()
                    if ctx.con is not None:
                        ctx.con.interrupt()
        except Exception:  # a DB hiccup must not kill the watcher; the next round retries
            log.exception("watcher of job %s", job_id)


def _promote_if_due(db: Database, job_id: int) -> None:
    with db.write() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != JobStatus.WAITING:
            return
        if job.run_at is not None and job.run_at > utcnow():
            return
        children = s.scalars(select(Job.status).where(Job.parent_id == job_id)).all()
        if any(JobStatus(c) in ACTIVE_STATUSES for c in children):
            return
        job.status = str(JobStatus.READY)


def _claim(db: Database, job_id: int, worker_id: str) -> bool:
    now = utcnow()
    with db.write() as s:
        result = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.READY, Job.cancel_requested.is_(False))
            .values(status=str(JobStatus.RUNNING), started_at=now, heartbeat_at=now, worker_id=worker_id,
                    attempt=Job.attempt + 1, progress=0)
        )
        return bool(result.rowcount)


def _build_context(db: Database, settings: Settings, job_id: int, definition_of: Any) -> tuple[JobContext, Any]:
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        project = ProjectInfo(job.project.id, job.project.slug, job.project.name, job.project.timezone,
                              job.project.status)
        definition: ExportDefinition = definition_of(job.export_type)
        started = job.started_at or utcnow()
        variables = dict(job.variables or {})
        folder = job_folder(settings, job)
        username = job.user.username
        users = [
            {"user_id": u.id, "username": u.username, "display_name": u.display_name, "email": u.email,
             "hourly_rate": u.hourly_rate, "active": u.active, "deleted_at": u.deleted_at,
             "can_log_in": u.password_hash is not None}
            for u in s.scalars(select(User).order_by(User.id))
        ]
        child_ids = s.scalars(select(Job.id).where(Job.parent_id == job_id).order_by(Job.id)).all()
        # Incremental exports start from each zone's last delivered export (a scans snapshot).
        watermarks = export_watermarks(s, job.project_id, job.export_type)
        newest = (
            select(func.max(ExportSession.id)).where(ExportSession.project_id == job.project_id)
            .group_by(ExportSession.zone_id, ExportSession.export_type)
        )
        history = [
            PastExportSession(e.zone_id, e.export_type, e.job_id, e.watermark_scan_id, e.scan_count, e.created_at)
            for e in s.scalars(select(ExportSession).where(ExportSession.id.in_(newest)).order_by(ExportSession.id))
        ]
    ctx = JobContext(
        job_id=job_id, export_type=definition.type, definition=definition, variables=variables,
        project=project, user=username, settings=settings, started_at=started,
        window=resolve_date_window(variables, project.timezone, started),
        workdir=folder / PARTIAL_DIR, reporter=_DbReporter(db, job_id), previous_watermarks=watermarks,
        export_session_history=history,
    )
    if child_ids:
        with db.read() as s:
            ctx.children = [build_view(s, settings, s.get(Job, cid)) for cid in child_ids]
    return ctx, users


def run_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    dispatcher: Dispatcher,
    worker_id: str | None = None,
    registry: Any = None,
    config: dict[str, ExportDefinition] | None = None,
) -> JobStatus | None:
    """Run the job if it can run now. Returns its final status, or ``None`` if it was not claimable
    (already taken by another worker, cancelled, scheduled for later or waiting on children)."""
    if registry is None:
        from exporters import REGISTRY as registry
    config = config if config is not None else load_config(settings.export_config_path)
    worker_id = worker_id or default_worker_id()
    _promote_if_due(db, job_id)
    if not _claim(db, job_id, worker_id):
        return None
    try:
        ctx, users = _build_context(db, settings, job_id, lambda t: config[t])
        exporter = registry.get(ctx.export_type)
    except Exception as exc:  # e.g. a config entry removed since the job was queued
        log.warning("job %s could not start:\n%s", job_id, traceback.format_exc())
        return _fail_claimed(db, job_id, worker_id, f"Could not start: {_describe(exc)}", dispatcher)
    watch = _Watch(ctx=ctx, stop=threading.Event())
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    status, error = JobStatus.FAILED, None
    with _running_lock:
        _running[job_id] = watch
    # The watcher heartbeats until the job's final commit, hashing of large outputs included.
    threading.Thread(target=_watch, args=(db, settings, job_id, worker_id, watch), daemon=True,
                     name=f"job-{job_id}-watch").start()
    try:
        try:
            if exporter.uses_lake:
                ctx.con, ctx.snapshot = lake.open_project(settings, ctx.project.slug)
                lake.record_job_snapshot(db, job_id, ctx.snapshot)
                ctx.con.register("_users_arrow", users_table(users))
                ctx.con.execute("CREATE OR REPLACE VIEW users AS SELECT * FROM _users_arrow")
            ctx.info(f"Started on {worker_id}")
            exporter.run(ctx)
            ctx.check_cancelled()
            status = JobStatus.COMPLETED
        except (Cancelled, duckdb.InterruptException) as exc:
            if watch.shutdown_reason:
                status, error = JobStatus.FAILED, watch.shutdown_reason
            elif ctx.cancel_event.is_set():
                status = JobStatus.CANCELLED
            else:
                status, error = JobStatus.FAILED, f"Interrupted: {exc}"
        except Exception as exc:
            if watch.shutdown_reason:
                status, error = JobStatus.FAILED, watch.shutdown_reason
            elif ctx.cancel_event.is_set() and not ctx.committed:
                # An interrupted query can surface as another error (e.g. from Arrow while a writer
                # pulls batches); after a cancel request it is the cancellation, not a failure.
                status = JobStatus.CANCELLED
            else:
                status, error = JobStatus.FAILED, _describe(exc)
                log.warning("job %s failed:\n%s", job_id, traceback.format_exc())
        finally:
            if ctx.con is not None:
                ctx.con.close()
        return _conclude(db, settings, ctx, worker_id, status, error, dispatcher)
    finally:
        watch.stop.set()
        with _running_lock:
            _running.pop(job_id, None)


def _fail_claimed(db: Database, job_id: int, worker_id: str, error: str, dispatcher: Dispatcher) -> JobStatus:
    with db.write() as s:
        job = s.get(Job, job_id)
        if job is not None and job.status == JobStatus.RUNNING and job.worker_id == worker_id:
            s.add(JobLog(job_id=job_id, time=utcnow(), level=LogLevel.ERROR, message=error))
            finish(s, job, JobStatus.FAILED, error=error)
    after_job_finished(db, job_id, dispatcher)
    return JobStatus.FAILED


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + "…"


def _conclude(db: Database, settings: Settings, ctx: JobContext, worker_id: str, status: JobStatus,
              error: str | None, dispatcher: Dispatcher) -> JobStatus:
    stored: list[_Stored] = []

    def discard() -> None:
        for item in stored:
            item.path.unlink(missing_ok=True)
        stored.clear()

    try:
        if status is JobStatus.COMPLETED:
            try:
                stored = _publish_files(ctx)
            except OSError as exc:
                status, error = JobStatus.FAILED, f"Could not store the files: {exc}"
        with db.write() as s:
            job = s.get(Job, ctx.job_id)
            assert job is not None
            if job.status != JobStatus.RUNNING or job.worker_id != worker_id:
                # The reaper (or a shutdown) already finished it: our output must not appear.
                status = JobStatus(job.status)
                discard()
            else:
                if status is JobStatus.COMPLETED and job.cancel_requested and not ctx.committed:
                    # Cancelled after the exporter's last check but before the job ended: honour it.
                    status = JobStatus.CANCELLED
                    discard()
                if status is JobStatus.COMPLETED:
                    _record_files(s, settings, job, stored)
                    for rec in ctx.export_sessions:
                        s.add(ExportSession(job_id=job.id, project_id=job.project_id, export_type=job.export_type,
                                            zone_id=rec.zone_id, watermark_scan_id=rec.watermark_scan_id,
                                            snapshot_id=rec.snapshot_id,
                                            scan_count=rec.scan_count, created_at=utcnow()))
                    message = "Completed" + (f" with {len(stored)} file(s)" if stored else "")
                    s.add(JobLog(job_id=job.id, time=utcnow(), level=LogLevel.INFO, message=message))
                elif status is JobStatus.CANCELLED:
                    s.add(JobLog(job_id=job.id, time=utcnow(), level=LogLevel.INFO,
                                 message="Cancelled while running; partial output deleted"))
                else:
                    s.add(JobLog(job_id=job.id, time=utcnow(), level=LogLevel.ERROR, message=error or "Failed"))
                finish(s, job, status, error=error if status is JobStatus.FAILED else None)
    except Exception:
        discard()
        raise
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    after_job_finished(db, ctx.job_id, dispatcher)
    return status


@dataclass(frozen=True)
class _Stored:
    """An output renamed into the job folder, with what the files table records about it."""

    path: Path
    size: int
    sha256: str
    mtime_ns: int


def _publish_files(ctx: JobContext) -> list[_Stored]:
    """Hash and fsync each output in the work folder, then rename it into the job folder.

    Runs before the final transaction, so hashing a large file never holds the database's write lock.
    """
    target = ctx.workdir.parent
    stored: list[_Stored] = []
    for path in sorted(ctx.workdir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb+") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            os.fsync(fh.fileno())
        final = target / path.name
        os.replace(path, final)
        st = final.stat()
        stored.append(_Stored(final, st.st_size, digest.hexdigest(), st.st_mtime_ns))
    fsync_dir(target)
    return stored


def _record_files(s: Any, settings: Settings, job: Job, stored: list[_Stored]) -> None:
    for item in stored:
        path = item.path
        s.add(File(
            job_id=job.id, project_id=job.project_id, export_type=job.export_type, name=path.name,
            content_type=CONTENT_TYPES.get(path.suffix, mimetypes.guess_type(path.name)[0] or "application/octet-stream"),
            size=item.size, sha256=item.sha256, storage_key=str(path.relative_to(settings.files_dir)),
            mtime_ns=item.mtime_ns, created_at=utcnow(), download_count=0,
        ))


def after_job_finished(db: Database, job_id: int, dispatcher: Dispatcher) -> None:
    """Wake the parent when its last child ends: ready if all completed, failed if one did not."""
    with db.write() as s:
        job = s.get(Job, job_id)
        parent = s.get(Job, job.parent_id) if job is not None and job.parent_id is not None else None
        wake = settle_parent(s, parent) if parent is not None else None
    if wake is not None:
        dispatcher.enqueue(wake)


def running_job_ids() -> list[int]:
    """Jobs this process is running right now."""
    with _running_lock:
        return list(_running)
