""""Only new since last export": an incremental append scan of the scans table, per zone.

An export of scans over all time records, per zone it exported, the scans snapshot it read (an
``export_sessions`` row). The zone's *watermark* for the next export of that type is that snapshot,
taken from the last delivered export that covered the zone: completed, sessions not reset, and not
removed in this project (jobs restored from a backup come back hidden, yet they were delivered).

The zone's new rows are then the rows of the data files that *append* snapshots added after the
watermark, up to the snapshot the export reads. Compaction's ``replace`` snapshots add nothing new
(they rewrite rows already there), ``overwrite`` never happens to scans, and the appended files are
read even if compaction has merged them away since: maintenance keeps every snapshot from the oldest
watermark on, so their files stay. A zone never exported gets everything.

A watermark without a snapshot (recorded before the lake was Iceberg) or whose snapshot is not in the
table's history (e.g. a restored project, whose snapshots are new) falls back to the highest scan id
exported: scan ids rise with ingestion, so ``scan_id > W`` finds the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from exporthub.lake.catalog import fs_path
from exporthub.lake.snapshot import LakeSnapshot, lowest_id, register_files
from exporthub.models import ExportSession, Job, Project
from exporthub.states import JobStatus

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


@dataclass(frozen=True)
class Watermark:
    """Where a zone's last delivered export (of one type) stopped."""

    snapshot_id: int | None  # the scans snapshot it read; None for records older than the Iceberg lake
    scan_id: int  # the highest scan id it exported


def export_watermarks(s: Session, project_id: int, export_type: str) -> dict[int, Watermark]:
    """Zone id -> the watermark of the last delivered export of ``export_type`` that covered it."""
    rows = s.execute(
        select(ExportSession.zone_id, ExportSession.snapshot_id, ExportSession.watermark_scan_id)
        .join(Job, Job.id == ExportSession.job_id)
        .join(Project, Project.id == Job.project_id)
        .where(
            ExportSession.project_id == project_id,
            ExportSession.export_type == export_type,
            Job.status == str(JobStatus.COMPLETED),
            Job.export_sessions_reset.is_(False),
            # A job older than its project was restored from a backup: hidden, but it was delivered.
            or_(Job.removed_at.is_(None), Job.created_at < Project.created_at),
        )
        .order_by(ExportSession.id)
    ).all()
    return {int(zone): Watermark(snap, int(mark)) for zone, snap, mark in rows}  # the newest wins


def ancestry(table: Table, head: int | None) -> list[Snapshot]:
    """The snapshots from the table's first retained one up to ``head``, oldest first."""
    chain: list[Snapshot] = []
    current = table.snapshot_by_id(head) if head is not None else None
    while current is not None:
        chain.append(current)
        parent = current.parent_snapshot_id
        current = table.snapshot_by_id(parent) if parent is not None else None
    return chain[::-1]


def _appended_files(table: Table, snap: Snapshot) -> list[str]:
    """The data files ``snap`` itself added (for an append: the new rows)."""
    from pyiceberg.manifest import ManifestEntryStatus

    files: list[tuple[str, int]] = []
    for manifest in snap.manifests(table.io):
        if manifest.added_snapshot_id != snap.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snap.snapshot_id:
                files.append((entry.data_file.file_path, lowest_id(table, entry.data_file, "scan_id") or 0))
    return [path for path, _ in sorted(files, key=lambda f: (f[1], f[0]))]


@dataclass(frozen=True)
class NewScans:
    """The view of new scans :func:`register_new_scans` made, and how each zone was treated."""

    view: str
    by_snapshot: tuple[int, ...]  # zones read as an append scan from their snapshot
    by_scan_id: tuple[int, ...]  # zones that fell back to their scan-id watermark


def register_new_scans(
    con: duckdb.DuckDBPyConnection, snap: LakeSnapshot, marks: Mapping[int, Watermark], *,
    view: str = "new_scans",
) -> NewScans:
    """Create ``view``: the scans of ``snap`` that are new for their zone (see the module docstring)."""
    from pyiceberg.table.snapshots import Operation

    scans = snap.tables["scans"]
    table = scans.iceberg_table()
    chain = ancestry(table, scans.snapshot_id) if table is not None else []
    position = {s.snapshot_id: i for i, s in enumerate(chain)}
    by_snapshot = {z: position[m.snapshot_id] for z, m in marks.items() if m.snapshot_id in position}
    by_scan_id = {z: m.scan_id for z, m in marks.items() if z not in by_snapshot}

    parts: list[str] = []
    # Zones without a usable snapshot: the live files, never-exported zones whole, the rest by scan id.
    live = [f"zone_id IS NULL OR zone_id NOT IN ({_ints(marks)})" if marks else "true"]
    live += [f"(zone_id = {z} AND scan_id > {int(w)})" for z, w in sorted(by_scan_id.items())]
    parts.append(f"SELECT * FROM scans WHERE {' OR '.join(live)}")
    # Zones with a snapshot: the files of every later append snapshot, for the zones it is new for.
    for i, later in enumerate(chain):
        zones = sorted(z for z, start in by_snapshot.items() if start < i)
        if not zones or _operation(later) != Operation.APPEND:
            continue
        files = [fs_path(p) for p in _appended_files(table, later)]  # type: ignore[arg-type]
        if files:
            name = f"_{view}_{i}"
            register_files(con, name, "scans", files, snap.filesystem)
            parts.append(f"SELECT * FROM {name} WHERE zone_id IN ({_ints(zones)})")
    con.execute(f"CREATE OR REPLACE VIEW {view} AS " + " UNION ALL ".join(parts))
    return NewScans(view=view, by_snapshot=tuple(sorted(by_snapshot)), by_scan_id=tuple(sorted(by_scan_id)))


def _operation(snap: Snapshot) -> object:
    return snap.summary.operation if snap.summary is not None else None


def _ints(values: object) -> str:
    return ", ".join(str(int(v)) for v in values)  # type: ignore[attr-defined]


def retained_from(table: Table, snapshot_ids: set[int]) -> int | None:
    """The oldest of ``snapshot_ids`` in the table's current history (maintenance keeps it and all later)."""
    chain = ancestry(table, table.metadata.current_snapshot_id)
    for snap in chain:
        if snap.snapshot_id in snapshot_ids:
            return snap.snapshot_id
    return None
