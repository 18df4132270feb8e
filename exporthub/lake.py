"""The project data lake: Parquet part files read with DuckDB.

Layout: ``<lake>/<project slug>/<table>/part-*.parquet``. New data is appended as new part files,
written under a temporary name that the reader's glob never matches, fsynced, then renamed, so a
reader never sees half a file. A job fixes its file list when it starts (:func:`snapshot`), so
compaction or appends during a long export do not change what it reads.

Replacing parts (compaction, ``import --replace``) never deletes or renames the old parts at once: the
new part is written with a *supersession sidecar* ``part-X.parquet.replaces`` (the names it replaces),
and the sidecar is in place before the part itself is renamed in. :func:`list_parts` hides every part
named by the sidecar of a part it can see, so the single rename of the new part swaps old for new
for every new reader, while a snapshot taken earlier still reads the old files, which stay where they
are until :func:`exporthub.compaction.purge_retired` deletes them after a grace period.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from exporthub.settings import Settings

TABLES: tuple[str, ...] = ("zones", "zone_sessions", "scans", "costs")
PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
_TMP_PREFIX = ".tmp-"  # never matches part-*.parquet
REPLACES_SUFFIX = ".replaces"  # part-X.parquet.replaces: the parts part-X supersedes (never matches the glob)

# The typed schema of each lake table. Times are UTC; ``deleted`` is a soft delete.
SCHEMAS: dict[str, pa.Schema] = {
    "zones": pa.schema(
        [
            ("zone_id", pa.int32()),
            ("code", pa.string()),
            ("name", pa.string()),
            ("area", pa.string()),
            ("parent_zone_id", pa.int32()),
            ("expected_items", pa.int32()),
            ("deleted", pa.bool_()),
        ]
    ),
    "zone_sessions": pa.schema(
        [
            ("session_id", pa.int64()),
            ("zone_id", pa.int32()),
            ("user_id", pa.int32()),
            ("kind", pa.string()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("ended_at", pa.timestamp("us", tz="UTC")),
            ("deleted", pa.bool_()),
        ]
    ),
    "scans": pa.schema(
        [
            ("scan_id", pa.int64()),
            ("zone_id", pa.int32()),
            ("session_id", pa.int64()),
            ("user_id", pa.int32()),
            ("barcode", pa.string()),
            ("quantity", pa.int32()),
            ("scanned_at", pa.timestamp("us", tz="UTC")),
            ("device", pa.string()),
            ("deleted", pa.bool_()),
        ]
    ),
    "costs": pa.schema(
        [
            ("cost_id", pa.int64()),
            ("user_id", pa.int32()),
            ("zone_id", pa.int32()),
            ("date", pa.date32()),
            ("category", pa.string()),
            ("hours", pa.float64()),
            ("rate", pa.float64()),
            ("amount", pa.float64()),
        ]
    ),
}


def project_dir(settings: Settings, slug: str) -> Path:
    return settings.lake_dir / slug


def table_dir(settings: Settings, slug: str, table: str) -> Path:
    if table not in TABLES:
        raise ValueError(f"unknown lake table {table!r}")
    return project_dir(settings, slug) / table


def all_parts(settings: Settings, slug: str, table: str) -> list[Path]:
    """Every part file on disk, in name order, including superseded ones that readers no longer see."""
    folder = table_dir(settings, slug, table)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{PART_PREFIX}*{PART_SUFFIX}") if p.is_file())


def list_parts(settings: Settings, slug: str, table: str) -> list[Path]:
    """The live part files of a table, in name order: committed and not superseded.

    The parts are listed before the sidecars are read, and a sidecar only counts when its own part
    was listed; since a sidecar is in place before its part, every listing is either all-old or all-new.
    """
    parts = all_parts(settings, slug, table)
    hidden: set[str] = set()
    for part in parts:
        replaced = read_replaces(part)
        if replaced is not None:
            hidden.update(replaced.names)
    return [p for p in parts if p.name not in hidden]


@dataclass(frozen=True)
class Replaces:
    """What a part's supersession sidecar says: the part names it replaces, and since when."""

    names: tuple[str, ...]
    retired_at: datetime


