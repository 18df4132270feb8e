"""Exports read one Iceberg snapshot; "only new since last export" is an incremental append scan from
the snapshot of the last delivered export of each zone (see exporthub.lake.incremental)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy import select, update

import exporters.scans
from exporthub import lake
from exporthub.accounts import SystemActor
from exporthub.compaction import compact
from exporthub.importer import ImportFile, import_files
from exporthub.lake.maintenance import maintain_project
from exporthub.models import ExportSession, Job, utcnow
from tests.exporters._support import completed_job, data_file
from tests.test_compaction import LATER, extra_scans

SLUG = "demo-open"
SYSTEM = SystemActor("pytest")


def import_batch(hub, folder: Path, round_no: int, rows: int = 7) -> set[str]:  # type: ignore[no-untyped-def]
    """Import a small scans file; returns its barcodes (each batch's are distinct)."""
    path = extra_scans(hub, folder, round_no, rows)
    import_files(hub.db, hub.settings, SYSTEM, SLUG, "scans", [ImportFile.from_path(path)])
    return {f"R{round_no}-{i:04d}" for i in range(rows)}


def only_new(hub) -> tuple[int, set[str]]:  # type: ignore[no-untyped-def]
    """Run an only-new scans export (csv); returns its job id and the barcodes it holds."""
    job = completed_job(hub, "scans", {"format": "csv", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT barcode FROM read_csv('{data_file(job, 'csv')}', all_varchar=true)")
    return job.id, {r[0] for r in rows.fetchall()}


@pytest.fixture
def exported(demo_hub):  # type: ignore[no-untyped-def]
    """The demo with one full scans export delivered: every zone has a watermark."""
    completed_job(demo_hub, "scans", {"format": "parquet"}, user="manager")
    return demo_hub


def test_only_new_gives_exactly_each_new_batch(exported, tmp_path):
    hub = exported
    first = import_batch(hub, tmp_path, 1)
    _, got = only_new(hub)
    assert got == first
    second = import_batch(hub, tmp_path, 2)
    job_id, got = only_new(hub)
    assert got == second
    with hub.db.read() as s:
        (session,) = s.scalars(select(ExportSession).where(ExportSession.job_id == job_id)).all()
        job = s.get(Job, job_id)
    # The watermark is the scans snapshot the export read.
    assert session.snapshot_id == job.lake_snapshot["scans"] == lake.current_ids(hub.settings, SLUG)["scans"]
    assert session.scan_count == len(second)
    assert only_new(hub)[1] == set()


def test_reset_goes_back_to_the_export_before(exported, tmp_path):
    hub = exported
    import_batch(hub, tmp_path, 1)
    only_new(hub)
    second = import_batch(hub, tmp_path, 2)
    job_id, got = only_new(hub)
    assert got == second
    hub.service().reset_export_sessions("manager", job_id)
    assert only_new(hub)[1] == second


def test_a_removed_job_no_longer_counts_as_delivered(exported, tmp_path):
    hub = exported
    import_batch(hub, tmp_path, 1)
    only_new(hub)
    second = import_batch(hub, tmp_path, 2)
    job_id, _ = only_new(hub)
    with hub.db.write() as s:  # removed by a user: hidden and its files deleted
        s.execute(update(Job).where(Job.id == job_id).values(removed_at=utcnow()))
    assert only_new(hub)[1] == second


def test_compaction_and_expiry_in_between_change_nothing(exported, tmp_path):
    hub = exported
    import_batch(hub, tmp_path, 1)
    only_new(hub)
    second = import_batch(hub, tmp_path, 2)
    third = import_batch(hub, tmp_path, 3)
    compact(hub.db, hub.settings, SYSTEM, SLUG)  # merges the batches' files with the demo's
    maintain_project(hub.db, hub.settings, SLUG, now=LATER)  # and expires what no watermark needs
    assert len(lake.snapshot(hub.settings, SLUG).files["scans"]) == 1
    assert only_new(hub)[1] == second | third


def test_an_import_during_a_running_export_changes_nothing_it_reads(demo_hub, tmp_path, monkeypatch):
    hub = demo_hub
    writer = exporters.scans.write_table
    imported: list[set[str]] = []

    def import_then_write(ctx, reader, **kwargs):  # type: ignore[no-untyped-def]
        # The export has taken its snapshot and opened its query; another import commits now.
        imported.append(import_batch(hub, tmp_path, 9, rows=11))
        return writer(ctx, reader, **kwargs)

    monkeypatch.setattr(exporters.scans, "write_table", import_then_write)
    job = completed_job(hub, "scans", {"format": "csv", "includeDeleted": True}, user="manager")
    with hub.db.read() as s:
        recorded = s.get(Job, job.id).lake_snapshot
    assert imported and recorded["scans"] != lake.current_ids(hub.settings, SLUG)["scans"]
    # The export's rows are exactly the rows of the snapshot it recorded, read by pyiceberg itself.
    catalog = SqlCatalog("exporthub", uri=hub.settings.database_url, init_catalog_tables="false")
    table = catalog.load_table((SLUG, "scans"))
    expected = table.scan(snapshot_id=recorded["scans"], selected_fields=("scan_id",)).to_arrow()
    catalog.engine.dispose()
    got = duckdb.connect().execute(f"SELECT scan_id FROM read_csv('{data_file(job, 'csv')}')").fetchall()
    assert sorted(r[0] for r in got) == sorted(expected.column("scan_id").to_pylist())
    assert len(got) == lake.snapshot(hub.settings, SLUG).tables["scans"].rows - 11
    # The snapshot is the data cut-off in the About sidecar and on the job.
    (about,) = [f.path for f in job.files if f.name.endswith(".about.json")]
    assert json.loads(about.read_text())["lake_snapshot"] == recorded
    assert hub.service().get("manager", job.id).lake_snapshot == recorded


def test_rows_come_in_scan_id_order_after_imports_and_compaction(exported, tmp_path):
    hub = exported
    for round_no in (1, 2, 3):
        import_batch(hub, tmp_path, round_no)
    compact(hub.db, hub.settings, SYSTEM, SLUG)
    import_batch(hub, tmp_path, 4)
    job = completed_job(hub, "scans", {"format": "csv"}, user="manager")
    csv = data_file(job, "csv")
    ids = [r[0] for r in duckdb.connect().execute(f"SELECT scan_id FROM read_csv('{csv}')").fetchall()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
