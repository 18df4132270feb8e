"""Lake maintenance: compaction, the per-project writer lock, and purging superseded parts.

How parts are retired without readers ever seeing a partial state
-----------------------------------------------------------------
Readers list a table's parts with :func:`exporthub.lake.list_parts`, and a running job keeps the
list it took when it started (:func:`exporthub.lake.snapshot`). So old parts are never renamed or
deleted when they are replaced. Instead, the replacing part (a compacted part, or the new data of an
``import --replace``) is written with a supersession sidecar naming the parts it replaces, and the
sidecar is committed before the part's own rename. That one rename swaps old for new for every new
listing; a snapshot taken earlier still finds the old files where they were.

The old files are deleted later by :func:`purge_retired` (run at the start of every compaction and
import), once both hold:

* the retirement is older than the grace period (:data:`GRACE`, one hour): readers outside the job
  table, such as the web app's statistics and estimates, hold a snapshot for seconds;
* no job of the project that is still running started before the retirement: a long export keeps
  its files for as long as it runs.

A sidecar lists everything its part supersedes, including what the superseded parts themselves
superseded and is still on disk, so files can be purged in any order without an old part showing
through again.

Writers (imports, compaction) of one project take :func:`project_lock`, a ``flock`` on a file
under ``<lake>/.locks/``, so two writers never read the same "current" state and both act on it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import func, select

from exporthub import audit, lake
from exporthub.access import get_project
from exporthub.accounts import Actor, actor_name, authorize
from exporthub.db import Database
from exporthub.errors import ExporthubError
from exporthub.models import Job, Project, utcnow
from exporthub.settings import Settings
from exporthub.states import JobStatus

GRACE = timedelta(hours=1)
# Parts below this size are merged; a merged part gathers small parts up to about TARGET_PART_BYTES.
SMALL_PART_BYTES = 32 * 1024 * 1024
TARGET_PART_BYTES = 128 * 1024 * 1024
LOCK_TIMEOUT_SECONDS = 60.0

# The column each table is sorted by when merged (scan ids rise with ingestion).
ID_COLUMNS: dict[str, str] = {
    "zones": "zone_id",
    "zone_sessions": "session_id",
    "scans": "scan_id",
    "costs": "cost_id",
}


class LakeBusy(ExporthubError):
    """Another import or compaction of the same project holds the lock."""


@contextmanager
def project_lock(settings: Settings, slug: str, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the project's writer lock; raises :class:`LakeBusy` after ``timeout`` seconds."""
    folder = settings.lake_dir / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{slug}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LakeBusy(
                        f"Another import or compaction of {slug} is running; try again later"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def supersede_names(parts: Sequence[Path]) -> list[str]:
    """The names a part replacing ``parts`` must list: them, and what they superseded still on disk."""
    names: set[str] = set()
    for part in parts:
        names.add(part.name)
        previous = lake.read_replaces(part)
        if previous is not None:
            names.update(n for n in previous.names if (part.parent / n).exists())
    return sorted(names)


def purge_retired(
    db: Database, settings: Settings, slug: str, *, grace: timedelta = GRACE, now: datetime | None = None
) -> int:
    """Delete superseded parts whose retirement is past ``grace`` and that no running job may still
    read. Returns how many part files were deleted. Call with the project lock held."""
    now = now or utcnow()
    with db.read() as s:
        running_since = s.scalar(
            select(func.min(func.coalesce(Job.started_at, Job.created_at)))
            .join(Project, Project.id == Job.project_id)
            .where(Project.slug == slug, Job.status == str(JobStatus.RUNNING))
        )
    deleted = 0
    for table in lake.TABLES:
        live = {p.name for p in lake.list_parts(settings, slug, table)}
        for part in lake.all_parts(settings, slug, table):
            retired = lake.read_replaces(part)
            if retired is None or now - retired.retired_at < grace:
                continue
            if running_since is not None and running_since <= retired.retired_at:
                continue  # a job that may hold the old list is still running
            for name in retired.names:
                target = part.parent / name
                if name in live or not target.exists():
                    continue
                target.unlink(missing_ok=True)
                lake.replaces_path(target).unlink(missing_ok=True)
                deleted += 1
        _remove_orphan_sidecars(lake.table_dir(settings, slug, table), now, grace)
    return deleted


def _remove_orphan_sidecars(folder: Path, now: datetime, grace: timedelta) -> None:
    """Sidecars whose part never arrived (a writer killed between the two renames)."""
    if not folder.is_dir():
        return
    for side in folder.glob(f"{lake.PART_PREFIX}*{lake.PART_SUFFIX}{lake.REPLACES_SUFFIX}"):
        part = side.with_name(side.name[: -len(lake.REPLACES_SUFFIX)])
        try:
            if not part.exists() and now.timestamp() - side.stat().st_mtime >= grace.total_seconds():
                side.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


# ---------------------------------------------------------------------- compaction


@dataclass(frozen=True)
class TableCompaction:
    table: str
    parts_before: int
    parts_after: int
    rows: int  # rows in the parts that were merged


@dataclass(frozen=True)
class CompactionReport:
    project: str
    tables: tuple[TableCompaction, ...]
    purged: int = 0
    merged_parts: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "purged": self.purged,
            "tables": {
                t.table: {"parts_before": t.parts_before, "parts_after": t.parts_after, "rows_merged": t.rows}
                for t in self.tables
            },
        }

    def summary(self) -> str:
        return "; ".join(f"{t.table}: {t.parts_before} -> {t.parts_after} parts" for t in self.tables)


