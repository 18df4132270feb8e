"""The lake and the files on object storage: the same demo on the local default and on a real S3 API
server (moto, a separate process) with both ``EXPORTHUB_LAKE_URL`` and ``EXPORTHUB_FILES_URL`` in one
bucket, and every lake reader and export gives the same answers from both."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import duckdb
import openpyxl
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from exporthub import lake
from exporthub.accounts import SystemActor
from exporthub.compaction import compact
from exporthub.demo import create_demo
from exporthub.importer import ImportFile, import_files
from exporthub.lake.maintenance import ORPHAN_AGE, maintain_project
from exporthub.restore import restore_stored_backup
from exporthub.stats.filters import StatsFilter
from exporthub.stats.service import StatsService
from tests._hubs import Hub, make_hub
from tests._storage import stored_file
from tests.exporters._support import completed_job

SLUG = "demo-open"
SYSTEM = SystemActor("pytest")
SCANS = 3_000


def iceberg_rows(hub: Hub, slug: str, table: str, column: str) -> list:  # type: ignore[type-arg]
    """One column of a table's current rows, read by pyiceberg itself (through its own S3 client)."""
    from exporthub.lake.catalog import io_properties

    catalog = SqlCatalog("exporthub", uri=hub.settings.database_url, init_catalog_tables="false",
                         **io_properties(hub.settings))
    try:
        values = catalog.load_table((slug, table)).scan(selected_fields=(column,)).to_arrow().column(column)
    finally:
        catalog.engine.dispose()
    return sorted(values.to_pylist())


@pytest.fixture
def hubs(tmp_path, monkeypatch, s3_env) -> tuple[Hub, Hub, str]:  # type: ignore[no-untyped-def]
    """The demo twice, same seed: on local disk, and with the lake in a fresh S3 bucket."""
    local = make_hub(tmp_path / "local", monkeypatch)
    create_demo(local.db, local.settings, scans=SCANS, seed=3)
    bucket = s3_env["bucket"]
    remote = make_hub(tmp_path / "s3", monkeypatch, LAKE_URL=f"s3://{bucket}/lake", FILES_URL=f"s3://{bucket}/files",
                      S3_ENDPOINT_URL=s3_env["EXPORTHUB_S3_ENDPOINT_URL"], S3_REGION=s3_env["EXPORTHUB_S3_REGION"])
    create_demo(remote.db, remote.settings, scans=SCANS, seed=3)
    return local, remote, bucket


def extra_scans(hub: Hub, folder: Path) -> Path:
    con, _ = lake.open_project(hub.settings, SLUG)
    sid, zone, user = con.execute("SELECT session_id, zone_id, user_id FROM zone_sessions WHERE NOT deleted "
                                  "ORDER BY session_id LIMIT 1").fetchall()[0]
    con.close()
    lines = ["zone_id,session_id,user_id,barcode,quantity,scanned_at,device"]
    lines += [f"{zone},{sid},{user},S3-{i:04d},2,2026-11-19T10:{i:02d}:00+01:00,DEV-S3" for i in range(40)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "extra.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def content(path: Path) -> object:
    """What a file says, without what differs between two runs (names, times in About)."""
    if path.suffix == ".csv":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix == ".parquet":  # the zones export says when each zone was last exported: a job's time
        table = pq.read_table(path)
        return table.drop_columns([c for c in table.column_names if c.endswith("export_at")]).to_pylist()
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames if name != "About"}
    raise AssertionError(path)


CASES = [
    ("scans", {"format": "csv"}, "csv"),
    ("scans", {"format": "parquet", "includeDeleted": True}, "parquet"),
    ("scans", {"format": "csv", "onlyNewSinceLastExport": True}, "csv"),
    ("users", {"format": "csv"}, "csv"),
    ("zones", {"format": "parquet"}, "parquet"),
    ("sessions", {"format": "csv"}, "csv"),
    ("cost", {"format": "xlsx"}, "xlsx"),
    ("statistics", {"format": "xlsx"}, "xlsx"),
    ("explore", {"measure": "scans", "dim1": "zone", "dim2": "day", "format": "csv"}, "csv"),
]


