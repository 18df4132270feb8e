"""Converting a part-file lake of earlier versions into Iceberg tables with identical rows.

The old format: ``<lake>/<slug>/<table>/part-*.parquet``, read in name order, where a part with a
``part-X.parquet.replaces`` sidecar (JSON ``{"replaces": [names], ...}``) hides the parts it names.

:func:`migrate_project` moves the project's old folder to ``<lake>/.pre-iceberg/<slug>`` (one rename,
so the Iceberg tables can take their place), appends each table's live parts, by lowest id, as one commit,
then checks that every table has the same rows (count and an order-free checksum of every column).
On any failure the new tables are dropped and the old folder is moved back. The old folder stays in
``.pre-iceberg`` for the operator to delete once satisfied.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from exporthub.errors import LakeMigrationFailed
from exporthub.lake.catalog import drop_project, ensure_table, has_data
from exporthub.lake.commit import commit, write_data_files
from exporthub.lake.schemas import ID_COLUMNS, SCHEMAS, TABLES
from exporthub.lake.snapshot import connect, snapshot
from exporthub.settings import Settings

LEGACY_DIR = ".pre-iceberg"
_PART_GLOB = "part-*.parquet"
_REPLACES = ".replaces"


@dataclass(frozen=True)
class MigrationReport:
    project: str
    rows: dict[str, int]
    parts: dict[str, int]
    moved_to: str

    def summary(self) -> str:
        counted = ", ".join(f"{n:,} {t} from {self.parts[t]} parts" for t, n in self.rows.items())
        return f"{self.project}: {counted}; the old files are in {self.moved_to}"

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "rows": self.rows, "parts": self.parts, "moved_to": self.moved_to}


def live_parts(folder: Path) -> list[Path]:
    """The parts a reader of the old format saw: name order, minus those a visible sidecar retired."""
    parts = sorted(p for p in folder.glob(_PART_GLOB) if p.is_file()) if folder.is_dir() else []
    hidden: set[str] = set()
    for part in parts:
        sidecar = part.with_name(part.name + _REPLACES)
        if sidecar.is_file():
            hidden.update(json.loads(sidecar.read_text(encoding="utf-8"))["replaces"])
    return [p for p in parts if p.name not in hidden]


def _lowest_id(part: Path, table: str) -> int:
    """The smallest id in a part, from its Parquet statistics (no rows are read)."""
    meta = pq.ParquetFile(part).metadata
    column = meta.schema.to_arrow_schema().get_field_index(ID_COLUMNS[table])
    lows = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    return min((s.min for s in lows if s is not None and s.has_min_max), default=0)


def legacy_projects(settings: Settings) -> list[str]:
    """Slugs of projects that still have a part-file lake under the local lake folder."""
    root = settings.lake_dir
    if not root.is_dir():
        return []
    return sorted(
        d.name for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(any((d / t).glob(_PART_GLOB)) for t in TABLES)
    )


def _batches(parts: list[Path], table: str) -> Iterator[pa.Table]:
    for part in parts:
        yield pq.read_table(part).select(SCHEMAS[table].names).cast(SCHEMAS[table])


def _fingerprint(con: Any, relation: str, table: str) -> tuple[Any, ...]:
    """Row count and an order-free checksum over every column of ``relation``."""
    cols = ", ".join(f'"{c}"' for c in SCHEMAS[table].names)
    return tuple(con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {relation}").fetchall()[0])


def _listing(paths: list[Path]) -> str:
    return "read_parquet([" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "])"


def migrate_project(settings: Settings, slug: str) -> MigrationReport:
    """Convert one project's part-file lake (see the module docstring). Raises :class:`LakeMigrationFailed`."""
    source = settings.lake_dir / slug
    if has_data(settings, slug):
        raise LakeMigrationFailed(
            f"{slug} has Iceberg tables already and old part files in {source}; move one of them away"
        )
    moved = settings.lake_dir / LEGACY_DIR / slug
    if moved.exists():
        raise LakeMigrationFailed(f"{moved} exists already (an earlier migration?); move it away first")
    moved.parent.mkdir(parents=True, exist_ok=True)
    source.rename(moved)
    rows: dict[str, int] = {}
    parts: dict[str, int] = {}
    try:
        expected = {}
        con = connect(settings)
        try:
            for table in TABLES:
                # Old readers went by name, and a compaction's part sorted after newer ones; the lake
                # keeps tables in id order, so the parts go in by their lowest id.
                by_id = sorted((_lowest_id(p, table), p.name, p) for p in live_parts(moved / table))
                live = [p for _, _, p in by_id]
                parts[table] = len(live)
                expected[table] = _fingerprint(con, _listing(live), table) if live else (0, 0)
                target = ensure_table(settings, slug, table)
                if live:
                    commit(target, write_data_files(target, table, _batches(live, table)), action="migrate-lake")
            snap = snapshot(settings, slug)
            snap.register(con)
            for table in TABLES:
                got = _fingerprint(con, table, table)
                if got != expected[table]:
                    raise LakeMigrationFailed(f"{slug}.{table}: migrated {got[0]} rows whose checksum differs "
                                              f"from the {expected[table][0]} rows of the part files")
                rows[table] = int(got[0])
        finally:
            con.close()
    except BaseException as exc:
        drop_project(settings, slug)
        shutil.rmtree(source, ignore_errors=True)
        moved.rename(source)
        if isinstance(exc, LakeMigrationFailed):
            raise
        if isinstance(exc, Exception):
            raise LakeMigrationFailed(f"Could not migrate the lake of {slug}, it is unchanged: {exc}") from exc
        raise
    return MigrationReport(project=slug, rows=rows, parts=parts, moved_to=str(moved))


def migrate_all(settings: Settings) -> list[MigrationReport]:
    """Migrate every project that still has a part-file lake (``exporthub migrate-lake`` and ``up``)."""
    return [migrate_project(settings, slug) for slug in legacy_projects(settings)]
