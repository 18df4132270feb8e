"""Concurrent imports into one project are settled by the catalog's optimistic commit: both land, or
one is refused with a clear message; never a lost or doubled row. In one process (a commit forced in
between, deterministically) and from two real processes on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from exporthub import importer
from exporthub.accounts import SystemActor
from exporthub.importer import ImportFile, ImportRefused, import_files
from exporthub.lake.commit import LakeConflict
from tests import _handmade as hm
from tests._hubs import make_hub
from tests._processes import REPO

SYSTEM = SystemActor("pytest")


def batch(folder: Path, name: str, rows: int) -> Path:
    """A scans file without ids for the hand-made project (zone 1, session 100, ann)."""
    lines = ["zone_id,session_id,user,barcode,quantity,scanned_at,device"]
    lines += [f"1,100,ann,{name}-{i:05d},1,2026-03-28T09:{i % 60:02d}:{i % 59:02d}+01:00,DEV-01" for i in range(rows)]
    return hm.write(folder, f"{name}.csv", "\n".join(lines) + "\n")


def scans(hub) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """The table's current rows by scan id, read by pyiceberg itself (its own S3 client on object storage)."""
    from pyiceberg.catalog.sql import SqlCatalog

    from exporthub.lake.catalog import io_properties

    catalog = SqlCatalog("exporthub", uri=hub.settings.database_url, init_catalog_tables="false",
                         **io_properties(hub.settings))
    try:
        table = catalog.load_table((hm.SLUG, "scans")).scan(selected_fields=("scan_id", "barcode")).to_arrow()
    except Exception:  # noqa: BLE001 - no such table yet
        return []
    finally:
        catalog.engine.dispose()
    return sorted(zip(table.column("scan_id").to_pylist(), table.column("barcode").to_pylist(), strict=True))


@pytest.fixture
def made(hub, tmp_path):  # type: ignore[no-untyped-def]
    hm.make_project(hub)
    return hub, tmp_path / "files"


def _commit_first(monkeypatch: pytest.MonkeyPatch, other: callable) -> list[int]:  # type: ignore[valid-type]
    """Make ``other`` commit after this import's checks and before its commit, once."""
    write = importer._Import._write
    calls: list[int] = []

    def racing_write(self, snap):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            other()
        return write(self, snap)

    monkeypatch.setattr(importer._Import, "_write", racing_write)
    return calls


def test_a_conflict_checks_again_and_both_imports_land_in_order(made, monkeypatch):
    hub, folder = made
    first, second = batch(folder, "A", 30), batch(folder, "B", 20)
    calls = _commit_first(monkeypatch, lambda: importer.with_retries(
        lambda _n: importer._Import(hub.settings, hm.SLUG, "scans", [ImportFile.from_path(second)],
                                    [(i, n) for i, n in _users(hub)], replace=False,
                                    skip_duplicates=False).run()))
    report = import_files(hub.db, hub.settings, SYSTEM, hm.SLUG, "scans", [ImportFile.from_path(first)])
    # Ours, the other import's (which commits first), ours again: checked anew on the new snapshot.
    assert len(calls) == 3
    rows = scans(hub)
    # B committed first and took ids 1..20; A's ids were assigned again after them.
    assert [b[0] for _, b in rows[:20]] == ["B"] * 20 and [b[0] for _, b in rows[20:]] == ["A"] * 30
    assert [i for i, _ in rows] == list(range(1, 51)) and (report.first_id, report.last_id) == (21, 50)


def test_the_same_file_twice_at_once_lands_once(made, monkeypatch):
    hub, folder = made
    path = batch(folder, "A", 30)
    _commit_first(monkeypatch, lambda: importer._Import(
        hub.settings, hm.SLUG, "scans", [ImportFile.from_path(path)], _users(hub), replace=False,
        skip_duplicates=False).run())
    with pytest.raises(ImportRefused, match="30 duplicate rows"):
        import_files(hub.db, hub.settings, SYSTEM, hm.SLUG, "scans", [ImportFile.from_path(path)])
    assert len(scans(hub)) == 30