def test_imports_and_every_export_read_the_same_lake_from_s3(hubs, tmp_path, s3_server):
    local, remote, bucket = hubs
    keys = s3_server.keys(bucket)
    assert any(k.startswith(f"lake/{SLUG}/scans/data/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith(f"lake/{SLUG}/scans/metadata/") for k in keys)
    assert not (remote.settings.data_dir / "lake").exists()  # nothing of the lake on local disk
    for hub in (local, remote):
        completed_job(hub, "scans", {"format": "parquet"}, user="manager")  # watermarks for only-new
        import_files(hub.db, hub.settings, SYSTEM, SLUG, "scans", [ImportFile.from_path(extra_scans(hub, tmp_path))])
    assert iceberg_rows(remote, SLUG, "scans", "scan_id") == iceberg_rows(local, SLUG, "scans", "scan_id")
    for export_type, variables, ext in CASES:
        got = [content(stored_file(h, completed_job(h, export_type, variables, user="manager"), ext))
               for h in (local, remote)]
        assert got[0] == got[1], (export_type, variables)
    # The incremental export found exactly the imported batch.
    new = completed_job(remote, "scans", {"format": "parquet", "onlyNewSinceLastExport": True}, user="manager")
    assert new.lake_snapshot is not None
    barcodes = duckdb.connect().execute(f"SELECT barcode FROM read_parquet('{stored_file(remote, new, 'parquet')}')")
    assert barcodes.fetchall() == []  # the csv only-new above already took the batch
    # Every file of the remote instance is an object in the bucket, and none is left on local disk.
    keys = set(s3_server.keys(bucket))
    assert all(f"files/{f.storage_key}" in keys for f in new.files) and new.files
    assert not [p for p in (remote.settings.files_dir).rglob("*") if p.is_file()]


def test_statistics_preview_is_the_same_from_s3(hubs):
    local, remote, _ = hubs
    views = [StatsService(h.db, h.settings).preview("analyst", SLUG, StatsFilter()) for h in (local, remote)]
    assert views[0].headline == views[1].headline
    assert {k: t.to_pylist() for k, t in views[0].tables.items()} == {
        k: t.to_pylist() for k, t in views[1].tables.items()}


def test_backup_and_restore_on_s3(hubs, s3_server):
    _, remote, bucket = hubs
    job = completed_job(remote, "backup", {}, user="admin")
    with zipfile.ZipFile(stored_file(remote, job, "zip")) as archive:
        assert any(n.startswith("lake/scans/part-") for n in archive.namelist())
    (backup,) = [f for f in job.files if f.name.endswith(".zip")]
    assert f"files/{backup.storage_key}" in s3_server.keys(bucket)
    # Restored straight from the file store (the backup never was a local file of this instance).
    report = restore_stored_backup(remote.db, remote.settings, backup.id, project_slug="copy", actor="admin")
    assert report.lake_rows["scans"] == SCANS
    for table, column in (("scans", "scan_id"), ("costs", "amount"), ("zones", "code")):
        assert iceberg_rows(remote, "copy", table, column) == iceberg_rows(remote, SLUG, table, column)
    assert any(k.startswith("lake/copy/scans/data/") for k in s3_server.keys(bucket))


def test_maintenance_on_s3_keeps_the_rows_and_removes_old_files(hubs, tmp_path, s3_server):
    from datetime import UTC, datetime, timedelta

    _, remote, bucket = hubs
    for i in range(3):
        folder = tmp_path / f"round{i}"
        path = extra_scans(remote, folder)
        path.write_text(path.read_text().replace("S3-", f"R{i}-"), encoding="utf-8")
        import_files(remote.db, remote.settings, SYSTEM, SLUG, "scans", [ImportFile.from_path(path)])
    before = iceberg_rows(remote, SLUG, "scans", "scan_id")
    data_keys = [k for k in s3_server.keys(bucket) if k.startswith(f"lake/{SLUG}/scans/data/")]
    assert len(data_keys) == 4
    report = compact(remote.db, remote.settings, SYSTEM, SLUG)
    assert next(t for t in report.tables if t.table == "scans").files_after == 1
    later = datetime.now(UTC) + max(ORPHAN_AGE, timedelta(hours=2)) + timedelta(minutes=1)
    maintain_project(remote.db, remote.settings, SLUG, now=later)
    assert iceberg_rows(remote, SLUG, "scans", "scan_id") == before
    left = [k for k in s3_server.keys(bucket) if k.startswith(f"lake/{SLUG}/scans/data/")]
    assert len(left) == 1 and left[0] not in data_keys