def replaces_path(part: Path) -> Path:
    return part.with_name(part.name + REPLACES_SUFFIX)


def read_replaces(part: Path) -> Replaces | None:
    """The sidecar of ``part``, or None when it supersedes nothing."""
    try:
        raw = json.loads(replaces_path(part).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return Replaces(names=tuple(raw["replaces"]), retired_at=datetime.fromisoformat(raw["retired_at"]))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(
    settings: Settings,
    slug: str,
    table: str,
    data: pa.Table,
    *,
    name: str | None = None,
    replaces: Sequence[str] = (),
) -> Path:
    """Write one part file atomically and return its final path.

    The table is cast to the lake schema first (raises ``pa.ArrowInvalid`` when it does not fit).
    The file is written under a temporary name, fsynced and renamed into place. With ``replaces``
    (part names in the same table), a supersession sidecar is committed first, so the one rename of
    the new part also hides those parts from every later :func:`list_parts`; the old files stay.
    """
    folder = table_dir(settings, slug, table)
    folder.mkdir(parents=True, exist_ok=True)
    data = data.select(SCHEMAS[table].names).cast(SCHEMAS[table])
    final = folder / (name or f"{PART_PREFIX}{_part_stamp()}{PART_SUFFIX}")
    tmp = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}{PART_SUFFIX}"
    side_tmp = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}{REPLACES_SUFFIX}"
    try:
        pq.write_table(data, tmp, compression="zstd", row_group_size=256 * 1024)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if replaces:
            body = {"replaces": sorted(set(replaces)), "retired_at": datetime.now(UTC).isoformat()}
            with open(side_tmp, "w", encoding="utf-8") as fh:
                json.dump(body, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(side_tmp, replaces_path(final))
            fsync_dir(folder)
        os.replace(tmp, final)
        fsync_dir(folder)
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
    return final


def _part_stamp() -> str:
    # Sortable by time of writing, unique across processes.
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def data_version(settings: Settings, slug: str) -> str:
    """A cheap fingerprint of the lake's committed files; changes whenever data is appended or compacted."""
    parts: list[str] = []
    for table in TABLES:
        for p in list_parts(settings, slug, table):
            st = p.stat()
            parts.append(f"{table}/{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LakeSnapshot:
    """The part files of every table as they were at one moment."""

    slug: str
    files: Mapping[str, tuple[str, ...]]

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create one view per table over exactly these files (an empty table keeps its schema)."""
        for table in TABLES:
            files = self.files.get(table, ())
            if files:
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{listing}])")
            else:
                empty = SCHEMAS[table].empty_table()
                con.register(f"_empty_{table}", empty)
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _empty_{table}")


def snapshot(settings: Settings, slug: str) -> LakeSnapshot:
    return LakeSnapshot(
        slug=slug, files={t: tuple(str(p) for p in list_parts(settings, slug, t)) for t in TABLES}
    )


_duckdb_init_lock = threading.Lock()


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with this process's resource limits.

    ``threads``, ``memory_limit`` and ``temp_directory`` are set on every connection so that several
    workers and the web app fit on one machine together.
    """
    spill = settings.tmp_dir / "duckdb"
    with _duckdb_init_lock:
        spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": settings.duckdb_threads,
            "memory_limit": settings.duckdb_memory_limit,
            "temp_directory": str(spill),
        },
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def open_project(settings: Settings, slug: str) -> tuple[duckdb.DuckDBPyConnection, LakeSnapshot]:
    """A connection with the project's tables registered over a fresh snapshot."""
    con = connect(settings)
    snap = snapshot(settings, slug)
    snap.register(con)
    return con, snap
