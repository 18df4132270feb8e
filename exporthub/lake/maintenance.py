"""Lake maintenance through pyiceberg: compaction, snapshot expiry and orphan files.

**Compaction** rewrites runs of small data files into larger ones, sorted by id, as one ``replace``
snapshot per table: the rows do not change, so readers and incremental scans see nothing new.

**Snapshot expiry** drops old snapshots and deletes the files only they referenced. It keeps:

* the current snapshot, and every snapshot younger than :data:`RETAIN_RECENT` (the web app's
  statistics and estimates read a snapshot for seconds without recording it, and a job records its
  snapshot just after it opened it);
* from the oldest snapshot still *needed* on, every snapshot of the history: a running job's recorded
  snapshot (its files), and for scans, each zone's watermark snapshot of "only new since last export"
  (an incremental append scan walks the chain from there to now and reads the files those appends
  added, even when compaction merged them since; expiring any link of that chain would lose them).

**Orphan files** are data and metadata files under a table's folder that no snapshot references and
that are older than :data:`ORPHAN_AGE` (a writer that died between writing its files and committing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot
from sqlalchemy import select

from exporthub.db import Database
from exporthub.lake.catalog import filesystem, fs_path, load_table, project_slugs
from exporthub.lake.commit import commit, live_data_files, with_retries, write_data_files
from exporthub.lake.incremental import ancestry, retained_from
from exporthub.lake.schemas import ID_COLUMNS, TABLES
from exporthub.lake.snapshot import connect, register_files, remember_table, table_snapshot
from exporthub.settings import Settings

log = logging.getLogger(__name__)

RETAIN_RECENT = timedelta(hours=1)
ORPHAN_AGE = timedelta(days=1)
# Files below this size are merged; a merged file gathers small files up to about TARGET_FILE_BYTES.
SMALL_FILE_BYTES = 32 * 1024 * 1024
TARGET_FILE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    rows_rewritten: int
    snapshots_expired: int
    files_deleted: int


@dataclass(frozen=True)
class MaintenanceReport:
    project: str
    tables: tuple[TableMaintenance, ...] = field(default_factory=tuple)

    @property
    def files_deleted(self) -> int:
        return sum(t.files_deleted for t in self.tables)

    @property
    def snapshots_expired(self) -> int:
        return sum(t.snapshots_expired for t in self.tables)

    def summary(self) -> str:
        files = "; ".join(f"{t.table}: {t.files_before} -> {t.files_after} files" for t in self.tables)
        return (f"{files or 'no tables'}; {self.snapshots_expired} snapshots expired, "
                f"{self.files_deleted} unreferenced files deleted")

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "snapshots_expired": self.snapshots_expired,
            "files_deleted": self.files_deleted,
            "tables": {t.table: {"files_before": t.files_before, "files_after": t.files_after,
                                 "rows_rewritten": t.rows_rewritten, "snapshots_expired": t.snapshots_expired,
                                 "files_deleted": t.files_deleted} for t in self.tables},
        }


# ---------------------------------------------------------------------- what must stay


def needed_snapshots(db: Database, slug: str) -> dict[str, set[int]]:
    """Per table, the snapshot ids readers still need: running jobs' and the scans watermarks."""
    from exporthub.models import ExportSession, Job, Project
    from exporthub.states import JobStatus

    needed: dict[str, set[int]] = {t: set() for t in TABLES}
    with db.read() as s:
        project_id = s.scalar(select(Project.id).where(Project.slug == slug))
        if project_id is None:
            return needed
        for ids in s.scalars(select(Job.lake_snapshot).where(
            Job.project_id == project_id, Job.status == str(JobStatus.RUNNING), Job.lake_snapshot.is_not(None)
        )):
            for table, sid in (ids or {}).items():
                if table in needed and sid is not None:
                    needed[table].add(int(sid))
        # Every watermark, even of a reset or removed job: cheap to keep, and never wrong.
        for sid in s.scalars(select(ExportSession.snapshot_id).where(
            ExportSession.project_id == project_id, ExportSession.snapshot_id.is_not(None)
        ).distinct()):
            needed["scans"].add(int(sid or 0))  # never 0: the query keeps only set ids
    return needed


# ---------------------------------------------------------------------- compaction


def _bins(files: list[Any]) -> list[list[Any]]:
    """Consecutive small files grouped up to the target size; single files are left alone."""
    groups: list[list[Any]] = []
    current: list[Any] = []
    size = 0
    for f in files:
        if f.size >= SMALL_FILE_BYTES:
            groups.append(current)
            current, size = [], 0
            continue
        if current and size + f.size > TARGET_FILE_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    groups.append(current)
    return [g for g in groups if len(g) >= 2]


