"""Read-only snapshots of jobs and files, detached from the ORM, for the UI, the CLI and JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from exporthub.models import File, Job, JobLog
from exporthub.states import JobStatus, LogLevel


@dataclass(frozen=True)
class FileView:
    id: int
    job_id: int
    name: str
    storage_key: str  # where it lives in the file store (exporthub.storage)
    location: str  # a local path, or the object's URL when the store is object storage
    size: int
    sha256: str
    content_type: str
    download_count: int
    created_at: datetime

    @property
    def path(self) -> Path:
        """The file on local disk (only meaningful with the local file store; read through
        :func:`exporthub.storage.get_store` otherwise)."""
        return Path(self.location)

    @classmethod
    def of(cls, f: File, locate: Callable[[str], str]) -> FileView:
        return cls(
            id=f.id,
            job_id=f.job_id,
            name=f.name,
            storage_key=f.storage_key,
            location=_locate(locate, f.storage_key),
            size=f.size,
            sha256=f.sha256,
            content_type=f.content_type,
            download_count=f.download_count,
            created_at=f.created_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.location,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
        }


@dataclass(frozen=True)
class LogView:
    time: datetime
    level: LogLevel
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"time": iso(self.time), "level": str(self.level), "message": self.message}


@dataclass(frozen=True)
class JobView:
    id: int
    export_type: str
    project: str
    user: str
    status: JobStatus
    progress: int
    variables: dict[str, Any]
    warnings: tuple[str, ...]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_at: datetime | None
    parent_id: int | None
    cancel_requested: bool
    export_sessions_reset: bool
    removed: bool
    files: tuple[FileView, ...] = ()
    log: tuple[LogView, ...] = ()
    children: tuple[JobView, ...] = ()
    export_session_count: int = 0
    lake_snapshot: dict[str, int | None] | None = None  # the Iceberg snapshot ids the job read
    user_display: str = ""  # the requester's display name (``user`` is the username)

    @property
    def has_warnings(self) -> bool:
        return bool(self.warnings)

    def to_json(self, *, with_log: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "export_type": self.export_type,
            "project": self.project,
            "user": self.user,
            "status": str(self.status),
            "progress": int(self.progress),
            "warnings": list(self.warnings),
            "error": self.error,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "run_at": iso(self.run_at),
            "variables": dict(self.variables),
            "parent_id": self.parent_id,
            "cancel_requested": self.cancel_requested,
            "export_session_count": self.export_session_count,
            "export_sessions_reset": self.export_sessions_reset,
            "removed": self.removed,
            "files": [f.to_json() for f in self.files],
        }
        if with_log:
            data["log"] = [entry.to_json() for entry in self.log]
            data["children"] = [child.to_json() for child in self.children]
            data["lake_snapshot"] = self.lake_snapshot
        return data


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def job_view(
    job: Job,
    *,
    files: list[File],
    logs: list[JobLog],
    locate: Callable[[str], str],
    with_log: bool = False,
    children: tuple[JobView, ...] = (),
    export_session_count: int = 0,
) -> JobView:
    warnings = tuple(entry.message for entry in logs if entry.level == LogLevel.WARNING)
    return JobView(
        id=job.id,
        export_type=job.export_type,
        project=job.project.slug,
        user=job.user.username,
        user_display=job.user.display_name or job.user.username,
        status=JobStatus(job.status),
        progress=job.progress,
        variables=dict(job.variables or {}),
        warnings=warnings,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        run_at=job.run_at,
        parent_id=job.parent_id,
        cancel_requested=job.cancel_requested,
        export_sessions_reset=job.export_sessions_reset,
        removed=job.removed_at is not None,
        files=tuple(FileView.of(f, locate) for f in files if f.deleted_at is None),
        log=tuple(LogView(e.time, LogLevel(e.level), e.message) for e in logs) if with_log else (),
        children=children,
        export_session_count=export_session_count,
        lake_snapshot=dict(job.lake_snapshot) if job.lake_snapshot else None,
    )


def _locate(locate: Callable[[str], str], key: str) -> str:
    try:
        return locate(key)
    except OSError:  # a key that leaves the store (never served): shown as recorded
        return key
