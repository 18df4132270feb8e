"""Reading the lake: one Iceberg snapshot per table, its data files, and DuckDB views over exactly them.

A :class:`LakeSnapshot` fixes, for each of the four tables, the current Iceberg snapshot and the list of
its live data files at one moment. A job keeps it for its whole run, so imports, compaction and
snapshot expiry during a long export change nothing it reads (expiry never deletes files of a snapshot
a running job recorded; see :mod:`exporthub.lake.maintenance`).

DuckDB reads local files natively (``read_parquet([...])``); files on an object store are read through
a pyarrow dataset registered in DuckDB (DuckDB's own httpfs and iceberg extensions would have to be
downloaded at run time). Files are listed in id order (lowest id first), so a table reads in id order.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from exporthub.errors import LakeDamaged, LakeUnreadable
from exporthub.lake import file_lists
from exporthub.lake.catalog import filesystem, fs_path, load_table
from exporthub.lake.schemas import ID_COLUMNS, SCHEMAS, TABLES
from exporthub.settings import Settings

if TYPE_CHECKING:  # pyiceberg is imported where it is used: importing the exporters stays quick
    import pyarrow.fs as pafs
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


@dataclass(frozen=True)
class DataFileRef:
    """One Parquet data file of a table snapshot."""

    location: str  # as the catalog records it: file:///…, s3://…
    record_count: int
    size: int
    low_id: int | None  # the lowest value of the table's id column in the file
    added_snapshot_id: int | None  # the snapshot that added the file


@dataclass(frozen=True)
class TableSnapshot:
    """One table as of one Iceberg snapshot (``snapshot_id`` None: nothing was ever written)."""

    table: str
    snapshot_id: int | None
    committed_at: datetime | None
    files: tuple[DataFileRef, ...]
    iceberg: Table | None = field(default=None, compare=False, repr=False)
    # Loads the table when the snapshot came from a remembered file list (see :mod:`.file_lists`).
    loader: Callable[[], Table | None] | None = field(default=None, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return sum(f.record_count for f in self.files)

    def iceberg_table(self) -> Table | None:
        """The Iceberg table, for what needs more than the file list (its snapshot history): as it was
        loaded, or loaded now. A table loaded now may have moved on: ask it for ``snapshot_id``'s."""
        if self.iceberg is not None or self.loader is None:
            return self.iceberg
        return self.loader()


@dataclass(frozen=True)
class LakeSnapshot:
    """The four tables of a project as of one moment; see the module docstring."""

    slug: str
    tables: Mapping[str, TableSnapshot]
    filesystem: pafs.FileSystem | None = field(default=None, compare=False, repr=False)  # None: local

    @property
    def ids(self) -> dict[str, int | None]:
        """The Iceberg snapshot id of each table (None for a table never written to)."""
        return {t: self.tables[t].snapshot_id for t in TABLES}

    @property
    def version(self) -> str:
        """A short fingerprint of the snapshot ids: changes with every commit (statistics cache key)."""
        return version_of(self.slug, self.ids)

    @property
    def files(self) -> dict[str, tuple[str, ...]]:
        """Each table's data files as paths on the warehouse's file system, in id order."""
        return {t: tuple(fs_path(f.location) for f in self.tables[t].files) for t in TABLES}

    @property
    def committed_at(self) -> datetime | None:
        """When the newest of the four snapshots was committed."""
        times = [s.committed_at for s in self.tables.values() if s.committed_at is not None]
        return max(times) if times else None

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create one view per table over exactly these files (an empty table keeps its schema).

        A file DuckDB cannot read is refused as :class:`LakeDamaged` (a refusal, not a traceback)."""
        for table in TABLES:
            try:
                register_files(con, table, table, self.files[table], self.filesystem)
            except (duckdb.Error, OSError) as exc:
                raise LakeDamaged(self.slug, table) from exc


def snapshot_label(ids: Mapping[str, int | None]) -> str:
    """``zones 123, scans 456 …``: the snapshot id of each table (``none`` for a table never written)."""
    return ", ".join(f"{table} {'none' if sid is None else sid}" for table, sid in ids.items())


def register_files(
    con: duckdb.DuckDBPyConnection, view: str, table: str, paths: tuple[str, ...] | list[str],
    fs: pafs.FileSystem | None,
) -> None:
    """``CREATE VIEW view`` over Parquet files of ``table`` (local paths, or paths on ``fs``), in order."""
    if not paths:
        con.register(f"_empty_{view}", SCHEMAS[table].empty_table())
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM _empty_{view}")
    elif fs is None:
        listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet([{listing}])")
    else:
        import pyarrow.dataset as pads

        dataset = pads.dataset(list(paths), schema=SCHEMAS[table], format="parquet", filesystem=fs)
        con.register(f"_arrow_{view}", dataset)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM _arrow_{view}")


def lowest_id(table: Table, data_file: Any, id_column: str) -> int | None:
    """The lowest value of ``id_column`` in a data file, from the manifest's column bounds."""
    from pyiceberg.conversions import from_bytes

    field_ = table.schema().find_field(id_column)
    raw = (data_file.lower_bounds or {}).get(field_.field_id)
    from pyiceberg.types import PrimitiveType

    assert isinstance(field_.field_type, PrimitiveType)  # id columns are integers
    return None if raw is None else int(from_bytes(field_.field_type, raw))