def test_endless_conflicts_end_in_a_clear_refusal(made, monkeypatch):
    hub, folder = made

    def always_late(self, snap):  # type: ignore[no-untyped-def]
        raise LakeConflict("another writer")

    monkeypatch.setattr(importer._Import, "_write", always_late)
    with pytest.raises(LakeConflict, match="was not applied: other writers changed the same table 5 times"):
        import_files(hub.db, hub.settings, SYSTEM, hm.SLUG, "scans", [ImportFile.from_path(batch(folder, "A", 3))])
    assert scans(hub) == []


def _users(hub) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from exporthub.models import User

    with hub.db.read() as s:
        return [(u.id, u.username) for u in s.scalars(select(User))]


_RACER = """
import json, sys, time
from pathlib import Path
go, ready, path = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
from cli import main
import exporthub.importer  # everything imported before the start signal
ready.touch()
while not go.exists():
    time.sleep(0.005)
code = main(["import", "hand-made", "scans", path, "--json"])
print(json.dumps({"code": code}))
"""


def _race(hub, paths: list[Path], database_url: str | None = None) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Import each path from its own process, all released at once; (exit code, stderr) of each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(hub.settings.data_dir)
    if not hub.settings.lake_is_local:  # the lake on object storage: the same bucket for every racer
        env["EXPORTHUB_LAKE_URL"] = hub.settings.lake_url
        env["EXPORTHUB_S3_ENDPOINT_URL"] = hub.settings.s3_endpoint_url or ""
        env["EXPORTHUB_S3_REGION"] = hub.settings.s3_region
    if database_url:
        env["EXPORTHUB_DATABASE_URL"] = database_url
        env["EXPORTHUB_SECRET_KEY"] = "x" * 32
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        ready = [Path(tmp) / f"ready-{i}" for i in range(len(paths))]
        procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(go), str(r), str(p)], env=env, cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for r, p in zip(ready, paths, strict=True)]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a racer died"
            time.sleep(0.05)
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            lines = out.strip().splitlines()
            results.append((json.loads(lines[-1])["code"] if lines else -1, err))
    return results


def _check_race(hub, folder: Path, url: str | None = None) -> None:  # type: ignore[no-untyped-def]
    a, b = batch(folder, "A", 2000), batch(folder, "B", 1500)
    results = _race(hub, [a, b], url)
    rows = scans(hub)
    landed = {name for name, n in (("A", 2000), ("B", 1500))
              if sum(1 for _, code in rows if code.startswith(name)) == n}
    for (code, err), name in zip(results, "AB", strict=True):
        assert code in (0, 2), err
        assert (code == 0) == (name in landed), (code, err)
        if code == 2:
            assert "other writers changed the same table" in err
    assert landed, results
    # Never a lost or doubled row: exactly the landed batches, each id once, in one rising run.
    assert len(rows) == sum(2000 if n == "A" else 1500 for n in landed)
    assert [i for i, _ in rows] == list(range(1, len(rows) + 1))
    # The same file from two processes at once: it lands once, the other is refused as duplicates.
    again = _race(hub, [a, a], url)
    assert sorted(code for code, _ in again) == ([0, 2] if "A" not in landed else [2, 2]), again
    assert sum(1 for _, code in scans(hub) if code.startswith("A")) == 2000


@pytest.mark.slow
def test_two_processes_import_at_once_on_sqlite(made):
    hub, folder = made
    _check_race(hub, folder)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_import_at_once_on_postgresql(tmp_path, monkeypatch, pg_url):
    hub = make_hub(tmp_path, monkeypatch, DATABASE_URL=pg_url, SECRET_KEY="x" * 32)
    hm.make_project(hub)
    _check_race(hub, tmp_path / "files", pg_url)
    hub.db.dispose()


@pytest.mark.slow
def test_two_processes_import_at_once_with_the_lake_on_s3(tmp_path, monkeypatch, s3_env):
    hub = make_hub(tmp_path, monkeypatch, LAKE_URL=f"s3://{s3_env['bucket']}/lake",
                   S3_ENDPOINT_URL=s3_env["EXPORTHUB_S3_ENDPOINT_URL"], S3_REGION=s3_env["EXPORTHUB_S3_REGION"])
    hm.make_project(hub)
    _check_race(hub, tmp_path / "files")
