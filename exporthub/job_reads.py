"""The job engine's reads: list, count, get and the hub's newest job per type, and the snapshots they return.

:class:`JobReads` is the read half of :class:`~exporthub.jobs.JobService` (which adds start, retry, cancel,
remove and reset). Every read takes the acting user (``actor``, a username), checks ``exports.view``
on the project and writes nothing, not even an audit event. :func:`build_view` and :func:`build_views`
make the detached :class:`JobView` snapshots; the runner uses them too.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from exporthub.access import get_project, get_user, has, require
from exporthub.db import Database
from exporthub.errors import JobNotFound, NotFound
from exporthub.models import ExportSession, File, Job, JobLog, User
from exporthub.permissions import Permission
from exporthub.settings import Settings
from exporthub.states import LogLevel
from exporthub.storage import get_store
from exporthub.views import JobView, job_view

_MAX_JOB_ID = 2**31 - 1  # the id column's range: anything beyond names no job


def _listed(project_id: int, types: Sequence[str] | None, statuses: Sequence[str] | None,
            top_level_only: bool) -> list[ColumnElement[bool]]:
    """The filters of :meth:`JobReads.list` and :meth:`JobReads.count`: the project's jobs that were
    not removed, of these types and statuses when given, only parents and lone jobs when asked."""
    where = [Job.project_id == project_id, Job.removed_at.is_(None)]
    if types:
        where.append(Job.export_type.in_(list(types)))
    if statuses:
        where.append(Job.status.in_(list(statuses)))
    if top_level_only:
        where.append(Job.parent_id.is_(None))
    return where


class JobReads:
    """The reads of :class:`~exporthub.jobs.JobService`, which sets ``db`` and ``settings``."""

    db: Database
    settings: Settings

    def list(
        self,
        actor: str,
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
            user = get_user(s, actor)
            project = get_project(s, project_slug)
            require(s, user, project, Permission.VIEW)
            stmt = (
                select(Job).where(*_listed(project.id, types, statuses, top_level_only))
                .order_by(Job.id.desc()).limit(limit).offset(offset)
            )
            jobs = s.scalars(stmt).all()
            return build_views(s, self.settings, jobs)

    def count(self, actor: str, project_slug: str, *, types: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, top_level_only: bool = False) -> int:
        with self.db.read() as s:
            project = get_project(s, project_slug)
            require(s, get_user(s, actor), project, Permission.VIEW)
            stmt = select(func.count()).select_from(Job).where(*_listed(project.id, types, statuses, top_level_only))
            return int(s.scalar(stmt) or 0)

    def get(self, actor: str, job_id: int) -> JobView:
        """One job with its log, files and children. Needs ``exports.view`` on its project."""
        with self.db.read() as s:
            job, _user = self._visible_job(s, actor, job_id)
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
    def _visible_job(cls, s: Session, actor: str, job_id: int) -> tuple[Job, User]:
        """The job and the user, if the user may see the job (``exports.view`` on its project).

        Raises :class:`JobNotFound`, one and the same answer for a job that does not exist and for
        one the user may not see, so nobody learns which job ids exist on other projects.
        """
        user = get_user(s, actor)
        job = cls._job(s, job_id)
        if not has(s, user, job.project, Permission.VIEW):
            raise JobNotFound(job_id)
        return job, user

    @staticmethod
    def _children(s: Session, job_id: int) -> builtins.list[Job]:  # ``list`` here is JobService.list
        return list(s.scalars(select(Job).where(Job.parent_id == job_id).order_by(Job.id)))

    def latest_by_type(self, actor: str, project_slug: str) -> dict[str, JobView]:
        """The newest job of each type (for the hub's cards), a publication's reports included: the
        Scans card shows the scans a publish just ran."""
        with self.db.read() as s:
            project = get_project(s, project_slug)
            require(s, get_user(s, actor), project, Permission.VIEW)
            newest = (
                select(func.max(Job.id)).where(Job.project_id == project.id, Job.removed_at.is_(None))
                .group_by(Job.export_type)
            )
            jobs = s.scalars(select(Job).where(Job.id.in_(newest))).all()
            return {view.export_type: view for view in build_views(s, self.settings, jobs)}

    def permissions(self, actor: str, project_slug: str) -> frozenset[Permission]:
        from exporthub.access import permissions_on

        with self.db.read() as s:
            return permissions_on(s, get_user(s, actor), get_project(s, project_slug))


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
        if earliest is not None and (views[-1].started_at is None or earliest < views[-1].started_at):
            views[-1] = dataclasses.replace(views[-1], started_at=earliest)
    return views
