"""The project data lake: Apache Iceberg tables, one namespace per project, read with DuckDB.

- :mod:`~exporthub.lake.schemas`: the four tables and their typed schemas;
- :mod:`~exporthub.lake.catalog`: pyiceberg's SQL catalog in the metadata DB, and the warehouse's files;
- :mod:`~exporthub.lake.snapshot`: a snapshot of the four tables and DuckDB views over its files;
- :mod:`~exporthub.lake.commit`: writing data files and committing them, with conflict detection;
- :mod:`~exporthub.lake.incremental`: "only new since last export" as an incremental append scan;
- :mod:`~exporthub.lake.maintenance`: compaction and snapshot expiry that never break a reader;
- :mod:`~exporthub.lake.migrate`: converting a part-file lake of earlier versions.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import update

from exporthub.db import Database
from exporthub.errors import LakeUnreadable
from exporthub.lake.commit import append_rows
from exporthub.lake.schemas import ID_COLUMNS, SCHEMAS, TABLES, conform
from exporthub.lake.snapshot import (
    DataFileRef,
    LakeSnapshot,
    TableSnapshot,
    connect,
    current_ids,
    data_version,
    open_project,
    open_table,
    register_files,
    snapshot,
    version_of,
)

__all__ = [
    "ID_COLUMNS", "SCHEMAS", "append_rows", "TABLES", "DataFileRef", "LakeSnapshot", "LakeUnreadable",
    "TableSnapshot", "conform", "connect", "current_ids", "data_version", "version_of", "fsync_dir", "open_project",
    "open_table", "record_job_snapshot", "register_files", "snapshot",
]


def record_job_snapshot(db: Database, job_id: int, snap: LakeSnapshot) -> None:
    """Store on the job the snapshot ids it reads, at once: maintenance keeps their files meanwhile."""
    from exporthub.models import Job

    with db.write() as s:
        s.execute(update(Job).where(Job.id == job_id).values(lake_snapshot=snap.ids))


def fsync_dir(folder: Path) -> None:
    """fsync a directory, so a rename inside it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
