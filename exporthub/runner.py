"""Runs one job in this process: claim it, run its exporter, store its files, and ask the lifecycle
to finish it.

Huey cannot stop a task it is running, so cancellation is the job row's flag: a watcher thread polls
it, sets the context's cancel event and interrupts the DuckDB query in flight. The same thread
heartbeats the lease; when the lease is lost (the job was reaped while this worker stalled) it stops
the work, whose output :func:`exporthub.lifecycle.finish` would refuse anyway.

Every status change goes through :mod:`exporthub.lifecycle`; this module only runs exporters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlalchemy import func, select

from exporthub import lake, lifecycle
from exporthub.access import user_rows
from exporthub.context import JobContext, JobReporter, PastExportSession, ProjectInfo, register_users
from exporthub.db import Database
from exporthub.dispatch import Dispatcher, hand_over
from exporthub.errors import Cancelled, ExporthubError
from exporthub.export_config import ExportDefinition, load_config, resolve_date_window
from exporthub.job_reads import build_view
from exporthub.lake.incremental import export_watermarks
from exporthub.lifecycle import Lease, Outcome, PublishProject, SessionRecord
from exporthub.models import ExportSession, Job
from exporthub.outputs import PARTIAL_DIR, discard, store_outputs
from exporthub.plugins import Exporter, ExporterRegistry
from exporthub.settings import Settings
from exporthub.states import JobStatus, LogLevel
from exporthub.storage import work_folder

log = logging.getLogger(__name__)

_PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

__all__ = ["PARTIAL_DIR", "after_job_finished", "default_worker_id", "interrupt_running", "run_job",
           "running_job_ids"]


# The first line of a failed job's error, which every user sees; the detail follows on the next lines.
UNEXPECTED = "The export stopped on an unexpected problem. An administrator can see the details."
COULD_NOT_START = "The export could not start. An administrator can see the details."
COULD_NOT_STORE = "The export's files could not be stored. An administrator can see the details."


def default_worker_id() -> str:
    """This process's worker id (``host:pid:nonce``), the ``workers`` row it reports as."""
    return _PROCESS_ID


class _DbReporter(JobReporter):
    def __init__(self, db: Database, job_id: int) -> None:
        self.db, self.job_id = db, job_id

    def progress(self, percent: int) -> None:
        lifecycle.report_progress(self.db, self.job_id, percent)

    def log(self, level: LogLevel, message: str) -> None:
        with self.db.write() as s:
            lifecycle.log(s, self.job_id, level, message)

    def cancel_requested(self) -> bool:
        with self.db.read() as s:
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))


# Why a run stops early, besides a user's cancel.
HAND_BACK = "hand back"  # the worker is draining: give the job to another worker
LEASE_LOST = "lease lost"  # reaped while this worker stalled


@dataclass
class _Watch:
    """The watcher thread's state for one running job."""

    ctx: JobContext
    lease: Lease
    stop: threading.Event
    stop_reason: str | None = None  # HAND_BACK, LEASE_LOST, or None
    concluding: bool = False  # the final commit is under way: a missing lease is ours to decide
    con_lock: threading.Lock = field(default_factory=threading.Lock)

    def interrupt(self) -> None:
        """Stop the exporter: set its cancel event and interrupt its DuckDB query, if one is open."""
        self.ctx.cancel_event.set()
        with self.con_lock:
            if self.ctx.con is not None:
                self.ctx.con.interrupt()


_running: dict[int, _Watch] = {}
_running_lock = threading.Lock()


def interrupt_running(reason: str = HAND_BACK) -> list[int]:
    """Stop every job running in this process (a draining worker whose grace period ran out); each
    one goes back to the queue for another worker."""
    with _running_lock:
        watches = list(_running.items())
    for _job_id, watch in watches:
        watch.stop_reason = reason
        watch.interrupt()
    return [job_id for job_id, _ in watches]


def running_job_ids() -> list[int]:
    """Jobs this process is running right now."""
    with _running_lock:
        return list(_running)


