"""The remembered file lists (exporthub.lake.file_lists): a reader whose catalog still points at a metadata
file it has seen reads the same snapshot without pyiceberg, and a commit is never hidden by a kept list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
from sqlalchemy import select

from exporthub import lake
from exporthub.lake import file_lists
from exporthub.lake.catalog import load_table
from exporthub.lake.schemas import TABLES
from exporthub.lake.snapshot import load_tables
from exporthub.models import Job
from tests.exporters._support import completed_job, data_file
from tests.test_lake_incremental import SLUG, import_batch

ROOT = Path(__file__).resolve().parent.parent


def _by_pyiceberg(hub) -> lake.LakeSnapshot:  # type: ignore[no-untyped-def]
    return lake.snapshot(hub.settings, SLUG, loaded=load_tables(hub.settings, SLUG))


def test_a_remembered_list_is_the_snapshot_pyiceberg_reads(demo_hub):
    truth = _by_pyiceberg(demo_hub)
    first = lake.snapshot(demo_hub.settings, SLUG)  # fills the lists where missing
    kept = sorted(p.name for p in file_lists.cache_dir(demo_hub.settings).glob("*.json"))
    assert [name.split(".")[:2] for name in kept] == [[SLUG, t] for t in sorted(TABLES)]
    again = lake.snapshot(demo_hub.settings, SLUG)  # from the lists alone
    for snap in (first, again):
        assert snap.ids == truth.ids and snap.files == truth.files
        assert snap.committed_at == truth.committed_at
        assert snap.tables == truth.tables  # every file's counts, sizes, lowest ids and snapshots
    assert again.tables["scans"].iceberg is None  # not loaded…
    loaded = again.tables["scans"].iceberg_table()  # …until something needs its history
    assert loaded is not None and loaded.metadata.current_snapshot_id == truth.ids["scans"]


def test_a_commit_moves_readers_to_the_new_list_and_drops_the_old(demo_hub, tmp_path):
    before = lake.snapshot(demo_hub.settings, SLUG)
    folder = file_lists.cache_dir(demo_hub.settings)
    old = {p.name for p in folder.glob(f"{SLUG}.scans.*.json")}
    barcodes = import_batch(demo_hub, tmp_path, 1)
    # The import kept the new list itself: the next reader finds it without pyiceberg.
    location = file_lists.metadata_locations(demo_hub.settings, SLUG)["scans"]
    kept = file_lists.recall(demo_hub.settings, SLUG, "scans", location)
    assert kept is not None and kept["snapshot_id"] != before.ids["scans"]
    after = lake.snapshot(demo_hub.settings, SLUG)
    assert after.ids["scans"] != before.ids["scans"] and after.ids["zones"] == before.ids["zones"]
    assert after.files == _by_pyiceberg(demo_hub).files
    con = lake.connect(demo_hub.settings)
    after.register(con)
    found = con.execute("SELECT count(*) FROM scans WHERE barcode IN (SELECT unnest(?))", [sorted(barcodes)])
    assert found.fetchone() == (len(barcodes),)
    now = {p.name for p in folder.glob(f"{SLUG}.scans.*.json")}
    assert len(now) == 1 and not now & old


def test_a_damaged_or_foreign_list_is_a_miss_not_an_error(demo_hub):
    truth = _by_pyiceberg(demo_hub)
    location = load_table(demo_hub.settings, SLUG, "scans").metadata_location  # type: ignore[union-attr]
    lake.snapshot(demo_hub.settings, SLUG)
    (kept,) = file_lists.cache_dir(demo_hub.settings).glob(f"{SLUG}.scans.*.json")
    kept.write_text("{not json")
    assert file_lists.recall(demo_hub.settings, SLUG, "scans", location) is None
    assert lake.snapshot(demo_hub.settings, SLUG).files == truth.files  # read again, and kept again
    body = json.loads(kept.read_text())
    assert body["metadata_location"] == location
    # A list that names another metadata file (a hash clash, a hand-copied file) is not used.
    kept.write_text(json.dumps({**body, "metadata_location": location + ".other", "files": []}))
    assert file_lists.recall(demo_hub.settings, SLUG, "scans", location) is None
    assert lake.snapshot(demo_hub.settings, SLUG).files == truth.files


def test_only_new_since_last_export_reads_history_through_a_remembered_snapshot(demo_hub, tmp_path):
    completed_job(demo_hub, "scans", {"format": "parquet"}, user="manager")
    barcodes = import_batch(demo_hub, tmp_path, 1)
    lake.snapshot(demo_hub.settings, SLUG)  # the list of the new metadata is kept before the export
    job = completed_job(demo_hub, "scans", {"format": "csv", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT barcode FROM read_csv('{data_file(job, 'csv')}', all_varchar=true)")
    assert {r[0] for r in rows.fetchall()} == barcodes
    with demo_hub.db.read() as s:
        recorded = s.scalars(select(Job.lake_snapshot).where(Job.id == job.id)).one()
    assert recorded == lake.snapshot(demo_hub.settings, SLUG).ids


_EXPORT_AND_LOOK = """
import json, sys
import cli
code = cli.main(["export", "scans", "--project", "demo-open", "--user", "admin", "--var", "format=csv",
                 "--inline", "--json"])
print(json.dumps({"code": code, "pyiceberg": sorted(m for m in sys.modules if m.startswith("pyiceberg."))}))
"""


def _export_in_a_fresh_process() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _EXPORT_AND_LOOK], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_one_shot_export_with_kept_lists_never_loads_the_iceberg_catalog(demo_hub):
    # The demo's settings reach the child through the environment.
    for path in file_lists.cache_dir(demo_hub.settings).glob("*.json"):
        path.unlink()
    cold = _export_in_a_fresh_process()  # no lists yet: loads the tables, and keeps their lists
    warm = _export_in_a_fresh_process()
    assert cold["code"] == 0 and warm["code"] == 0
    assert "pyiceberg.catalog" in cold["pyiceberg"]  # type: ignore[operator]
    assert warm["pyiceberg"] == ["pyiceberg.exceptions"], warm  # the catalog module's error names only
