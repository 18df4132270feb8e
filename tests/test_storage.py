"""The file store, the same behaviours on both backends: the local files folder, and object storage on
a real S3 API server (moto, its own process) with the lake there too (``EXPORTHUB_LAKE_URL`` and
``EXPORTHUB_FILES_URL`` in one bucket). Every test here runs once per backend."""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import openpyxl
import pyarrow.parquet as pq
import pytest
from pypdf import PdfReader
from sqlalchemy import select, update

from exporthub import api_tokens, retention, storage_local
from exporthub.accounts import SystemActor
from exporthub.db import forget_databases
from exporthub.demo import create_demo
from exporthub.models import File, Job, utcnow
from exporthub.restore import RestoreRefused, restore_stored_backup
from exporthub.states import JobStatus
from exporthub.storage import BadKey, FileStore, get_store, job_prefix, sha256_of
from exporthub.storage_local import LocalStore
from tests._hubs import Hub, make_hub
from tests._storage import fetched, stored_file
from tests.exporters._support import completed_job

SCANS = 3_000


@pytest.fixture(params=["local", "s3"])
def store_hub(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The demo on the local defaults, or with the lake and the files in a fresh S3 bucket."""
    env: dict[str, str] = {}
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_env")
        bucket = s3["bucket"]
        env = {"LAKE_URL": f"s3://{bucket}/lake", "FILES_URL": f"s3://{bucket}/files",
               "S3_ENDPOINT_URL": s3["EXPORTHUB_S3_ENDPOINT_URL"], "S3_REGION": s3["EXPORTHUB_S3_REGION"]}
    hub = make_hub(tmp_path, monkeypatch, **env)
    create_demo(hub.db, hub.settings, scans=SCANS, seed=5, anchor=date(2026, 11, 20))
    yield hub
    forget_databases()


def store_of(hub: Hub) -> FileStore:
    return get_store(hub.settings)


def put_bytes(hub: Hub, key: str, data: bytes) -> None:
    """Store ``data`` under ``key`` through the store's own put (verified)."""
    local = store_of(hub).work_root / ".test" / key.replace("/", "_")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    store_of(hub).put(local, key, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def keys_of_job(hub: Hub, job) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(i.key for i in store_of(hub).iter_files(job_prefix("demo-open", job.export_type, job.id)))


# ----------------------------------------------------------------------------- the interface


def test_put_open_stat_list_and_delete(store_hub):
    store = store_of(store_hub)
    key = "p/t/1/a.bin"
    data = b"exporthub\n" * 1000
    put_bytes(store_hub, key, data)
    info = store.stat(key)
    assert info is not None and info.size == len(data) and info.mtime_ns > 0
    assert store.read_bytes(key) == data
    assert [i.key for i in store.iter_files("p/t/1")] == [key]
    fh, opened = store.open(key)
    with fh:
        assert sha256_of(fh) == (len(data), hashlib.sha256(data).hexdigest())
    assert opened.size == len(data)
    store.delete(key)
    store.delete(key)  # missing is not an error
    assert store.stat(key) is None and list(store.iter_files("p/t/1")) == []
    with pytest.raises(FileNotFoundError):
        store.open(key)
    for bad in ("../x", "/etc/passwd", "a//b", "a/./b", ""):
        with pytest.raises(BadKey):
            store.stat(bad)


@pytest.mark.parametrize("damage", ["size", "sha256"])
def test_a_corrupted_upload_is_refused_and_the_job_does_not_complete(store_hub, monkeypatch, damage):
    store = store_of(store_hub)
    transfer = store._transfer

    def corrupting(local: Path, key: str) -> str | None:  # the file that arrives is not the file written
        data = local.read_bytes()
        local.unlink()  # a new file: the local store hashes the stored file once, if it is the one written
        local.write_bytes(data + b"x" if damage == "size" else data[:-1] + bytes([data[-1] ^ 1]))
        return transfer(local, key)

    monkeypatch.setattr(store, "_transfer", corrupting)
    service = store_hub.service()
    job = service.start("manager", "demo-open", "scans", {"format": "csv"})
    assert store_hub.run(job.id) is JobStatus.FAILED
    failed = service.get("manager", job.id)
    assert failed.error.startswith("The export's files could not be stored")
    assert ("size" in failed.error) == (damage == "size")
    assert failed.files == () and keys_of_job(store_hub, failed) == []
    with store_hub.db.read() as s:
        assert s.scalars(select(File).where(File.job_id == job.id)).all() == []


def test_the_local_store_hashes_what_it_stores_in_one_pass_and_across_file_systems(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "files")
    data = bytes(range(256)) * 5000
    for name, cross_device in (("same.bin", False), ("copied.bin", True)):
        local = tmp_path / "work" / name
        local.parent.mkdir(exist_ok=True)
        local.write_bytes(data)
        replace = os.replace

        def exdev(src, dst, local=local, replace=replace):  # type: ignore[no-untyped-def]
            if Path(src) == local:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            replace(src, dst)

        if cross_device:
            monkeypatch.setattr(os, "replace", exdev)
        reads: list[int] = []
        monkeypatch.setattr(storage_local, "sha256_of", lambda fh, reads=reads: reads.append(1) or sha256_of(fh))
        info, digest = store.put_hashed(local, f"p/t/1/{name}")
        monkeypatch.undo()
        assert digest == hashlib.sha256(data).hexdigest() and info.size == len(data)
        assert store.read_bytes(f"p/t/1/{name}") == data and not local.exists()
        assert len(reads) == (0 if cross_device else 1)  # the copy hashed as it wrote; a rename reads once
        assert [p.name for p in (tmp_path / "files" / "p/t/1").iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- exports


def _rows(path: Path) -> int:
    if path.suffix == ".csv":
        return duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()[0]
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        return sum(book[n].max_row - 1 for n in book.sheetnames if n != "About")
    if path.suffix == ".pdf":
        return len(PdfReader(path).pages)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return len(json.loads(archive.read("manifest.json"))["entries"])


CASES = [
    ("scans", {"format": "xlsx"}, "xlsx"),
    ("users", {"format": "csv"}, "csv"),
    ("zones", {"format": "parquet"}, "parquet"),
    ("sessions", {"format": "xlsx"}, "xlsx"),
    ("cost", {"format": "pdf"}, "pdf"),
    ("statistics", {"format": "pdf"}, "pdf"),
    ("backup", {}, "zip"),
]


def test_every_export_type_is_stored_and_read_back_from_the_store(store_hub):
    for export_type, variables, ext in CASES:
        job = completed_job(store_hub, export_type, variables, user="admin")
        (f,) = [f for f in job.files if f.name.endswith("." + ext)]
        assert f.storage_key == f"demo-open/{export_type}/{job.id}/{f.name}"
        assert f.storage_key in keys_of_job(store_hub, job)
        path = fetched(store_hub, f)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256 and path.stat().st_size == f.size
        assert _rows(path) > 0, export_type
    scans = completed_job(store_hub, "scans", {"format": "csv", "includeDeleted": True}, user="admin")
    assert _rows(stored_file(store_hub, scans, "csv")) == SCANS


def test_publish_copies_the_children_files_within_the_store(store_hub):
    service = store_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["zones", "cost"]})
    store_hub.run_queued()
    done = service.get("manager", parent.id)
    assert done.status is JobStatus.COMPLETED, done.error
    files = {f.name: f for f in done.files}
    index = json.loads(fetched(store_hub, files.pop("index.json")).read_text())
    assert {(e["name"], e["sha256"]) for e in index["files"]} == {(f.name, f.sha256) for c in done.children
                                                                  for f in c.files}
    for f in files.values():
        assert f.storage_key.startswith(f"demo-closed/publish/{parent.id}/")
        assert hashlib.sha256(fetched(store_hub, f).read_bytes()).hexdigest() == f.sha256


def test_backup_restores_from_the_store_and_a_changed_backup_is_refused(store_hub):
    job = completed_job(store_hub, "backup", {}, user="admin")
    (backup,) = job.files
    report = restore_stored_backup(store_hub.db, store_hub.settings, backup.id, project_slug="copy", actor="admin")
    assert report.lake_rows["scans"] == SCANS and report.project == "copy"
    from cli import main

    assert main(["restore", "--file", str(backup.id), "--project", "copy-cli", "--user", "admin"]) == 0
    data = bytearray(store_of(store_hub).read_bytes(backup.storage_key))
    data[100] ^= 1
    put_bytes(store_hub, backup.storage_key, bytes(data))
    with pytest.raises(RestoreRefused, match="changed"):
        restore_stored_backup(store_hub.db, store_hub.settings, backup.id, project_slug="copy2", actor="admin")
    # A file that is not a backup is refused at the command line too (exit 2).
    other = completed_job(store_hub, "users", {"format": "csv"}, user="admin").files[0]
    assert main(["restore", "--file", str(other.id), "--project", "copy3", "--user", "admin"]) == 2


# ----------------------------------------------------------------------------- downloads


@pytest.fixture
def route(store_hub) -> Iterator[int]:
    """``web.downloads``' route served by uvicorn in this process, on a free port."""
    import socket

    import uvicorn
    from starlette.applications import Starlette

    from web.downloads import ROUTES

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=ROUTES), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _get(port: int, path: str, token: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_download_route_streams_from_the_store_after_the_checks(store_hub, route):
    from exporthub.links import download_path

    job = completed_job(store_hub, "scans", {"format": "csv"}, user="analyst")
    (f,) = [f for f in job.files if f.name.endswith(".csv")]
    _, token = api_tokens.create(store_hub.db, SystemActor("pytest"), "analyst", "dl")
    with store_hub.db.read() as s:
        user_id = s.get(Job, job.id).user_id
    path = download_path(store_hub.settings, f.id, user_id)
    status, headers, body = _get(route, path, token)
    assert status == 200 and hashlib.sha256(body).hexdigest() == f.sha256
    assert int(headers["Content-Length"]) == f.size
    # The same size, other bytes in the store, within the second it was written (an object store's
    # mtime has whole seconds, so only the hash can tell): never arrives whole.
    data = bytearray(body)
    data[-2] ^= 1
    put_bytes(store_hub, f.storage_key, bytes(data))
    try:
        status, _, body = _get(route, path, token)
    except http.client.IncompleteRead:
        status, body = 0, b""
    assert status in (0, 404) and hashlib.sha256(body).hexdigest() != hashlib.sha256(bytes(data)).hexdigest()
    # Changed later (a new mtime): re-hashed before sending, and refused.
    time.sleep(1.1)
    put_bytes(store_hub, f.storage_key, bytes(data))
    status, _, body = _get(route, path, token)
    assert status == 404 and body.decode().strip() == "This file is not available."


# ----------------------------------------------------------------------------- retention and Remove


def test_retention_and_remove_delete_the_objects(store_hub):
    service = store_hub.service()
    old = completed_job(store_hub, "scans", {"format": "csv"}, user="manager")
    kept = completed_job(store_hub, "zones", {"format": "csv"}, user="manager")
    gone = completed_job(store_hub, "users", {"format": "csv"}, user="manager")
    with store_hub.db.write() as s:
        s.execute(update(Job).where(Job.id == old.id).values(finished_at=utcnow() - timedelta(days=40)))
    orphan = f"{job_prefix('demo-open', 'zones', kept.id)}/not-recorded.csv"
    put_bytes(store_hub, orphan, b"x")
    assert keys_of_job(store_hub, old) and keys_of_job(store_hub, gone)

    result = retention.cleanup(store_hub.db, store_hub.settings)
    assert result.jobs == [old.id] and result.orphans == 0  # the orphan is too young to judge
    assert keys_of_job(store_hub, old) == [] and store_of(store_hub).stat(orphan) is not None
    later = retention.cleanup(store_hub.db, store_hub.settings, now=utcnow() + timedelta(hours=2))
    assert later.orphans == 1 and store_of(store_hub).stat(orphan) is None
    assert keys_of_job(store_hub, kept) == sorted(f.storage_key for f in kept.files)  # recorded files stay

    service.remove("manager", gone.id)
    assert keys_of_job(store_hub, gone) == []


# ----------------------------------------------------------------------------- snapshots


def test_an_import_during_a_running_export_changes_nothing_it_reads(store_hub, tmp_path, monkeypatch):
    from pyiceberg.catalog.sql import SqlCatalog

    import exporters.scans
    from exporthub.importer import ImportFile, import_files
    from exporthub.lake.catalog import io_properties
    from tests.test_lake_s3 import extra_scans

    writer = exporters.scans.write_table
    imported: list[set[str]] = []

    def import_then_write(ctx, reader, **kwargs):  # type: ignore[no-untyped-def]
        path = extra_scans(store_hub, tmp_path / "extra")  # 40 rows, committed while the export runs
        imported.append(import_files(store_hub.db, store_hub.settings, SystemActor("pytest"), "demo-open", "scans",
                                     [ImportFile.from_path(path)]))
        return writer(ctx, reader, **kwargs)

    monkeypatch.setattr(exporters.scans, "write_table", import_then_write)
    job = completed_job(store_hub, "scans", {"format": "csv", "includeDeleted": True}, user="manager")
    recorded = store_hub.service().get("manager", job.id).lake_snapshot
    catalog = SqlCatalog("exporthub", uri=store_hub.settings.database_url, init_catalog_tables="false",
                         **io_properties(store_hub.settings))
    try:
        table = catalog.load_table(("demo-open", "scans"))
        assert imported and recorded["scans"] != table.current_snapshot().snapshot_id
        expected = table.scan(snapshot_id=recorded["scans"], selected_fields=("scan_id",)).to_arrow()
    finally:
        catalog.engine.dispose()
    got = duckdb.connect().execute(f"SELECT scan_id FROM read_csv('{stored_file(store_hub, job, 'csv')}')")
    assert sorted(r[0] for r in got.fetchall()) == sorted(expected.column("scan_id").to_pylist())
    assert len(expected) == SCANS  # the 40 imported rows are not in it


def test_a_lost_finish_deletes_the_uploaded_files(store_hub, monkeypatch):
    from exporthub import lifecycle, runner

    finish = lifecycle.finish
    uploaded: list[list[str]] = []

    def reaped_meanwhile(db, lease, outcome):  # type: ignore[no-untyped-def]
        # The files are in the store; then the job is taken from this worker before its commit.
        uploaded.append([f.storage_key for f in outcome.files])
        with db.write() as s:
            s.execute(update(Job).where(Job.id == lease.job_id).values(attempt=Job.attempt + 1))
        return finish(db, lease, outcome)

    monkeypatch.setattr(runner.lifecycle, "finish", reaped_meanwhile)
    service = store_hub.service()
    job = service.start("manager", "demo-open", "users", {"format": "csv"})
    assert store_hub.run(job.id) is None  # the lease was gone: nothing this worker did stands
    (keys,) = uploaded
    assert keys and all(store_of(store_hub).stat(k) is None for k in keys)
    with store_hub.db.read() as s:
        assert s.scalars(select(File).where(File.job_id == job.id)).all() == []
