"""The job service: start, cancel, remove, reset export sessions, retry, list and get.

Every call takes the acting username and enforces membership, permission and project state here,
so the UI and the CLI get the same rules. Each state-changing call writes one audit event, and so
does each refusal. Reads write nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporthub import audit, lake, lifecycle
from exporthub.access import get_project, get_user, has, require, user_rows
from exporthub.db import Database
from exporthub.dispatch import Dispatcher, hand_over
from exporthub.errors import (
    ExporthubError,
    InvalidTransition,
    JobAlreadyRunning,
    JobNotFound,
    NotFound,
    ProjectNotClosed,
)
from exporthub.export_config import ExportDefinition, load_config, resolve_date_window, validate_variables
from exporthub.lake.incremental import export_watermarks
from exporthub.models import ExportSession, File, Job, JobLog, Project, User, utcnow
from exporthub.permissions import Permission
from exporthub.settings import Settings
from exporthub.states import (
    ACTIVE_STATUSES,
    CANCELLABLE_STATUSES,
    CLOSED_PROJECT_STATUSES,
    REMOVABLE_STATUSES,
    RETRYABLE_STATUSES,
    JobStatus,
    LogLevel,
)
from exporthub.stats import options as stats_options
from exporthub.storage import get_store
from exporthub.views import JobView, job_view

if TYPE_CHECKING:
    from exporthub.plugins import Estimate, ExporterRegistry

QUEUE_UNREACHABLE = ("Queued; no worker reachable yet: the queue could not be reached, so the job starts as "
                     "soon as a worker can take it")
_MAX_JOB_ID = 2**31 - 1  # the id column's range: anything beyond names no job



def _listed(project_id: int, types: Sequence[str] | None, statuses: Sequence[str] | None,
            top_level_only: bool) -> list[ColumnElement[bool]]:
    """The filters of :meth:`JobService.list` and :meth:`JobService.count`: the project's jobs that were
    not removed, of these types and statuses when given, only parents and lone jobs when asked."""
    where = [Job.project_id == project_id, Job.removed_at.is_(None)]
    if types:
        where.append(Job.export_type.in_(list(types)))
    if statuses:
        where.append(Job.status.in_(list(statuses)))
    if top_level_only:
        where.append(Job.parent_id.is_(None))
    return where

RETRY_OF = "Retry of job #"


class JobService:
    """The job engine's public face. ``registry`` holds the exporters; the edge that builds the service
    passes it in (``exporters.REGISTRY``), as it passes the dispatcher."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        dispatcher: Dispatcher,
        *,
        registry: ExporterRegistry,
        config: Mapping[str, ExportDefinition] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher
        self.registry = registry
        self.config = dict(config if config is not None else load_config(settings.export_config_path))
        registry.check_config(self.config)

    # ------------------------------------------------------------------ helpers
    def definition(self, export_type: str) -> ExportDefinition:
        if export_type not in self.config or export_type not in self.registry:
            raise NotFound(f"Unknown export type: {export_type}; the types are: {', '.join(self.visible_types())}")
        return self.config[export_type]

    def visible_types(self) -> list[str]:
        """The export types a person can start, in config order (hidden ones, like explore, left out)."""
        return [t for t, d in self.config.items() if not d.is_hidden and t in self.registry]

    def _refuse(
        self, exc: ExporthubError, *, action: str, actor: str, project: str | None, target: str | None
    ) -> ExporthubError:
        return audit.record_refusal(self.db, exc, action=action, actor=actor, project=project, target=target)

    def zone_codes(self, project_slug: str) -> list[str]:
        """The project's live zone codes, the options of the ``zones`` variable."""
        con, _ = lake.open_project(self.settings, project_slug)
        try:
            rows = con.execute("SELECT code FROM zones WHERE NOT deleted ORDER BY code").fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]

    def dynamic_options(self, project_slug: str, export_type: str) -> dict[str, list[str]]:
        """The options of the variables that come from the project (e.g. zone codes), by key.

        The UI builds its choice widgets from these; :meth:`validate` checks values against them.
        """
        definition = self.definition(export_type)
        dynamic: dict[str, list[str]] = {}
        if definition.variable("zones") is not None:
            dynamic["zones"] = self.zone_codes(project_slug)
        if definition.variable("areas") is not None:
            dynamic["areas"] = stats_options.project_areas(self.settings, project_slug)
        if definition.variable("users") is not None:
            dynamic["users"] = stats_options.project_usernames(self.db, self.settings, project_slug)
        return dynamic

    def validate(self, project_slug: str, export_type: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Validated variables for a type on a project (no permission check: validation only).

        The exporter adds checks across variables with ``check_variables(values)``, which raises
        :class:`InvalidVariable` (e.g. explore: cost cannot be split by hour of day).
        """
        definition = self.definition(export_type)
        dynamic = self.dynamic_options(project_slug, export_type)
        values = validate_variables(definition, variables, dynamic_options=dynamic)
        self.registry.get(export_type).check_variables(values)
        return values

    def estimate(
        self, username: str, project_slug: str, export_type: str, variables: Mapping[str, Any] | None = None,
        *, now: datetime | None = None,
    ) -> Estimate | None:
        """The exporter's fast guess (rows, approximate size, warnings) for these variables, before a start.

        Needs ``exports.view``. Runs the exporter's ``estimate()`` over a fresh lake snapshot with the
        same context a job would get (date window, users, previous export sessions); ``None`` when the
        exporter has no meaningful estimate. Raises :class:`NotFound`, :class:`PermissionDenied` or
        :class:`InvalidVariable`. Writes nothing, not even an audit event: it is a read.
        """
        from exporthub.context import JobContext, JobReporter, ProjectInfo, register_users

        with self.db.read() as s:
            user = get_user(s, username)
            project = get_project(s, project_slug)
            require(s, user, project, Permission.VIEW)
            info = ProjectInfo(project.id, project.slug, project.name, project.timezone, project.status,
                               project.currency)
            users = user_rows(s)
            watermarks = export_watermarks(s, project.id, export_type)
        definition = self.definition(export_type)
        values = self.validate(project_slug, export_type, variables or {})
        exporter = self.registry.get(export_type)
        started = now or utcnow()
        ctx = JobContext(
            job_id=0, export_type=export_type, definition=definition, variables=values, project=info,
            user=username, settings=self.settings, started_at=started,
            window=resolve_date_window(values, info.timezone, started),
            workdir=self.settings.tmp_dir / "estimate",  # never written: estimate() only counts
            reporter=JobReporter(), previous_watermarks=watermarks,
        )
        if not exporter.uses_lake:
            return exporter.estimate(ctx)
        ctx.con, ctx.snapshot = lake.open_project(self.settings, project_slug)
        try:
            register_users(ctx.con, users)
            return exporter.estimate(ctx)
        finally:
            ctx.con.close()

    # ------------------------------------------------------------------ start
    def start(
        self,
        username: str,
        project_slug: str,
        export_type: str,
        variables: Mapping[str, Any] | None = None,
        *,
        run_at: datetime | None = None,
        action: str = "start",
    ) -> JobView:
        """Create a job (and its children, for publish) and hand it to the dispatcher.

        Raises :class:`NotFound`, :class:`PermissionDenied`, :class:`ProjectNotClosed`,
        :class:`InvalidVariable` or :class:`JobAlreadyRunning`; each refusal is audited.
        """
        try:
            with self.db.read() as s:
                user = get_user(s, username)
                project = get_project(s, project_slug)
                require(s, user, project, Permission.START)
            definition = self.definition(export_type)
            if not definition.allow_when_project_not_closed and project.status not in CLOSED_PROJECT_STATUSES:
                raise ProjectNotClosed()
            values = self.validate(project_slug, export_type, variables or {})
            exporter = self.registry.get(export_type)
            children = exporter.plan_children(values, frozenset(self.config))
            # A child's variables get the same validation and defaults as a job started on its own.
            children = [
                dataclasses.replace(c, variables=self.validate(project_slug, c.export_type, c.variables))
                for c in children
            ]
            if run_at is not None and run_at.tzinfo is None:
                # A time without an offset is the project's local time, as the UI shows it.
                run_at = run_at.replace(tzinfo=ZoneInfo(project.timezone))
            with self.db.write() as s:
                # A scheduled job (and a parent) starts waiting; the database's clock decides when it is
                # due, so a web host whose clock is off never runs anything early.
                parent = self._insert_job(s, project, user, export_type, values,
                                          waiting=bool(children) or run_at is not None, run_at=run_at)
                child_jobs = [  # a scheduled parent's children wait for the same time, so nothing runs early
                    self._insert_job(s, project, user, c.export_type, c.variables, waiting=run_at is not None,
                                     run_at=run_at, parent_id=parent.id)
                    for c in children
                ]
                runnable = [j.id for j in child_jobs] or [parent.id]
                due = [job_id for job_id in runnable if run_at is None or lifecycle.promote(s, job_id)]
                audit.record(
                    s, action=action, actor=username, project=project_slug, target=f"job:{parent.id}",
                    detail=f"{export_type} {values}",
                )
                job_id = parent.id
        except ExporthubError as exc:
            raise self._refuse(exc, action=action, actor=username, project=project_slug, target=export_type) from None
        later = [j for j in runnable if j not in due]
        queued = hand_over(self.dispatcher, due) and hand_over(self.dispatcher, later, eta=run_at)
        if not queued:
            with self.db.write() as s:
                lifecycle.log(s, job_id, LogLevel.INFO, QUEUE_UNREACHABLE)
        return self.get(username, job_id)

    def _insert_job(
        self,
        s: Session,
        project: Project,
        user: User,
        export_type: str,
        values: dict[str, Any],
        *,
        waiting: bool,
        run_at: datetime | None = None,
        parent_id: int | None = None,
    ) -> Job:
        job = lifecycle.insert(s, project_id=project.id, user_id=user.id, export_type=export_type,
                               variables=values, status=JobStatus.WAITING if waiting else JobStatus.READY,
                               run_at=run_at, parent_id=parent_id)
        try:
            with s.begin_nested():
                s.flush()
        except IntegrityError:
            # The partial unique index said no: another active job of this type exists.
            raise JobAlreadyRunning(export_type) from None
        if run_at is not None:
            lifecycle.log(s, job.id, LogLevel.INFO, f"Scheduled for {run_at.isoformat()}")
        return job

    def retry(self, username: str, job_id: int) -> JobView:
        """Start a new job with the same type and variables as a failed or cancelled one."""
        try:
            with self.db.read() as s:
                job, user = self._visible_job(s, username, job_id)
                slug, export_type, status = job.project.slug, job.export_type, job.status
                variables = dict(job.variables)
                require(s, user, job.project, Permission.START)
        except ExporthubError as exc:
            raise self._refuse(exc, action="retry", actor=username, project=None, target=f"job:{job_id}") from None
        if JobStatus(status) not in RETRYABLE_STATUSES:
            refusal = InvalidTransition(f"Only failed or cancelled jobs can be retried; job {job_id} is {status}")
            raise self._refuse(refusal, action="retry", actor=username, project=slug, target=f"job:{job_id}")
        new = self.start(username, slug, export_type, variables, action="retry")
        with self.db.write() as s:
            lifecycle.log(s, new.id, LogLevel.INFO, f"{RETRY_OF}{job_id}")  # Job Details links back to it
        return self.get(username, new.id)

    # ------------------------------------------------------------------ cancel / remove / reset
    def _act_on_job(
        self, username: str, job_id: int, *, action: str, permission: Permission,
        apply: Callable[[Session, Job], str | None],
    ) -> None:
        """Load the job, check ``permission`` on its project, ``apply`` the change and audit it, in one
        write transaction. Any refusal is audited too and re-raised."""
        slug = None
        try:
            with self.db.write() as s:
                job, user = self._visible_job(s, username, job_id)
                slug = job.project.slug
                require(s, user, job.project, permission)
                detail = apply(s, job)
                audit.record(s, action=action, actor=username, project=slug, target=f"job:{job_id}", detail=detail)
        except ExporthubError as exc:
            raise self._refuse(exc, action=action, actor=username, project=slug, target=f"job:{job_id}") from None

    def cancel(self, username: str, job_id: int) -> JobView:
        """Cancel a waiting, ready or running job. A running one stops cooperatively, within seconds: until
        then the returned view says ``cancel_requested`` while its status is still ``running``."""

        def apply(s: Session, job: Job) -> str:
            if JobStatus(job.status) not in CANCELLABLE_STATUSES:
                raise InvalidTransition(f"Job {job_id} is {job.status} and can no longer be cancelled")
            after = lifecycle.cancel(s, job.id, reason=f"Cancelled by {username}")
            if after is not None and after not in ACTIVE_STATUSES and after is not JobStatus.CANCELLED:
                raise InvalidTransition(f"Job {job_id} {after} before it could be cancelled")
            if job.parent_id is not None:
                # A cancelled child ends its parent now; nobody else would wake it.
                lifecycle.settle_parent(s, job.parent_id)
            return "cancelled" if after is JobStatus.CANCELLED else "cancelling (the worker stops it)"

        self._act_on_job(username, job_id, action="cancel", permission=Permission.CANCEL, apply=apply)
        return self.get(username, job_id)

    def remove(self, username: str, job_id: int) -> JobView:
        """Delete a finished job's files and hide it; the row stays for the audit trail.

        The export sessions it recorded are released with it: its files are gone, so "only new since
        last export" must see its rows again (and a hidden job's sessions could never be reset).
        """

        def apply(s: Session, job: Job) -> str | None:
            if job.removed_at is not None:
                raise InvalidTransition(f"Job {job_id} was already removed")
            if JobStatus(job.status) not in REMOVABLE_STATUSES:
                raise InvalidTransition(f"Job {job_id} is {job.status}; cancel it before removing it")
            if job.parent_id is not None:
                raise InvalidTransition(f"Job {job_id} belongs to job {job.parent_id}; remove that one")
            released = 0
            for target in [job, *self._children(s, job.id)]:
                doomed.extend(mark_files_deleted(s, target))
                folders.append(job_files_of(target))
                why = f"Export sessions released: job removed by {username}"
                released += _release_export_sessions(s, target, why=why)
                target.removed_at = utcnow()
            return f"{released} export sessions released" if released else None

        doomed: list[str] = []
        folders: list[tuple[str, str, int]] = []
        self._act_on_job(username, job_id, action="remove", permission=Permission.REMOVE, apply=apply)
        delete_stored(self.settings, doomed, folders)  # only now that the removal is committed
        return self._view(job_id, with_log=True)

    def reset_export_sessions(self, username: str, job_id: int) -> JobView:
        """Forget the export sessions a job recorded, so "only new since last export" sees its rows again.

        A removed job released its sessions when it was removed: resetting it then changes nothing and
        says so, rather than failing.
        """

        def apply(s: Session, job: Job) -> str:
            if job.removed_at is not None and job.export_sessions_reset:
                return "released already when the job was removed"
            if job.export_sessions_reset:
                raise InvalidTransition(f"Job {job_id}'s export sessions were already reset")
            count = _release_export_sessions(s, job, why=f"Export sessions reset by {username}")
            if not count:
                raise InvalidTransition(f"Job {job_id} recorded no export sessions")
            return f"{count} export sessions deleted"

        self._act_on_job(username, job_id, action="reset-sessions", permission=Permission.RESET_EXPORT_SESSIONS,
                         apply=apply)
        return self._view(job_id, with_log=True)

    # ------------------------------------------------------------------ reads
    def list(
        self,
        username: str,
        project_slug: str,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
        top_level_only: bool = False,
    ) -> list[JobView]:
        """The project's jobs, newest first, without removed ones. Needs ``exports.view``."""
        with self.db.read() as s:
            user = get_user(s, username)
            project = get_project(s, project_slug)
            require(s, user, project, Permission.VIEW)
            stmt = (
                select(Job).where(*_listed(project.id, types, statuses, top_level_only))
                .order_by(Job.id.desc()).limit(limit).offset(offset)
            )
            jobs = s.scalars(stmt).all()
            return build_views(s, self.settings, jobs)

    def count(self, username: str, project_slug: str, *, types: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, top_level_only: bool = False) -> int:
        with self.db.read() as s:
            project = get_project(s, project_slug)
            require(s, get_user(s, username), project, Permission.VIEW)
            stmt = select(func.count()).select_from(Job).where(*_listed(project.id, types, statuses, top_level_only))
            return int(s.scalar(stmt) or 0)

    def get(self, username: str, job_id: int) -> JobView:
        """One job with its log, files and children. Needs ``exports.view`` on its project."""
        with self.db.read() as s:
            job, _user = self._visible_job(s, username, job_id)
            if job.removed_at is not None:
                raise NotFound(f"Job {job_id} was removed")
        return self._view(job_id, with_log=True)

    def _view(self, job_id: int, *, with_log: bool) -> JobView:
        with self.db.read() as s:
            return self._build_view(s, self._job(s, job_id), with_log=with_log)

    def _build_view(self, s: Session, job: Job, *, with_log: bool = False) -> JobView:
        return build_view(s, self.settings, job, with_log=with_log)

    @staticmethod
    def _job(s: Session, job_id: int) -> Job:
        job = s.get(Job, job_id) if 0 < job_id <= _MAX_JOB_ID else None
        if job is None:
            raise JobNotFound(job_id)
        return job

    @classmethod
    def _visible_job(cls, s: Session, username: str, job_id: int) -> tuple[Job, User]:
        """The job and the user, if the user may see the job (``exports.view`` on its project).

        Raises :class:`JobNotFound`, one and the same answer for a job that does not exist and for
        one the user may not see, so nobody learns which job ids exist on other projects.
        """
        user = get_user(s, username)
        job = cls._job(s, job_id)
        if not has(s, user, job.project, Permission.VIEW):
            raise JobNotFound(job_id)
        return job, user

    @staticmethod
    def _children(s: Session, job_id: int) -> builtins.list[Job]:  # ``list`` here is JobService.list
        return list(s.scalars(select(Job).where(Job.parent_id == job_id).order_by(Job.id)))

    def latest_by_type(self, username: str, project_slug: str) -> dict[str, JobView]:
        """The newest job of each type (for the hub's cards), a publication's reports included: the
        Scans card shows the scans a publish just ran."""
        with self.db.read() as s:
            project = get_project(s, project_slug)
            require(s, get_user(s, username), project, Permission.VIEW)
            newest = (
                select(func.max(Job.id)).where(Job.project_id == project.id, Job.removed_at.is_(None))
                .group_by(Job.export_type)
            )
            jobs = s.scalars(select(Job).where(Job.id.in_(newest))).all()
            return {view.type: view for view in build_views(s, self.settings, jobs)}

    def permissions(self, username: str, project_slug: str) -> frozenset[Permission]:
        from exporthub.access import permissions_on

        with self.db.read() as s:
            return permissions_on(s, get_user(s, username), get_project(s, project_slug))


# ---------------------------------------------------------------------- shared by the engine


def build_view(s: Session, settings: Settings, job: Job, *, with_log: bool = False) -> JobView:
    """A detached snapshot of a job (with its log and children when ``with_log``); no permission check."""
    return build_views(s, settings, [job], with_log=with_log)[0]


def build_views(s: Session, settings: Settings, jobs: Sequence[Job], *, with_log: bool = False) -> list[JobView]:
    """Snapshots of many jobs with one query each for their files, log lines and export sessions.

    The live job list asks for a page of jobs every few seconds per open browser, so it must not cost
    three queries per job. Without ``with_log`` only warnings are read (they make "Completed with
    warnings"). A parent (publish) started when its first child did: its own run only gathers their
    files, so its ``started`` is the earliest of the two and its duration spans the whole publication.
    """
    ids = [job.id for job in jobs]
    if not ids:
        return []
    first_child_start = dict(
        s.execute(
            select(Job.parent_id, func.min(Job.started_at)).where(Job.parent_id.in_(ids)).group_by(Job.parent_id)
        ).all()
    )
    files: dict[int, list[File]] = {i: [] for i in ids}
    for f in s.scalars(select(File).where(File.job_id.in_(ids)).order_by(File.id)):
        files[f.job_id].append(f)
    logs: dict[int, list[JobLog]] = {i: [] for i in ids}
    log_query = select(JobLog).where(JobLog.job_id.in_(ids)).order_by(JobLog.id)
    if not with_log:
        log_query = log_query.where(JobLog.level == str(LogLevel.WARNING))
    for entry in s.scalars(log_query):
        logs[entry.job_id].append(entry)
    sessions = dict(
        s.execute(
            select(ExportSession.job_id, func.count()).where(ExportSession.job_id.in_(ids))
            .group_by(ExportSession.job_id)
        ).all()
    )
    views = []
    for job in jobs:
        children: tuple[JobView, ...] = ()
        if with_log:
            kids = list(s.scalars(select(Job).where(Job.parent_id == job.id).order_by(Job.id)))
            children = tuple(build_views(s, settings, kids))
        views.append(job_view(job, files=files[job.id], logs=logs[job.id], locate=get_store(settings).location,
                              with_log=with_log, children=children,
                              export_session_count=int(sessions.get(job.id, 0))))
        earliest = first_child_start.get(job.id)
        if earliest is not None and (views[-1].started is None or earliest < views[-1].started):
            views[-1] = dataclasses.replace(views[-1], started=earliest)
    return views


def _release_export_sessions(s: Session, job: Job, *, why: str) -> int:
    """Delete the export sessions ``job`` recorded and flag it; returns how many zones they covered."""
    count = int(s.scalar(select(func.count()).select_from(ExportSession).where(ExportSession.job_id == job.id)) or 0)
    if not count:
        return 0
    s.query(ExportSession).filter(ExportSession.job_id == job.id).delete()
    job.export_sessions_reset = True
    lifecycle.log(s, job.id, LogLevel.INFO, f"{why} ({count} zones): 'only new since last export' includes its "
                                            "scans again")
    return count


def mark_files_deleted(s: Session, job: Job) -> list[str]:
    """Mark a job's files deleted; returns their storage keys, for :func:`delete_stored` after commit."""
    keys = []
    for f in s.scalars(select(File).where(File.job_id == job.id, File.deleted_at.is_(None))):
        f.deleted_at = utcnow()
        keys.append(f.storage_key)
    return keys


def delete_stored(settings: Settings, keys: Sequence[str], jobs: Sequence[tuple[str, str, int]] = ()) -> None:
    """Delete stored files (and whole jobs' files and work folders) that a committed transaction
    marked deleted."""
    from exporthub.storage import StorageError, delete_job, get_store

    store = get_store(settings)
    for key in keys:
        with contextlib.suppress(StorageError):  # a key pointing outside the store is never followed
            store.delete(key)
    for slug, export_type, job_id in jobs:
        delete_job(settings, slug, export_type, job_id)


def job_files_of(job: Job) -> tuple[str, str, int]:
    """(project slug, export type, job id): what :func:`delete_stored` needs to delete a job's files."""
    return (job.project.slug, job.export_type, job.id)
