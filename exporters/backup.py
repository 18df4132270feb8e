"""Backup: one zip with the project's lake and metadata, and a manifest of every entry's sha256.

The layout and its verification live in :mod:`exporthub.backup_format`; :mod:`exporthub.restore`
reads it back.
Everything is streamed into the archive in 1 MiB chunks and hashed on the way, so memory stays
constant whatever the lake's size. Parquet files are stored (they are compressed already); the JSON
metadata is deflated. The lake is the job's snapshot: each table's Iceberg data files of that snapshot
(plain Parquet), in id order; commits during the backup are not in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from exporters._result import removing_on_error
from exporters.registry import BaseExporter
from exporthub import __version__
from exporthub import backup_format as layout
from exporthub.context import JobContext
from exporthub.db import get_database
from exporthub.lake import TABLES
from exporthub.models import ExportSession, Job, Membership, Project, User

_CHUNK = 1 << 20


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class _Archive:
    """A zip being written, remembering each entry's size and sha256 for the manifest."""

    def __init__(self, path: Path, stamp: dt.datetime) -> None:
        self.zip = zipfile.ZipFile(path, "w", allowZip64=True)
        self.date_time = stamp.astimezone(dt.UTC).timetuple()[:6]
        self.entries: list[dict[str, Any]] = []

    def add(self, name: str, chunks: Iterable[bytes], *, compress: bool) -> None:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        digest, size = hashlib.sha256(), 0
        with self.zip.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        self.entries.append({"name": name, "size": size, "sha256": digest.hexdigest()})


def _file_chunks(ctx: JobContext, path: str, on_bytes: Any) -> Iterator[bytes]:
    """A lake file's bytes, from local disk or through the object store's file system."""
    assert ctx.snapshot is not None
    fs = ctx.snapshot.filesystem
    with (open(path, "rb") if fs is None else fs.open_input_stream(path)) as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            on_bytes(len(chunk))
            yield chunk


def _json(value: Any) -> list[bytes]:
    return [json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")]


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "export_type": job.export_type, "status": job.status, "progress": job.progress,
        "variables": job.variables, "username": job.user.username, "parent_id": job.parent_id,
        "run_at": _iso(job.run_at), "cancel_requested": job.cancel_requested,
        "export_sessions_reset": job.export_sessions_reset, "removed_at": _iso(job.removed_at),
        "created_at": _iso(job.created_at), "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at), "attempt": job.attempt, "error": job.error,
    }


def _session_row(e: ExportSession) -> dict[str, Any]:
    return {"job_id": e.job_id, "export_type": e.export_type, "zone_id": e.zone_id,
            "watermark_scan_id": e.watermark_scan_id, "scan_count": e.scan_count,
            "created_at": _iso(e.created_at)}


def _write_metadata(ctx: JobContext, archive: _Archive, lake_user_ids: set[int]) -> None:
    """Project, memberships, referenced users, jobs and export sessions, from one read transaction."""
    with get_database(ctx.settings).read() as s:
        project = s.get(Project, ctx.project.id)
        assert project is not None
        archive.add(layout.PROJECT_ENTRY, _json({
            "slug": project.slug, "name": project.name, "timezone": project.timezone,
            "status": project.status,
            "created_at": _iso(project.created_at), "closed_at": _iso(project.closed_at),
            "published_at": _iso(project.published_at),
        }), compress=True)
        members = s.execute(
            select(User.username, Membership.role, User.id).join(User, User.id == Membership.user_id)
            .where(Membership.project_id == project.id).order_by(User.username)
        ).all()
        archive.add(layout.MEMBERSHIPS_ENTRY, _json([{"username": u, "role": r} for u, r, _ in members]),
                    compress=True)
        job_users = set(s.scalars(select(Job.user_id).where(Job.project_id == project.id).distinct()))
        wanted = lake_user_ids | job_users | {i for _, _, i in members}
        users = s.scalars(select(User).where(User.id.in_(wanted)).order_by(User.id)).all()
        archive.add(layout.USERS_ENTRY, _json([
            {"id": u.id, "username": u.username, "display_name": u.display_name, "email": u.email,
             "active": u.active, "deleted_at": _iso(u.deleted_at), "hourly_rate": u.hourly_rate,
             "can_log_in": u.password_hash is not None, "in_lake": u.id in lake_user_ids}
            for u in users  # never a password hash: a backup must not carry credentials
        ]), compress=True)
        jobs = s.scalars(select(Job).where(Job.project_id == project.id).order_by(Job.id)).yield_per(1000)
        archive.add(layout.JOBS_ENTRY, _jsonl(_job_row(j) for j in jobs), compress=True)
        sessions = s.scalars(
            select(ExportSession).where(ExportSession.project_id == project.id).order_by(ExportSession.id)
        ).yield_per(5000)
        archive.add(layout.EXPORT_SESSIONS_ENTRY, _jsonl(_session_row(e) for e in sessions), compress=True)


class BackupExporter(BaseExporter):
    export_type = "backup"
    formats = ("zip",)

    def run(self, ctx: JobContext) -> None:
        assert ctx.snapshot is not None
        con = ctx.sql()
        rows = {t: ctx.snapshot.tables[t].rows for t in TABLES}
        people = ("SELECT user_id FROM scans UNION SELECT user_id FROM zone_sessions"
                  " UNION SELECT user_id FROM costs")
        lake_user_ids = {int(r[0]) for r in con.execute(people).fetchall() if r[0] is not None}
        parts = [(t, i, path, ref.size) for t in TABLES
                 for i, (path, ref) in enumerate(zip(ctx.snapshot.files[t], ctx.snapshot.tables[t].files, strict=True))]
        total = sum(size for *_, size in parts) or 1
        done = 0

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            ctx.progress(2 + 93 * done / total)

        path = ctx.output_path("zip")
        with removing_on_error(path):
            archive = _Archive(path, ctx.started_at)
            with archive.zip:
                for table, index, part, _size in parts:
                    entry = layout.lake_entry(table, f"part-{index:05d}.parquet")
                    archive.add(entry, _file_chunks(ctx, part, on_bytes), compress=False)
                _write_metadata(ctx, archive, lake_user_ids)
                ctx.check_cancelled()
                manifest = {
                    "format": layout.FORMAT, "version": layout.FORMAT_VERSION,
                    "generator_version": __version__,
                    "project": ctx.project.slug, "job_id": ctx.job_id, "created_at": _iso(ctx.started_at),
                    "lake_rows": rows, "lake_snapshot": ctx.snapshot.ids, "entries": archive.entries,
                }
                archive.zip.writestr(layout.MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
        counted = ", ".join(f"{n:,} {t}" for t, n in rows.items())
        ctx.info(f"Backed up {len(parts)} lake files ({total:,} bytes; {counted}) and "
                 f"{len(archive.entries) - len(parts)} metadata entries")
        ctx.progress(100)


EXPORTER = BackupExporter()