def snapshot_files(table: Table, snap: Snapshot, name: str) -> tuple[DataFileRef, ...]:
    """The live data files of ``snap``, in id order (then in the order they were added)."""
    from pyiceberg.manifest import ManifestContent

    files: list[tuple[int, DataFileRef]] = []
    for manifest in snap.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            raise LakeUnreadable(
                f"Table {table.name()} has row-level delete files, which Exporthub does not read; "
                "rewrite it without deletes (e.g. compact it with the engine that wrote them)"
            )
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            f = entry.data_file
            ref = DataFileRef(
                location=f.file_path, record_count=int(f.record_count), size=int(f.file_size_in_bytes),
                low_id=lowest_id(table, f, ID_COLUMNS[name]), added_snapshot_id=entry.snapshot_id,
            )
            files.append((entry.sequence_number or 0, ref))
    files.sort(key=lambda item: (item[1].low_id is None, item[1].low_id or 0, item[0], item[1].location))
    return tuple(ref for _, ref in files)


def table_snapshot(table: Table | None, name: str, snapshot_id: int | None = None) -> TableSnapshot:
    """``name`` as of ``snapshot_id`` (default: its current snapshot)."""
    if table is None:
        return TableSnapshot(name, None, None, ())
    snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    if snap is None:
        if snapshot_id is not None:
            raise LakeUnreadable(f"Snapshot {snapshot_id} of {table.name()} no longer exists")
        return TableSnapshot(name, None, None, (), table)
    committed = datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC)
    return TableSnapshot(name, snap.snapshot_id, committed, snapshot_files(table, snap, name), table)


def snapshot(settings: Settings, slug: str, ids: Mapping[str, int | None] | None = None, *,
             loaded: Mapping[str, Table | None] | None = None) -> LakeSnapshot:
    """The project's lake now, or as of the given snapshot ids (a job's recorded ones). ``loaded``:
    the tables as :func:`load_tables` gave them a moment ago, so they are not loaded again. The lake
    now, unless ``loaded`` is given, comes from the remembered file lists where it can."""
    if ids is None and loaded is None:
        locations = file_lists.metadata_locations(settings, slug)
        tables = {name: current_table_snapshot(settings, slug, name, locations.get(name)) for name in TABLES}
    else:
        tables = {}
        for name in TABLES:
            wanted = ids.get(name) if ids is not None else None
            table = loaded[name] if loaded is not None else load_table(settings, slug, name)
            tables[name] = table_snapshot(table, name, wanted)
    fs = None if settings.lake_is_local else filesystem(settings)
    return LakeSnapshot(slug=slug, tables=tables, filesystem=fs)


def current_table_snapshot(settings: Settings, slug: str, name: str, location: str | None) -> TableSnapshot:
    """Table ``name`` as of its current metadata file ``location`` (None: never written): from the list
    remembered for that file, else loaded with pyiceberg and then remembered (see :mod:`.file_lists`)."""
    def load() -> Table | None:
        return load_table(settings, slug, name)

    if location is None:
        return TableSnapshot(name, None, None, ())  # never written to
    kept = file_lists.recall(settings, slug, name, location)
    if kept is not None:
        committed = kept["committed_at"]
        return TableSnapshot(
            name, kept["snapshot_id"], datetime.fromisoformat(committed) if committed else None,
            tuple(DataFileRef(**f) for f in kept["files"]), loader=load,
        )
    table = load()
    if table is None:
        return TableSnapshot(name, None, None, ())
    # Remembered under the file pyiceberg read, which may be newer than ``location``.
    return remember_table(settings, slug, name, table)


def remember_table(settings: Settings, slug: str, name: str, table: Table) -> TableSnapshot:
    """``table``'s current snapshot, its file list kept for the readers that come next (a writer calls
    this right after its commit, so that they need not load pyiceberg)."""
    current = table_snapshot(table, name)
    file_lists.remember(
        settings, slug, name, table.metadata_location, snapshot_id=current.snapshot_id,
        committed_at=current.committed_at, files=[asdict(f) for f in current.files],
    )
    return current


def load_tables(settings: Settings, slug: str) -> dict[str, Table | None]:
    """The project's four Iceberg tables (None for a table never written to)."""
    return {name: load_table(settings, slug, name) for name in TABLES}


def current_ids(settings: Settings, slug: str, loaded: Mapping[str, Table | None] | None = None,
                ) -> dict[str, int | None]:
    """Each table's current snapshot id (cheap: only the catalog and the tables' metadata are read)."""
    tables = loaded if loaded is not None else load_tables(settings, slug)
    return {name: (t.metadata.current_snapshot_id if t is not None else None) for name, t in tables.items()}


def version_of(slug: str, ids: Mapping[str, int | None]) -> str:
    """A short fingerprint of a project's snapshot ids."""
    text = ",".join(f"{t}={ids.get(t)}" for t in TABLES)
    return hashlib.sha1(f"{slug}|{text}".encode()).hexdigest()[:16]


def data_version(settings: Settings, slug: str) -> str:
    """The fingerprint of the project's current snapshot ids (changes with every commit)."""
    return version_of(slug, current_ids(settings, slug))


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


def open_table(settings: Settings, slug: str, name: str) -> duckdb.DuckDBPyConnection:
    """A connection with one view, ``name``, over that table's current files: for a small lookup
    (e.g. the zone codes a job's variables are checked against) without loading the other tables'
    metadata and manifests, which :func:`open_project` does (the scans table's are the big ones)."""
    location = file_lists.metadata_locations(settings, slug).get(name)
    current = current_table_snapshot(settings, slug, name, location)
    fs = None if settings.lake_is_local else filesystem(settings)
    con = connect(settings)
    try:
        register_files(con, name, name, tuple(fs_path(f.location) for f in current.files), fs)
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise LakeDamaged(slug, name) from exc
    return con


def open_project(settings: Settings, slug: str) -> tuple[duckdb.DuckDBPyConnection, LakeSnapshot]:
    """A connection with the project's tables registered over a fresh snapshot."""
    snap = snapshot(settings, slug)
    con = connect(settings)
    snap.register(con)
    return con, snap
