"""What removing a job, or retiring its files, does to the files and the export sessions it recorded.

The callers mark rows inside their write transaction (:func:`mark_files_deleted`,
:func:`release_export_sessions`) and delete the stored files with :func:`delete_stored` only once it
has committed, so a rolled-back removal never loses a file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exporthub import lifecycle
from exporthub.models import ExportSession, File, Job, utcnow
from exporthub.settings import Settings
from exporthub.states import LogLevel


def release_export_sessions(s: Session, job: Job, *, why: str) -> int:
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
