"""The job service: start, cancel, remove, reset export sessions, retry, list and get.

The reads (list, count, get) live in :mod:`exporthub.job_reads`, which :class:`JobService` extends; what
a removal does to files and export sessions lives in :mod:`exporthub.job_files`.

Every call takes the acting user (``actor``, a username) and enforces membership, permission and
project state here, so the UI and the CLI get the same rules. Each state-changing call writes one
audit event, and so does each refusal. Reads write nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporthub import audit, lake, lifecycle
from exporthub.access import get_project, get_user, require, user_rows
from exporthub.db import Database
from exporthub.dispatch import Dispatcher, hand_over
from exporthub.errors import (
    ExporthubError,
    InvalidTransition,
    JobAlreadyRunning,
    NotFound,
    ProjectNotClosed,
)
from exporthub.export_config import ExportDefinition, load_config, resolve_date_window, validate_variables
from exporthub.job_files import delete_stored, job_files_of, mark_files_deleted, release_export_sessions
from exporthub.job_reads import JobReads
from exporthub.lake.incremental import export_watermarks
from exporthub.models import Job, Project, User, utcnow
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
from exporthub.views import JobView

if TYPE_CHECKING:
    from exporthub.plugins import Estimate, ExporterRegistry

QUEUE_UNREACHABLE = ("Queued; no worker reachable yet: the queue could not be reached, so the job starts as "
                     "soon as a worker can take it")

RETRY_OF = "Retry of job #"


class JobService(JobReads):
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
        con = lake.open_table(self.settings, project_slug, "zones")  # not the scans' manifests
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
        self, actor: str, project_slug: str, export_type: str, variables: Mapping[str, Any] | None = None,
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
            user = get_user(s, actor)
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
            user=actor, settings=self.settings, started_at=started,
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
        actor: str,
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
                user = get_user(s, actor)
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
                    s, action=action, actor=actor, project=project_slug, target=f"job:{parent.id}",
                    detail=f"{export_type} {values}",
                )
                job_id = parent.id
        except ExporthubError as exc:
            raise self._refuse(exc, action=action, actor=actor, project=project_slug, target=export_type) from None
        later = [j for j in runnable if j not in due]
        queued = hand_over(self.dispatcher, due) and hand_over(self.dispatcher, later, eta=run_at)
        if not queued:
            with self.db.write() as s:
                lifecycle.log(s, job_id, LogLevel.INFO, QUEUE_UNREACHABLE)
        return self.get(actor, job_id)

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

    def retry(self, actor: str, job_id: int) -> JobView:
        """Start a new job with the same type and variables as a failed or cancelled one."""
        try:
            with self.db.read() as s:
                job, user = self._visible_job(s, actor, job_id)
                slug, export_type, status = job.project.slug, job.export_type, job.status
                variables = dict(job.variables)
                require(s, user, job.project, Permission.START)
        except ExporthubError as exc:
            raise self._refuse(exc, action="retry", actor=actor, project=None, target=f"job:{job_id}") from None
        if JobStatus(status) not in RETRYABLE_STATUSES:
            refusal = InvalidTransition(f"Only failed or cancelled jobs can be retried; job {job_id} is {status}")
            raise self._refuse(refusal, action="retry", actor=actor, project=slug, target=f"job:{job_id}")
        new = self.start(actor, slug, export_type, variables, action="retry")
        with self.db.write() as s:
            lifecycle.log(s, new.id, LogLevel.INFO, f"{RETRY_OF}{job_id}")  # Job Details links back to it
        return self.get(actor, new.id)

    # ------------------------------------------------------------------ cancel / remove / reset
    def _act_on_job(
        self, actor: str, job_id: int, *, action: str, permission: Permission,
        apply: Callable[[Session, Job], str | None],
    ) -> None:
        """Load the job, check ``permission`` on its project, ``apply`` the change and audit it, in one
        write transaction. Any refusal is audited too and re-raised."""
        slug = None
        try:
            with self.db.write() as s:
                job, user = self._visible_job(s, actor, job_id)
                slug = job.project.slug
                require(s, user, job.project, permission)
                detail = apply(s, job)
                audit.record(s, action=action, actor=actor, project=slug, target=f"job:{job_id}", detail=detail)
        except ExporthubError as exc:
            raise self._refuse(exc, action=action, actor=actor, project=slug, target=f"job:{job_id}") from None

    def cancel(self, actor: str, job_id: int) -> JobView:
        """Cancel a waiting, ready or running job. A running one stops cooperatively, within seconds: until
        then the returned view says ``cancel_requested`` while its status is still ``running``."""

        def apply(s: Session, job: Job) -> str:
            if JobStatus(job.status) not in CANCELLABLE_STATUSES:
                raise InvalidTransition(f"Job {job_id} is {job.status} and can no longer be cancelled")
            after = lifecycle.cancel(s, job.id, reason=f"Cancelled by {actor}")
            if after is not None and after not in ACTIVE_STATUSES and after is not JobStatus.CANCELLED:
                raise InvalidTransition(f"Job {job_id} {after} before it could be cancelled")
            if job.parent_id is not None:
                # A cancelled child ends its parent now; nobody else would wake it.
                lifecycle.settle_parent(s, job.parent_id)
            return "cancelled" if after is JobStatus.CANCELLED else "cancelling (the worker stops it)"

        self._act_on_job(actor, job_id, action="cancel", permission=Permission.CANCEL, apply=apply)
        return self.get(actor, job_id)

    def remove(self, actor: str, job_id: int) -> JobView:
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
                why = f"Export sessions released: job removed by {actor}"
                released += release_export_sessions(s, target, why=why)
                target.removed_at = utcnow()
            return f"{released} export sessions released" if released else None

        doomed: list[str] = []
        folders: list[tuple[str, str, int]] = []
        self._act_on_job(actor, job_id, action="remove", permission=Permission.REMOVE, apply=apply)
        delete_stored(self.settings, doomed, folders)  # only now that the removal is committed
        return self._view(job_id, with_log=True)

    def reset_export_sessions(self, actor: str, job_id: int) -> JobView:
        """Forget the export sessions a job recorded, so "only new since last export" sees its rows again.

        A removed job released its sessions when it was removed: resetting it then changes nothing and
        says so, rather than failing.
        """

        def apply(s: Session, job: Job) -> str:
            if job.removed_at is not None and job.export_sessions_reset:
                return "released already when the job was removed"
            if job.export_sessions_reset:
                raise InvalidTransition(f"Job {job_id}'s export sessions were already reset")
            count = release_export_sessions(s, job, why=f"Export sessions reset by {actor}")
            if not count:
                raise InvalidTransition(f"Job {job_id} recorded no export sessions")
            return f"{count} export sessions deleted"

        self._act_on_job(actor, job_id, action="reset-sessions", permission=Permission.RESET_EXPORT_SESSIONS,
                         apply=apply)
        return self._view(job_id, with_log=True)

