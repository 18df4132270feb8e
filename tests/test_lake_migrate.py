"""``exporthub migrate-lake``: a part-file lake of earlier versions becomes Iceberg tables with the same rows.

The old lake is written here by a small private copy of the old writer: ``part-*.parquet`` files in
name order, and ``part-X.parquet.replaces`` sidecars that hide the parts they name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli import main
from exporthub import lake
from exporthub.lake.catalog import drop_project, has_data
from exporthub.lake.migrate import LEGACY_DIR, LakeMigrationFailed, legacy_projects, migrate_project

SLUG = "demo-open"


def write_old_part(folder: Path, name: str, data: pa.Table, replaces: tuple[str, ...] = ()) -> None:
    """The old format's writer: the part, and (for a compaction or replace) its sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, folder / name, compression="zstd")
    if replaces:
        body = {"replaces": list(replaces), "retired_at": datetime.now(UTC).isoformat()}
        (folder / f"{name}.replaces").write_text(json.dumps(body), encoding="utf-8")


def rows(con, table: str) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


@pytest.fixture
def old_lake(demo_hub):  # type: ignore[no-untyped-def]
    """demo-open turned back into a part-file lake; returns the hub and each table's rows."""
    con, _ = lake.open_project(demo_hub.settings, SLUG)
    tables = {t: con.sql(f"SELECT * FROM {t} ORDER BY {lake.ID_COLUMNS[t]}").to_arrow_table() for t in lake.TABLES}
    expected = {t: rows(con, t) for t in lake.TABLES}
    con.close()
    drop_project(demo_hub.settings, SLUG)
    root = demo_hub.settings.lake_dir / SLUG
    for table in ("zones", "zone_sessions", "costs"):
        write_old_part(root / table, "part-00000.parquet", tables[table])
    scans = tables["scans"]
    n = scans.num_rows
    # Three parts, then a compaction of the first two whose sidecar retires them (they stay on disk).
    write_old_part(root / "scans", "part-00000.parquet", scans.slice(0, n // 3))
    write_old_part(root / "scans", "part-00001.parquet", scans.slice(n // 3, n // 3))
    write_old_part(root / "scans", "part-00002.parquet", scans.slice(2 * (n // 3)))
    write_old_part(root / "scans", "part-00003-merged.parquet", scans.slice(0, 2 * (n // 3)),
                   replaces=("part-00000.parquet", "part-00001.parquet"))
    # A retired part whose rows must not come back: it is named by the sidecar above.
    return demo_hub, expected


def test_migrate_lake_gives_identical_rows_and_keeps_the_old_files_aside(old_lake, capsys):
    hub, expected = old_lake
    assert legacy_projects(hub.settings) == [SLUG] and not has_data(hub.settings, SLUG)
    assert main(["migrate-lake", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["migrate_lake"]
    assert report["project"] == SLUG and report["parts"]["scans"] == 2  # the merged part and the third
    con, snap = lake.open_project(hub.settings, SLUG)
    assert {t: rows(con, t) for t in lake.TABLES} == expected
    assert report["rows"] == {t: len(expected[t]) for t in lake.TABLES}
    # One commit per table; the scans still read in id order.
    ids = [r[0] for r in con.execute("SELECT scan_id FROM scans").fetchall()]
    assert ids == sorted(ids)
    assert all(s.committed_at is not None for s in snap.tables.values())
    moved = hub.settings.lake_dir / LEGACY_DIR / SLUG
    assert (moved / "scans" / "part-00000.parquet").exists() and report["moved_to"] == str(moved)
    # Done once: nothing is left to migrate, and an export reads the new lake.
    assert legacy_projects(hub.settings) == []
    assert main(["migrate-lake"]) == 0 and "nothing to migrate" in capsys.readouterr().out
    assert main(["export", "scans", "--project", SLUG, "--user", "manager", "--inline", "--json"]) == 0


def test_a_failed_migration_leaves_the_old_lake_as_it_was(old_lake):
    hub, _ = old_lake
    part = hub.settings.lake_dir / SLUG / "costs" / "part-00000.parquet"
    part.write_bytes(b"not parquet")
    with pytest.raises(LakeMigrationFailed, match="it is unchanged"):
        migrate_project(hub.settings, SLUG)
    assert part.read_bytes() == b"not parquet"
    assert legacy_projects(hub.settings) == [SLUG] and not has_data(hub.settings, SLUG)
    assert not (hub.settings.lake_dir / LEGACY_DIR / SLUG).exists()


def test_up_migrates_an_old_lake_before_it_starts(old_lake, capsys):
    from exporthub.launcher import _migrate_old_lake

    hub, expected = old_lake
    _migrate_old_lake(hub.settings)
    assert "Lake migrated to Iceberg: demo-open" in capsys.readouterr().out
    con, _ = lake.open_project(hub.settings, SLUG)
    assert rows(con, "costs") == expected["costs"]
