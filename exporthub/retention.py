"""Retention: delete files and finished jobs past the retention age, and orphaned temporary files.

Run by the worker's periodic task and by ``exporthub cleanup``. It never touches an active job (nor
a finished child of an active parent, whose files the parent still needs), and each run writes
exactly one ``cleanup`` audit event that lists what it removed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from exporthub import audit
from exporthub.db import Database
from exporthub.job_files import delete_stored, job_files_of, mark_files_deleted
from exporthub.models import File, Job, utcnow
from exporthub.settings import Settings
from exporthub.states import ACTIVE_STATUSES, FINISHED_STATUSES
from exporthub.storage import PARTIAL_DIR, get_store

# A temporary file younger than this may belong to work in progress (an import, a job that is just
# publishing its files), so only older ones count as orphaned.
ORPHAN_AGE_SECONDS = 3600
_ACTIVE = [str(s) for s in ACTIVE_STATUSES]


@dataclass(frozen=True)
class CleanupResult:
    jobs: list[int]
    files: int
    orphans: int
    expired_files: list[int] = field(default_factory=list)

    def describe(self, retention_days: int) -> str:
        jobs = ", ".join(f"job:{j}" for j in self.jobs) or "none"
        text = f"retention {retention_days} days; removed {len(self.jobs)} jobs ({jobs}), {self.files} files"
        if self.expired_files:
            text += f" (expired on their own: {', '.join(f'file:{f}' for f in self.expired_files)})"
        return text + f", {self.orphans} orphaned temporary files"


def cleanup(
    db: Database, settings: Settings, *, actor: str | None = None, now: datetime | None = None
) -> CleanupResult:
    """Remove finished jobs older than the retention age with their files, files past their own
    ``expires_at``, and orphaned temporary files; never anything of an active job.

    Writes exactly one ``cleanup`` audit event (also when nothing was due), whose detail lists the
    removed job ids. Safe to run from several processes at once: each job and file is claimed by one
    conditional update, so no two runs report the same removal. Files leave the disk only after the
    commit that removed them. ``now`` is for tests.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days)
    stamp = now.replace(tzinfo=UTC).timestamp() if now.tzinfo is None else now.timestamp()
    orphans = _remove_orphans(db, settings, stamp)
    doomed: list[str] = []
    folders: list[tuple[str, str, int]] = []
    with db.write() as s:
        active_ids = select(Job.id).where(Job.status.in_(_ACTIVE))
        due = select(Job.id).where(
            Job.status.in_([str(x) for x in FINISHED_STATUSES]),
            Job.removed_at.is_(None),
            Job.finished_at < cutoff,
            Job.parent_id.is_(None) | Job.parent_id.not_in(active_ids),
        )
        removed = sorted(s.scalars(
            update(Job).where(Job.id.in_(due), Job.removed_at.is_(None)).values(removed_at=now)
            .returning(Job.id).execution_options(synchronize_session=False)
        ))
        for job in s.scalars(select(Job).where(Job.id.in_(removed))):
            doomed.extend(mark_files_deleted(s, job))
            folders.append(job_files_of(job))
        files = len(doomed)
        expired_rows = s.execute(
            update(File).where(File.deleted_at.is_(None), File.expires_at.is_not(None), File.expires_at < now,
                               File.job_id.not_in(active_ids))
            .values(deleted_at=now).returning(File.id, File.storage_key).execution_options(synchronize_session=False)
        ).all()
        expired = sorted(r.id for r in expired_rows)
        doomed.extend(r.storage_key for r in expired_rows)
        result = CleanupResult(jobs=removed, files=files + len(expired), orphans=orphans, expired_files=expired)
        # One event for the whole run, in the same transaction as the removals it describes.
        audit.record(s, action="cleanup", actor=actor, detail=result.describe(settings.retention_days))
    delete_stored(settings, doomed, folders)
    return result


def _remove_orphans(db: Database, settings: Settings, now: float) -> int:
    """Files a killed or failed process left behind.

    - a job's local work folder when the job is no longer active (a killed worker's output);
    - files in the store under a job's prefix that no ``files`` row records, when the job is not
      active and the file is old enough (a worker killed between putting its output and recording it).

    The lake needs nothing here: Iceberg maintenance deletes files no snapshot references.
    """
    with db.read() as s:
        active = set(s.scalars(select(Job.id).where(Job.status.in_(_ACTIVE))))
        known_jobs = set(s.scalars(select(Job.id)))
        recorded = set(s.scalars(select(File.storage_key).where(File.deleted_at.is_(None))))
    count = 0
    store = get_store(settings)
    for folder in _job_folders(store.work_root):
        job_id = int(folder.name)
        work = folder / PARTIAL_DIR
        if job_id in active or not work.is_dir():
            continue  # never touch an active job, whatever its folder looks like
        if job_id in known_jobs:  # its job finished (or was reaped): nothing will store its output
            shutil.rmtree(work, ignore_errors=True)
            count += 1
        else:  # a job created after our look at the table may be writing it right now
            count += _remove_if_old(work, now)
    for info in list(store.iter_files()):
        parts = info.key.split("/")
        if len(parts) != 4 or not (parts[2].isascii() and parts[2].isdigit()):
            continue  # not a job's file: nothing of ours
        job_id = int(parts[2])
        if job_id in active or (job_id in known_jobs and info.key in recorded):
            continue
        if now - info.mtime_ns / 1e9 >= ORPHAN_AGE_SECONDS:
            store.delete(info.key)
            count += 1
    for folder in _job_folders(store.work_root):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty
    return count


def _job_folders(root: Path) -> Iterable[Path]:
    """``<project>/<type>/<job id>/`` folders (only those whose last part is a job id)."""
    if not root.is_dir():
        return []
    return [p for p in root.glob("*/*/*") if p.is_dir() and not p.is_symlink() and p.name.isascii()
            and p.name.isdigit()]


def _remove_if_old(path: Path, now: float) -> int:
    try:
        if now - path.lstat().st_mtime < ORPHAN_AGE_SECONDS:
            return 0
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return 1
    except FileNotFoundError:
        return 0
