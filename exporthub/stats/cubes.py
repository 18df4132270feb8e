"""Kept scan cubes: one small Parquet aggregate per scans data file, combined when a view is drawn.

The statistics' scan cube (:func:`exporthub.stats.queries.scan_cube`) groups a scope's scans by
15-minute UTC bucket, zone, user and session. Grouping millions of scans is most of a preview's cost,
and most of it is the same every time: Iceberg data files never change once written. So each scans
data file gets its *file cube* once: the same grouping plus ``deleted``, with no filter, written as
Parquet under ``data_dir/stats_cubes/<project>/``, named by a hash of the file's location, size, row
count and the snapshot that added it. A view then reduces the cubes of its snapshot's files with the
scope's conditions on the cube's columns (:meth:`~exporthub.stats.filters.Scope.cube_where`), which
selects exactly the scans the raw query selects: window bounds are local midnights, which fall on
bucket edges, and zone, user and deleted are cube columns.

An append adds files, so only the new files get cubes; a replace import or a compaction writes new
files, so their snapshot gets new cubes and the old ones are simply never named again (they are
removed once they are an hour old, so a reader of an older snapshot still finds them meanwhile).
One project's cubes are never another's: the name hashes the data file's location, which is inside
the project's own Iceberg table, and the folder is the project's. Any failure (a read-only data dir,
a cube removed under a reader) falls back to grouping the raw scans.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import duckdb

from exporthub.lake.catalog import fs_path
from exporthub.lake.snapshot import DataFileRef, LakeSnapshot, register_files
from exporthub.settings import Settings
from exporthub.stats.filters import Scope, bind, bucket_of

log = logging.getLogger(__name__)

CUBE_FORMAT = 1  # part of every cube's name: change it when the cube's columns change
KEEP_UNUSED_SECONDS = 3600


def cube_dir(settings: Settings, slug: str) -> Path:
    return settings.data_dir / "stats_cubes" / slug


def cube_name_of(ref: DataFileRef) -> str:
    text = f"{CUBE_FORMAT}|{ref.location}|{ref.size}|{ref.record_count}|{ref.added_snapshot_id}"
    return hashlib.sha1(text.encode()).hexdigest()[:32] + ".parquet"


def file_cubes(con: duckdb.DuckDBPyConnection, settings: Settings, snap: LakeSnapshot) -> list[Path]:
    """The cube of every scans data file of ``snap``, building the missing ones (and pruning old ones)."""
    folder = cube_dir(settings, snap.slug)
    paths, built = [], False
    for ref in snap.tables["scans"].files:
        path = folder / cube_name_of(ref)
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _build(con, ref, path, snap)
            built = True
        paths.append(path)
    if built:
        prune(folder, {p.name for p in paths})
    return paths


def _build(con: duckdb.DuckDBPyConnection, ref: DataFileRef, path: Path, snap: LakeSnapshot) -> None:
    register_files(con, "_cube_source", "scans", [fs_path(ref.location)], snap.filesystem)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    target = str(tmp).replace("'", "''")
    try:
        con.execute(f"""
            COPY (
                SELECT {bucket_of('scanned_at')} AS bucket, zone_id, user_id, session_id, deleted,
                       count(*) AS n, sum(quantity)::BIGINT AS q, max(epoch_us(scanned_at)) AS last_us
                FROM _cube_source GROUP BY ALL
            ) TO '{target}' (FORMAT parquet, COMPRESSION zstd)
        """)
        os.replace(tmp, path)  # whole or not at all, also with a reader or a builder beside us
    finally:
        tmp.unlink(missing_ok=True)
        con.execute("DROP VIEW IF EXISTS _cube_source")


def prune(folder: Path, keep: set[str], *, older_than: float = KEEP_UNUSED_SECONDS) -> None:
    """Remove cubes not in ``keep`` last written more than ``older_than`` seconds ago."""
    limit = time.time() - older_than
    for path in folder.iterdir():
        try:
            if path.name not in keep and path.stat().st_mtime < limit:
                path.unlink()
        except OSError:  # another process pruned it first
            continue


def provide(con: duckdb.DuckDBPyConnection, settings: Settings, snap: LakeSnapshot, scope: Scope,
            name: str) -> bool:
    """Create the temporary table ``name`` (the scope's scan cube) from the kept file cubes.

    Returns False, creating nothing, when it cannot (a window off bucket edges, no cube dir): the
    caller then groups the raw scans as before.
    """
    where = scope.cube_where("c")
    if where is None or not snap.tables["scans"].files:
        return False
    try:
        paths = file_cubes(con, settings, snap)
        listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
        sql = f"""
            CREATE TEMP TABLE {name} AS
            SELECT c.bucket, c.zone_id, c.user_id, c.session_id,
                   sum(c.n)::BIGINT AS n, sum(c.q) AS q, max(c.last_us) AS last_us
            FROM read_parquet([{listing}]) c WHERE {where}
            GROUP BY ALL
        """
        con.execute(sql, bind(sql, scope))
    except (OSError, duckdb.Error) as exc:
        log.warning("statistics: kept scan cubes unusable for %s (%s); grouping the scans", snap.slug, exc)
        con.execute(f"DROP TABLE IF EXISTS {name}")
        return False
    return True