def compact_table(settings: Settings, slug: str, name: str) -> tuple[int, int, int]:
    """Rewrite the table's runs of small files; returns (files before, files after, rows rewritten)."""

    def attempt(_: int) -> tuple[int, int, int]:
        table = load_table(settings, slug, name)
        if table is None:
            return 0, 0, 0
        snap = table_snapshot(table, name)
        by_location = {f.file_path: f for f in live_data_files(table)}
        groups = _bins(list(snap.files))
        if not groups:
            return len(snap.files), len(snap.files), 0
        fs = None if settings.lake_is_local else filesystem(settings)
        con = connect(settings)
        removed: list[DataFile] = []
        rows, chunks = 0, []
        try:
            for i, group in enumerate(groups):
                register_files(con, f"_bin{i}", name, [fs_path(f.location) for f in group], fs)
                data = con.sql(f"SELECT * FROM _bin{i} ORDER BY {ID_COLUMNS[name]}").to_arrow_table()
                if data.num_rows != sum(f.record_count for f in group):  # never publish a lossy merge
                    raise RuntimeError(f"compaction of {slug}.{name} read {data.num_rows} rows, "
                                       f"expected {sum(f.record_count for f in group)}")
                chunks.append(data)
                removed.extend(by_location[f.location] for f in group)
                rows += data.num_rows
        finally:
            con.close()
        added = write_data_files(table, name, chunks)
        after = commit(table, added, removed=removed, operation=Operation.REPLACE, action="compact")
        return len(snap.files), len(remember_table(settings, slug, name, after).files), rows

    return with_retries(attempt, what="Compaction")


# ---------------------------------------------------------------------- expiry and orphans


def _references(table: Table, snapshots: Iterable[Snapshot]) -> set[str]:
    """Every file the snapshots reference: manifest lists, manifests and live data files."""
    paths: set[str] = set()
    for snap in snapshots:
        paths.add(snap.manifest_list)
        for manifest in snap.manifests(table.io):
            paths.add(manifest.manifest_path)
            paths.update(e.data_file.file_path
                         for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True))
    return paths


def expire_table(settings: Settings, table: Table, needed: set[int], *, now: datetime | None = None) -> tuple[int, int]:
    """Expire what no reader needs (see the module docstring); returns (snapshots expired, files deleted)."""
    now = now or datetime.now(UTC)
    current = table.metadata.current_snapshot_id
    if current is None:
        return 0, 0
    chain = ancestry(table, current)
    keep_from = retained_from(table, needed)
    cut = next(i for i, s in enumerate(chain) if s.snapshot_id == keep_from) if keep_from else len(chain) - 1
    young = now - RETAIN_RECENT
    keep = {s.snapshot_id for s in chain[cut:]}
    expired = [s for s in table.metadata.snapshots
               if s.snapshot_id not in keep and s.snapshot_id not in needed
               and datetime.fromtimestamp(s.timestamp_ms / 1000, UTC) < young]
    if not expired:
        return 0, 0
    retained = [s for s in table.metadata.snapshots if s.snapshot_id not in {e.snapshot_id for e in expired}]
    doomed = _references(table, expired) - _references(table, retained)
    try:
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in expired]).commit()
    except CommitFailedException:
        return 0, 0  # a writer committed meanwhile: the next round expires them
    # Files go only after the commit: until then the expired snapshots still name them.
    for path in sorted(doomed):
        table.io.delete(path)
    return len(expired), len(doomed)


def delete_orphans(settings: Settings, table: Table, *, now: datetime | None = None) -> int:
    """Delete files under the table's folder that nothing references and that are older than ORPHAN_AGE."""
    now = now or datetime.now(UTC)
    fs = filesystem(settings)
    referenced = {fs_path(p) for p in _references(table, table.metadata.snapshots)}
    referenced.update(fs_path(e.metadata_file) for e in table.metadata.metadata_log)
    referenced.add(fs_path(table.metadata_location))
    root = fs_path(table.metadata.location)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except FileNotFoundError:
        return 0
    deleted = 0
    for info in infos:
        if info.type != pafs.FileType.File or info.path in referenced or info.mtime is None:
            continue
        mtime = info.mtime if info.mtime.tzinfo else info.mtime.replace(tzinfo=UTC)
        if now - mtime >= ORPHAN_AGE:
            fs.delete_file(info.path)
            deleted += 1
    return deleted


def maintain_project(db: Database, settings: Settings, slug: str, *, now: datetime | None = None) -> MaintenanceReport:
    """Compact, expire and delete orphans in every table of the project (safe while jobs run)."""
    needed = needed_snapshots(db, slug)
    results = []
    for name in TABLES:
        if load_table(settings, slug, name) is None:
            continue
        before, after, rows = compact_table(settings, slug, name)
        table = load_table(settings, slug, name)
        assert table is not None
        expired, deleted = expire_table(settings, table, needed[name], now=now)
        table = load_table(settings, slug, name)
        assert table is not None
        deleted += delete_orphans(settings, table, now=now)
        results.append(TableMaintenance(name, before, after, rows, expired, deleted))
    return MaintenanceReport(project=slug, tables=tuple(results))


def maintain_all(db: Database, settings: Settings) -> list[MaintenanceReport]:
    """Maintain every project's lake: the function the worker's schedule calls.

    A project whose maintenance fails (e.g. imports kept committing) is logged and left for the next
    round; the others go on.
    """
    reports = []
    for slug in project_slugs(settings):
        try:
            reports.append(maintain_project(db, settings, slug))
        except Exception:  # noqa: BLE001 - one project must not stop the others
            log.warning("lake maintenance of %s failed; retried next round", slug, exc_info=True)
    return reports
