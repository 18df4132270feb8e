"""Restore a project backup (see :mod:`exporthub.backup_format`) as a new project.

:func:`restore_backup` verifies *every* entry against the manifest before it touches anything, then
restores the project under a new slug:

- the lake is written into the new project's Iceberg namespace, one commit per table, with user ids
  rewritten only where the target instance numbers a user differently (users are matched by username);
- a person in the lake whose username the target does not know is created as field staff (no
  password, so no login), so the lake keeps its people; they are reported;
- memberships are mapped by username; unknown usernames are skipped and reported, because a backup
  must never create a login account or grant a role;
- finished jobs come back as removed (their files are not in the backup) with their export
  sessions, so incremental exports carry on from the same watermarks (as highest scan ids: the
  snapshots of the source project do not exist here); a job's owner that the target
  does not know is replaced by the restoring admin. Jobs that were still active are skipped.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import delete, select

from exporthub import audit, lake
from exporthub.access import get_user, is_usable
from exporthub.backup_checks import check_contents, check_sizes
from exporthub.backup_format import (
    EXPORT_SESSIONS_ENTRY,
    JOBS_ENTRY,
    MEMBERSHIPS_ENTRY,
    PROJECT_ENTRY,
    USERS_ENTRY,
    Manifest,
    parse_lake_entry,
    verify_backup,
)
from exporthub.db import Database
from exporthub.errors import (
    BackupCorrupted,
    ExporthubError,
    InvalidValue,
    PermissionDenied,
    RestoreFailed,
    RestoreRefused,
)
from exporthub.lake.catalog import drop_project, ensure_table, has_data
from exporthub.lake.commit import commit, write_data_files
from exporthub.models import ExportSession, Job, JobLog, Membership, Project, User, utcnow
from exporthub.settings import Settings
from exporthub.states import FINISHED_STATUSES, JobStatus, LogLevel
from exporthub.validation import validate_slug

USER_COLUMNS = {"zone_sessions": "user_id", "scans": "user_id", "costs": "user_id"}

@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore_backup` did, for the CLI and the audit trail."""

    project: str
    source_project: str
    status: str
    lake_files: int
    lake_rows: dict[str, int]
    memberships: list[tuple[str, str]]
    unknown_usernames: list[str]  # memberships skipped because the target has no such user
    created_users: list[str]  # people in the lake created as field staff
    reassigned_jobs: int  # jobs whose owner was unknown, now owned by the restoring admin
    jobs: int
    skipped_active_jobs: int
    export_sessions: int
    remapped_user_ids: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["memberships"] = [{"username": u, "role": r} for u, r in self.memberships]
        return data