def _watch(db: Database, settings: Settings, watch: _Watch) -> None:
    import time

    ctx, last_beat = watch.ctx, time.monotonic()
    while not watch.stop.wait(0.25):
        try:
            if not ctx.cancel_event.is_set() and ctx.reporter.cancel_requested():
                watch.interrupt()
            if time.monotonic() - last_beat >= settings.heartbeat_seconds:
                alive = lifecycle.heartbeat(db, watch.lease)
                last_beat = time.monotonic()
                if not alive and not watch.concluding and not watch.stop.is_set():
                    # The reaper gave up on us (we stalled longer than the lease): stop spending the
                    # machine on a job whose output would be refused anyway.
                    watch.stop_reason = watch.stop_reason or LEASE_LOST
                    watch.interrupt()
        except Exception:  # a DB hiccup must not kill the watcher; the next round retries
            log.exception("watcher of job %s", watch.lease.job_id)


def _build_context(db: Database, settings: Settings, job_id: int, definition_of: Any) -> tuple[JobContext, Any]:
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        project = ProjectInfo(job.project.id, job.project.slug, job.project.name, job.project.timezone,
                              job.project.status, job.project.currency)
        definition: ExportDefinition = definition_of(job.export_type)
        started = job.started_at
        assert started is not None
        variables = dict(job.variables or {})
        workdir = work_folder(settings, job.project.slug, job.export_type, job.id)
        username = job.user.username
        users = user_rows(s)
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
        children = [build_view(s, settings, child) for child in s.scalars(select(Job).where(Job.id.in_(child_ids)))]
    ctx = JobContext(
        job_id=job_id, export_type=definition.type, definition=definition, variables=variables,
        project=project, user=username, settings=settings, started_at=started,
        window=resolve_date_window(variables, project.timezone, started),
        workdir=workdir, reporter=_DbReporter(db, job_id), previous_watermarks=watermarks,
        export_session_history=history, children=sorted(children, key=lambda c: c.id),
    )
    return ctx, users


def run_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    dispatcher: Dispatcher,
    worker_id: str | None = None,
    registry: ExporterRegistry,
    config: dict[str, ExportDefinition] | None = None,
) -> JobStatus | None:
    """Run the job if it can run now. Returns the status that stands at the end, or ``None`` if it was
    not claimable (taken by another worker, cancelled, scheduled for later or waiting on children)."""
    config = config if config is not None else load_config(settings.export_config_path)
    with db.write() as s:
        lifecycle.promote(s, job_id)  # a scheduled job whose time came (a no-op for any other)
    lease = lifecycle.claim(db, job_id, worker_id or default_worker_id())
    if lease is None:
        return None
    try:
        ctx, users = _build_context(db, settings, job_id, lambda t: config[t])
        exporter = registry.get(ctx.export_type)
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
    except Exception as exc:  # a config entry removed since the job was queued, an unwritable folder…
        log.warning("job %s could not start:\n%s", job_id, traceback.format_exc())
        status = lifecycle.finish(db, lease, Outcome(JobStatus.FAILED, error=_describe(exc, COULD_NOT_START)))
        after_job_finished(db, job_id, dispatcher)
        return status
    watch = _Watch(ctx=ctx, lease=lease, stop=threading.Event())
    with _running_lock:
        _running[job_id] = watch
    # The watcher heartbeats until the job's final commit, storing large outputs included.
    threading.Thread(target=_watch, args=(db, settings, watch), daemon=True, name=f"job-{job_id}-watch").start()
    try:
        outcome = _run_exporter(db, settings, exporter, ctx, users, watch)
        return _conclude(db, ctx, watch, outcome, dispatcher)
    finally:
        watch.stop.set()
        with _running_lock:
            _running.pop(job_id, None)


def _run_exporter(db: Database, settings: Settings, exporter: Exporter, ctx: JobContext, users: Any,
                  watch: _Watch) -> Outcome:
    try:
        if exporter.uses_lake:
            con, ctx.snapshot = lake.open_project(settings, ctx.project.slug)
            lake.record_job_snapshot(db, ctx.job_id, ctx.snapshot)
            with watch.con_lock:
                ctx.con = con
            register_users(con, users)
        ctx.info(f"Started on {watch.lease.worker_id} (attempt {watch.lease.attempt})")
        exporter.run(ctx)
        if watch.stop_reason is None:
            ctx.check_cancelled()
        return Outcome(JobStatus.COMPLETED)
    except (Cancelled, duckdb.InterruptException) as exc:
        return _stopped(ctx, watch, f"Interrupted: {exc}")
    except Exception as exc:
        if watch.stop_reason or (ctx.cancel_event.is_set() and not ctx.committed):
            # An interrupted query can surface as another error (e.g. from Arrow while a writer pulls
            # batches); after a stop request it is the stop, not a failure.
            return _stopped(ctx, watch, _describe(exc))
        log.warning("job %s failed:\n%s", ctx.job_id, traceback.format_exc())
        return Outcome(JobStatus.FAILED, error=_describe(exc))
    finally:
        with watch.con_lock:
            if ctx.con is not None:
                ctx.con.close()
                ctx.con = None


