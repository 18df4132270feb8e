"""Retention: delete files and finished jobs past the retention age, and orphaned temporary files."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from exporthub import audit
from exporthub.db import Database
from exporthub.jobs import delete_job_files
from exporthub.models import Job, utcnow
from exporthub.settings import Settings
from exporthub.states import FINISHED_STATUSES

_ORPHAN_AGE_SECONDS = 3600


@dataclass(frozen=True)
class CleanupResult:
    jobs: list[int]
    files: int
    orphans: int


def cleanup(db: Database, settings: Settings, *, actor: str | None = None) -> CleanupResult:
    """Remove finished jobs older than the retention age (never active ones) and stale temp files.

    Each removed job writes one audit event.
    """
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    removed: list[int] = []
    files = 0
    with db.write() as s:
        jobs = s.scalars(
            select(Job).where(
                Job.status.in_([str(x) for x in FINISHED_STATUSES]),
                Job.removed_at.is_(None),
                Job.finished_at < cutoff,
            )
        ).all()
        for job in jobs:
            files += delete_job_files(s, settings, job)
            job.removed_at = utcnow()
            removed.append(job.id)
            audit.record(s, action="cleanup", actor=actor, project=job.project.slug, target=f"job:{job.id}",
                         detail=f"finished {job.finished_at:%Y-%m-%d}, past {settings.retention_days} days")
    orphans = _remove_orphans(settings)
    return CleanupResult(jobs=removed, files=files, orphans=orphans)


def _remove_orphans(settings: Settings) -> int:
    """Temporary files a killed process left behind (lake .tmp-* parts; old partial job folders)."""
    now = time.time()
    count = 0
    for pattern, root in ((".tmp-*", settings.lake_dir), (".partial", settings.files_dir)):
        if not root.is_dir():
            continue
        for path in root.rglob(pattern):
            try:
                if now - path.stat().st_mtime < _ORPHAN_AGE_SECONDS:
                    continue  # may belong to a job or import in progress
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                count += 1
            except FileNotFoundError:
                continue
    return count