def restore_backup(
    db: Database, settings: Settings, path: Path, *, project_slug: str, actor: str, name: str | None = None
) -> RestoreReport:
    """Restore the backup at ``path`` as the new project ``project_slug``, acting as ``actor`` (a username).

    Raises :class:`NotFound` (unknown user), :class:`PermissionDenied` (not a global admin),
    :class:`RestoreRefused` (bad or taken slug), :class:`BackupCorrupted` (checksums),
    :class:`BackupInvalid` (sizes, or a value an import would refuse; see
    :mod:`exporthub.backup_checks`) or :class:`RestoreFailed`; each refusal is audited once and
    leaves nothing behind.
    """
    try:
        with db.read() as s:
            user = get_user(s, actor)
            if not (is_usable(user) and user.is_admin):
                raise PermissionDenied("Permission denied: only a global admin can restore a backup")
            _check_slug(s, settings, project_slug)
        if name is not None and (not name.strip() or len(name) > 200 or not name.isprintable()):
            raise RestoreRefused("A project name is printable text of 1 to 200 characters")
        # Nothing is unpacked before the sizes pass, and nothing is written before every value does.
        check_sizes(Path(path), settings)
        manifest = verify_backup(path)
        check_contents(Path(path), manifest)
        try:
            return _restore(db, settings, Path(path), manifest, project_slug, actor, name)
        except (duckdb.Error, pa.ArrowException, OSError, ValueError, KeyError, TypeError) as exc:
            # _restore undid its own writes; what is left is to say so in plain words, once.
            raise RestoreFailed(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    except ExporthubError as exc:
        audit.record_refusal(db, exc, action="restore", actor=actor, project=project_slug,
                             target=f"project:{project_slug}")
        raise


def restore_stored_backup(
    db: Database, settings: Settings, file_id: int, *, project_slug: str, actor: str, name: str | None = None
) -> RestoreReport:
    """Restore a backup that a ``backup`` job left in the file store (local or object storage), by its
    file id: it is copied to a private temporary file, checked against the sha256 recorded when it was
    made, and restored as :func:`restore_backup` does (same refusals). A file that is unknown, removed,
    not a backup's zip or changed in the store is refused with :class:`RestoreRefused`."""
    from exporthub.models import File
    from exporthub.storage import get_store, sha256_of

    with db.read() as s:
        row = s.get(File, file_id)
        usable = (row is not None and row.deleted_at is None and row.export_type == "backup"
                  and row.name.endswith(".zip"))
        key, sha256 = (row.storage_key, row.sha256) if usable and row is not None else ("", "")
    if not usable:
        exc = RestoreRefused(f"File {file_id} is not a backup in the file store")
        audit.record_refusal(db, exc, action="restore", actor=actor, project=project_slug,
                             target=f"file:{file_id}")
        raise exc
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    local = settings.tmp_dir / f"restore-{file_id}-{os.getpid()}-{threading.get_ident()}.zip"
    try:
        try:
            get_store(settings).copy_to(key, local)
            with open(local, "rb") as fh:
                _, digest = sha256_of(fh)
        except OSError as exc:
            digest = f"unreadable: {exc}"
        if digest != sha256:
            refused = RestoreRefused(f"File {file_id} is missing from the file store or changed since it was made")
            audit.record_refusal(db, refused, action="restore", actor=actor, project=project_slug,
                                 target=f"file:{file_id}")
            raise refused
        return restore_backup(db, settings, local, project_slug=project_slug, actor=actor, name=name)
    finally:
        local.unlink(missing_ok=True)


def _check_slug(s: Any, settings: Settings, slug: str) -> None:
    try:
        validate_slug(slug)  # the same rule as creating a project
    except InvalidValue as exc:
        raise RestoreRefused(exc.message) from None
    if s.scalar(select(Project.id).where(Project.slug == slug)) is not None:
        raise RestoreRefused(f"Project already exists: {slug}")
    if has_data(settings, slug):
        raise RestoreRefused(f"The lake has tables for {slug} already")


def _read_json(archive: zipfile.ZipFile, entry: str) -> Any:
    return json.loads(archive.read(entry))


def _read_jsonl(archive: zipfile.ZipFile, entry: str) -> Iterator[dict[str, Any]]:
    with archive.open(entry) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _restore(db: Database, settings: Settings, path: Path, manifest: Manifest, slug: str, actor: str,
             name: str | None) -> RestoreReport:
    with zipfile.ZipFile(path) as archive:
        project = _read_json(archive, PROJECT_ENTRY)
        users = {int(u["id"]): u for u in _read_json(archive, USERS_ENTRY)}
        memberships = _read_json(archive, MEMBERSHIPS_ENTRY)
        lake_user_ids = {i for i, u in users.items() if u.get("in_lake")}
        created, id_map = _ensure_lake_users(db, users, lake_user_ids)
        try:
            files, rows = _write_lake(settings, archive, manifest, slug, id_map)
            if rows != {t: manifest.lake_rows.get(t, 0) for t in lake.TABLES}:
                raise BackupCorrupted(f"the restored lake has {rows} rows, the manifest {manifest.lake_rows}")
            with db.write() as s:
                if s.scalar(select(Project.id).where(Project.slug == slug)) is not None:
                    raise RestoreRefused(f"Project already exists: {slug}")
                report = _write_metadata(s, archive, project, memberships, slug, actor, name)
                audit.record(s, action="restore", actor=actor, project=slug, target=f"project:{slug}",
                             detail=f"from a backup of {manifest.source_project} ({path.name}); "
                                    f"unknown usernames: {', '.join(report['unknown']) or 'none'}")
        except BaseException:
            drop_project(settings, slug)
            _drop_users(db, created)
            raise
    return RestoreReport(
        project=slug, source_project=manifest.source_project, status=report["status"], lake_files=files,
        lake_rows=rows, memberships=report["memberships"], unknown_usernames=report["unknown"],
        created_users=sorted(users[i]["username"] for i in created), reassigned_jobs=report["reassigned"],
        jobs=report["jobs"], skipped_active_jobs=report["skipped"], export_sessions=report["sessions"],
        remapped_user_ids=any(old != new for old, new in id_map.items()),
    )


def _ensure_lake_users(db: Database, users: dict[int, dict[str, Any]],
                       lake_user_ids: set[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Map every lake user id to this instance's id (by username), creating unknown people as field staff.

    Returns (created: backup id -> new id, mapping: backup id -> target id).
    """
    created: dict[int, int] = {}
    mapping: dict[int, int] = {}
    with db.write() as s:
        known = {name: uid for name, uid in s.execute(select(User.username, User.id))}
        for old_id in sorted(lake_user_ids):
            u = users[old_id]
            if u["username"] in known:
                mapping[old_id] = known[u["username"]]
                continue
            user = User(username=u["username"], display_name=u.get("display_name") or u["username"],
                        email=u.get("email"), password_hash=None, active=bool(u.get("active", True)),
                        deleted_at=_time(u.get("deleted_at")), is_admin=False,
                        hourly_rate=float(u.get("hourly_rate") or 0.0), created_at=utcnow())
            s.add(user)
            s.flush()
            created[old_id] = mapping[old_id] = user.id
    return created, mapping


def _drop_users(db: Database, created: dict[int, int]) -> None:
    if created:
        with db.write() as s:
            s.execute(delete(User).where(User.id.in_(list(created.values()))))


def _write_lake(settings: Settings, archive: zipfile.ZipFile, manifest: Manifest, slug: str,
                id_map: dict[int, int]) -> tuple[int, dict[str, int]]:
    """Each table's entries, in order, as one commit into the new namespace; (files, rows per table)."""
    remap = any(old != new for old, new in id_map.items())
    entries: dict[str, list[str]] = {t: [] for t in lake.TABLES}
    for entry in manifest.entries:
        parsed = parse_lake_entry(entry)
        if parsed is not None:
            entries[parsed[0]].append(entry)
    rows: dict[str, int] = {}
    for table in lake.TABLES:
        names = sorted(entries[table])  # part-00000, part-00001…: the id order they were written in
        counted = [0]

        def chunks(table: str = table, names: list[str] = names, counted: list[int] = counted) -> Iterator[pa.Table]:
            for name in names:
                with archive.open(name) as fh:
                    source = pq.ParquetFile(fh)
                    for i in range(source.num_row_groups):
                        group = lake.conform(table, source.read_row_group(i))
                        if remap and table in USER_COLUMNS:
                            group = _remap_user_ids(group, USER_COLUMNS[table], id_map)
                        counted[0] += group.num_rows
                        yield group

        target = ensure_table(settings, slug, table)
        commit(target, write_data_files(target, table, chunks()), action="restore")
        rows[table] = counted[0]
    return sum(len(v) for v in entries.values()), rows


def _remap_user_ids(data: pa.Table, column: str, id_map: dict[int, int]) -> pa.Table:
    """Replace user ids in one chunk. Ids the map does not know (a lake row whose user no longer
    existed when the backup was made) and nulls (costs without a user) are kept as they are."""
    old = pa.array(list(id_map), pa.int32())
    new = pa.array([id_map[k] for k in id_map], pa.int32())
    index = data.schema.get_field_index(column)
    original = data[column]
    found = pc.index_in(original, value_set=old)
    mapped = pc.if_else(pc.is_null(found), original, pc.take(new, found))
    return data.set_column(index, data.schema.field(index), mapped.cast(pa.int32()))


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _write_metadata(
    s: Any, archive: zipfile.ZipFile, project: dict[str, Any], memberships: list[dict[str, Any]],
    slug: str, actor: str, name: str | None,
) -> dict[str, Any]:
    """Project, memberships, finished jobs and their export sessions, in the caller's transaction."""
    known = {name: uid for name, uid in s.execute(select(User.username, User.id))}
    now = utcnow()
    new_project = Project(slug=slug, name=name or project["name"], timezone=project["timezone"],
                          status=project["status"], created_at=now, closed_at=_time(project.get("closed_at")),
                          published_at=_time(project.get("published_at")))
    s.add(new_project)
    s.flush()
    restored, unknown = [], []
    for m in memberships:
        if m["username"] in known:
            s.add(Membership(user_id=known[m["username"]], project_id=new_project.id, role=m["role"]))
            restored.append((m["username"], m["role"]))
        else:
            unknown.append(m["username"])
    job_ids: dict[int, int] = {}
    parents: list[tuple[Job, int]] = []
    skipped = reassigned = 0
    for j in _read_jsonl(archive, JOBS_ENTRY):
        if JobStatus(j["status"]) not in FINISHED_STATUSES:
            skipped += 1
            continue
        owner = known.get(j["username"])
        if owner is None:
            owner, reassigned = known[actor], reassigned + 1
        job = Job(project_id=new_project.id, export_type=j["export_type"], status=j["status"],
                  progress=int(j.get("progress") or 0), variables=j.get("variables") or {}, user_id=owner,
                  run_at=_time(j.get("run_at")), cancel_requested=bool(j.get("cancel_requested")),
                  export_sessions_reset=bool(j.get("export_sessions_reset")), removed_at=now,
                  created_at=_time(j["created_at"]) or now, started_at=_time(j.get("started_at")),
                  finished_at=_time(j.get("finished_at")), attempt=int(j.get("attempt") or 0),
                  error=j.get("error"))
        s.add(job)
        s.flush()
        job_ids[int(j["id"])] = job.id
        if j.get("parent_id") is not None:
            parents.append((job, int(j["parent_id"])))
        s.add(JobLog(job_id=job.id, time=now, level=str(LogLevel.INFO),
                     message=f"Restored by {actor} from job {j['id']} of {project['slug']} "
                             f"(started by {j['username']}); its files are not part of a backup"))
    for job, old_parent in parents:
        job.parent_id = job_ids.get(old_parent)
    sessions = 0
    for e in _read_jsonl(archive, EXPORT_SESSIONS_ENTRY):
        new_job = job_ids.get(int(e["job_id"]))
        if new_job is None:
            continue
        # No snapshot id: the source project's snapshots do not exist here; the scan id carries on.
        s.add(ExportSession(job_id=new_job, project_id=new_project.id, export_type=e["export_type"],
                            zone_id=int(e["zone_id"]), watermark_scan_id=int(e["watermark_scan_id"]),
                            scan_count=int(e["scan_count"]), created_at=_time(e["created_at"]) or now))
        sessions += 1
    return {"status": new_project.status, "memberships": restored, "unknown": sorted(set(unknown)),
            "reassigned": reassigned, "jobs": len(job_ids), "skipped": skipped, "sessions": sessions}