def _stopped(ctx: JobContext, watch: _Watch, detail: str) -> Outcome:
    if watch.stop_reason == HAND_BACK:
        return Outcome(JobStatus.READY)  # not a final state: handed back below
    if watch.stop_reason == LEASE_LOST:
        return Outcome(JobStatus.FAILED, error=lifecycle.WORKER_LOST)  # finish() will find the lease gone
    if ctx.cancel_event.is_set():
        return Outcome(JobStatus.CANCELLED, message="Cancelled while running; partial output deleted")
    return Outcome(JobStatus.FAILED, error=detail)


def _conclude(
    db: Database, ctx: JobContext, watch: _Watch, outcome: Outcome, dispatcher: Dispatcher
) -> JobStatus | None:
    lease = watch.lease
    stored: list[lifecycle.StoredFile] = []
    try:
        if outcome.status is JobStatus.READY:
            if lifecycle.hand_back(db, lease, f"Worker {lease.worker_id} is shutting down"):
                hand_over(dispatcher, [lease.job_id])
            return JobStatus.READY
        if outcome.status is JobStatus.COMPLETED:
            try:
                stored = store_outputs(ctx)
            except OSError as exc:
                outcome = Outcome(JobStatus.FAILED, error=_describe(exc, COULD_NOT_STORE))
            else:
                outcome.files = stored
                outcome.sessions = [SessionRecord(r.zone_id, r.watermark_scan_id, r.scan_count, r.snapshot_id)
                                    for r in ctx.export_sessions]
                outcome.effects = [PublishProject() for _ in range(ctx.publishes)]
                outcome.honour_cancel = not ctx.committed
                outcome.message = "Completed" + (f" with {len(stored)} file(s)" if stored else "")
        watch.concluding = True
        # The work folder goes before the final commit (the outputs are stored by now): once the database
        # calls the job finished ("partial output deleted" for a cancel), nothing of it is left behind.
        _remove_workdir(ctx)
        status = lifecycle.finish(db, lease, outcome)
        if status is not JobStatus.COMPLETED:
            discard(ctx.settings, stored)  # decided by the commit above: nobody records these files
    finally:
        _remove_workdir(ctx)  # after a hand-back or an error on the way, too
    if status is None:
        log.warning("job %s: the lease was lost before it finished; its output was dropped", lease.job_id)
    after_job_finished(db, lease.job_id, dispatcher)
    return status


def _remove_workdir(ctx: JobContext) -> None:
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    with contextlib.suppress(OSError):
        ctx.workdir.parent.rmdir()  # empty unless the store is this folder (local files)


def _describe(exc: BaseException, plain: str | None = None) -> str:
    """A job's error: a plain first line for every user (a refusal's own message, else ``plain``), then
    the technical detail (a DuckDB message with server paths…) for admins, the CLI and the log."""
    if isinstance(exc, ExporthubError) and plain is None:
        if exc.__cause__ is None:
            return exc.message
        plain, exc = exc.message, exc.__cause__  # the reader's own error
    text = str(exc).strip() or type(exc).__name__
    text = text if len(text) < 2000 else text[:2000] + "…"
    return f"{plain or UNEXPECTED}\n{type(exc).__name__}: {text}"


def after_job_finished(db: Database, job_id: int, dispatcher: Dispatcher) -> None:
    """Wake the parent when its last child ends: ready if all completed, failed if one did not."""
    with db.write() as s:
        parent_id = lifecycle.parent_of(s, job_id)
        wake = lifecycle.settle_parent(s, parent_id) if parent_id is not None else None
    if wake is not None:
        hand_over(dispatcher, [wake])
