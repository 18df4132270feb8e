"""Kept scan cubes (exporthub.stats.cubes): the preview read from per-data-file cubes equals the preview
grouped from the raw scans, exactly, for several filters, before and after an append, a replace import
and a compaction; appends only add cubes, and no project reads another's."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest

from exporthub import lake
from exporthub.compaction import compact
from exporthub.export_config import DateWindow
from exporthub.importer import ImportFile, import_files
from exporthub.stats import ResultCache, StatsFilter, StatsService, cubes
from exporthub.stats.filters import Scope
from tests._stats_reference import NOW, Lake, filters
from tests.test_compaction import SLUG, SYSTEM, fragment

FILTER_IDS = ["all", "custom+zones", "areas+users+deleted", "last7days"]


def preview(hub, f: StatsFilter) -> dict[str, pa.Table]:
    service = StatsService(hub.db, hub.settings, cache=ResultCache(), clock=lambda: NOW)
    return dict(service.preview("admin", SLUG, f).tables)


def raw_preview(hub, f: StatsFilter, monkeypatch: pytest.MonkeyPatch) -> dict[str, pa.Table]:
    """The same preview with the kept cubes switched off: every scan grouped from the lake's files."""
    with monkeypatch.context() as m:
        m.setattr(cubes, "provide", lambda *args, **kwargs: False)
        return preview(hub, f)


def cube_names(hub, slug: str = SLUG) -> set[str]:
    folder = cubes.cube_dir(hub.settings, slug)
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def expected_names(hub, slug: str = SLUG) -> set[str]:
    return {cubes.cube_name_of(ref) for ref in lake.snapshot(hub.settings, slug).tables["scans"].files}


def assert_same_as_raw(hub, monkeypatch) -> None:
    for f, label in zip(filters(Lake(hub)), FILTER_IDS, strict=True):
        kept, raw = preview(hub, f), raw_preview(hub, f, monkeypatch)
        for name, table in raw.items():
            assert kept[name].equals(table, check_metadata=True), f"{label}: {name} differs"
    assert expected_names(hub) <= cube_names(hub)


def raw_scan_count(hub) -> int:
    files = list(lake.snapshot(hub.settings, SLUG).files["scans"])
    return duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r}) WHERE NOT deleted").fetchall()[0][0]


def test_cubes_equal_the_raw_scans_through_append_replace_and_compaction(demo_hub, tmp_path, monkeypatch):
    hub = demo_hub
    assert cube_names(hub) == set()
    assert_same_as_raw(hub, monkeypatch)
    assert preview(hub, StatsFilter())["headline"]["scans"][0].as_py() == raw_scan_count(hub)

    before = {p.name: p.stat().st_mtime_ns for p in cubes.cube_dir(hub.settings, SLUG).iterdir()}
    fragment(hub, tmp_path / "append", imports=2, rows=30)  # two appends: two new data files
    assert_same_as_raw(hub, monkeypatch)
    after = {p.name: p.stat().st_mtime_ns for p in cubes.cube_dir(hub.settings, SLUG).iterdir()}
    assert {n: after[n] for n in before} == before  # the old files' cubes were kept, not rebuilt
    assert set(after) - set(before) == expected_names(hub) - set(before)
    assert len(set(after) - set(before)) == 2
    assert preview(hub, StatsFilter())["headline"]["scans"][0].as_py() == raw_scan_count(hub)

    compact(hub.db, hub.settings, SYSTEM, SLUG)
    assert not expected_names(hub) & set(after)  # compaction wrote new files: none of the old cubes fit
    assert_same_as_raw(hub, monkeypatch)
    assert preview(hub, StatsFilter())["headline"]["scans"][0].as_py() == raw_scan_count(hub)

    # Scans are append-only; a replace import of the zones moves zones between areas, which the
    # cubes' rows follow at view time (the area filter is applied to the cube's zone ids).
    zones = list(lake.snapshot(hub.settings, SLUG).files["zones"])
    csv = tmp_path / "zones.csv"
    duckdb.sql(f"""COPY (SELECT zone_id, code, name,
                              CASE WHEN zone_id % 2 = 0 THEN 'Store Floor' ELSE area END AS area,
                              parent_zone_id, expected_items, deleted
                       FROM read_parquet({zones!r})) TO '{csv}' (HEADER)""")
    cubes_before = cube_names(hub)
    import_files(hub.db, hub.settings, SYSTEM, SLUG, "zones", [ImportFile.from_path(csv)], replace=True)
    assert_same_as_raw(hub, monkeypatch)
    assert cube_names(hub) == cubes_before


def test_unused_cubes_are_pruned_only_when_old(demo_hub, tmp_path):
    hub = demo_hub
    preview(hub, StatsFilter())
    folder = cubes.cube_dir(hub.settings, SLUG)
    old = set(cube_names(hub))
    fragment(hub, tmp_path, imports=1, rows=10)
    compact(hub.db, hub.settings, SYSTEM, SLUG)
    preview(hub, StatsFilter())  # new cubes were built: the unused ones are kept while young
    assert old <= cube_names(hub)
    for name in old:
        os.utime(folder / name, (0, 0))
    cubes.prune(folder, expected_names(hub))
    assert cube_names(hub) == expected_names(hub)


def test_projects_never_share_cubes(demo_hub):
    hub = demo_hub
    preview(hub, StatsFilter())
    StatsService(hub.db, hub.settings, cache=ResultCache(), clock=lambda: NOW).preview(
        "admin", "demo-closed", StatsFilter())
    assert cube_names(hub, "demo-closed") == expected_names(hub, "demo-closed")
    assert not cube_names(hub, "demo-closed") & cube_names(hub, SLUG)


def test_a_window_off_bucket_edges_falls_back_to_the_raw_scans():
    start = datetime(2026, 11, 1, 0, 7, tzinfo=UTC)
    window = DateWindow(date(2026, 11, 1), date(2026, 11, 1), start, start.replace(day=2))
    assert Scope("UTC", window).cube_where() is None
    aligned = DateWindow(date(2026, 11, 1), date(2026, 11, 1), start.replace(minute=0), start.replace(day=2, minute=0))
    assert Scope("UTC", aligned).cube_where() is not None
    assert Scope("UTC", aligned).params()["bucket_hi"] - Scope("UTC", aligned).params()["bucket_lo"] == 96


def test_the_statistics_report_reads_the_kept_cubes(demo_hub):
    from tests.exporters._support import completed_job

    job = completed_job(demo_hub, "statistics", {"format": "xlsx"}, user="analyst", slug=SLUG)
    assert job.files
    assert cube_names(demo_hub) == expected_names(demo_hub)