def _bins(parts: Sequence[Path]) -> list[list[Path]]:
    """Consecutive small parts grouped up to the target size; single parts are left alone."""
    groups: list[list[Path]] = []
    current: list[Path] = []
    size = 0
    for part in parts:
        part_size = part.stat().st_size
        if part_size >= SMALL_PART_BYTES:
            groups.append(current)
            current, size = [], 0
            continue
        if current and size + part_size > TARGET_PART_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(part)
        size += part_size
    groups.append(current)
    return [g for g in groups if len(g) >= 2]


def _compact_table(settings: Settings, slug: str, table: str) -> tuple[TableCompaction, list[str]]:
    parts = lake.list_parts(settings, slug, table)
    merged_names: list[str] = []
    rows = 0
    con = lake.connect(settings)
    try:
        for group in _bins(parts):
            expected = sum(pq.ParquetFile(p).metadata.num_rows for p in group)
            listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in group)
            data = con.sql(
                f"SELECT * FROM read_parquet([{listing}]) ORDER BY {ID_COLUMNS[table]}"
            ).to_arrow_table()
            if data.num_rows != expected:  # never publish a merge that lost or gained rows
                raise ExporthubError(
                    f"Compaction of {slug}/{table} read {data.num_rows} rows, expected {expected}"
                )
            merged = lake.write_part(settings, slug, table, data, replaces=supersede_names(group))
            merged_names.append(merged.name)
            rows += expected
    finally:
        con.close()
    after = len(lake.list_parts(settings, slug, table))
    return TableCompaction(table=table, parts_before=len(parts), parts_after=after, rows=rows), merged_names


def compact(
    db: Database,
    settings: Settings,
    actor: Actor,
    slug: str,
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    grace: timedelta = GRACE,
) -> CompactionReport:
    """Merge each table's small part files into larger ones, then purge parts retired long enough ago.

    Readers never see a partial state and running jobs keep reading the files they started with (see
    the module docstring). Raises :class:`PermissionDenied`, :class:`NotFound` or :class:`LakeBusy`;
    writes one audit event either way.
    """
    try:
        with db.read() as s:
            authorize(s, actor)
            get_project(s, slug)
        with project_lock(settings, slug, timeout=lock_timeout):
            tables: list[TableCompaction] = []
            merged: list[str] = []
            for table in lake.TABLES:
                result, names = _compact_table(settings, slug, table)
                tables.append(result)
                merged.extend(names)
            purged = purge_retired(db, settings, slug, grace=grace)
        report = CompactionReport(
            project=slug, tables=tuple(tables), purged=purged, merged_parts=tuple(merged)
        )
    except ExporthubError as exc:
        audit.record_refusal(db, exc, action="compact", actor=actor_name(actor), project=slug)
        raise
    with db.write() as s:
        audit.record(
            s,
            action="compact",
            actor=actor_name(actor),
            project=slug,
            detail=f"{report.summary()}; {purged} retired parts purged",
        )
    return report
