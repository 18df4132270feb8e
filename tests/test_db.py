"""The metadata DB: migrations, the partial unique index, and concurrent writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from exporthub import db as db_module
from exporthub.db import Database, forget_databases, get_database, head_revision
from exporthub.errors import JobAlreadyRunning
from exporthub.models import Base, Job
from exporthub.states import JobStatus


def test_sqlite_runs_in_wal_with_busy_timeout(hub):
    with hub.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == hub.settings.sqlite_busy_timeout_ms


def test_migration_creates_every_model_table_and_the_partial_index(hub):
    tables = set(inspect(hub.db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    raw = sqlite3.connect(hub.settings.data_dir / "exporthub.db")
    (sql,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'uq_jobs_one_active_per_type'").fetchone()
    assert "UNIQUE" in sql and "WHERE status IN ('ready', 'running', 'waiting')" in sql


def test_model_columns_match_the_migration(hub):
    insp = inspect(hub.db.engine)
    for name, table in Base.metadata.tables.items():
        migrated = {c["name"] for c in insp.get_columns(name)}
        assert migrated == {c.name for c in table.columns}, name


def test_migrate_twice_is_a_no_op(hub):
    hub.db.migrate()
    with hub.db.read() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()


def test_head_revision_read_from_the_files_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db_module.__file__).parent / "migrations"))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_head_revision_refuses_two_heads(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "b.py").write_text("revision = '0002'\ndown_revision = '0001'\n")
    assert head_revision(tmp_path) == "0002"
    (versions / "c.py").write_text('revision = "0003"\ndown_revision = "0001"\n')
    with pytest.raises(RuntimeError, match="one head"):
        head_revision(tmp_path)


def test_a_current_database_is_not_migrated_again_and_a_stale_one_is(hub, monkeypatch):
    """Alembic runs once per deploy: a process that finds the schema at head never loads it."""
    calls: list[str] = []
    monkeypatch.setattr(Database, "migrate", lambda self: calls.append(self.url))
    forget_databases()
    get_database(hub.settings)
    assert calls == [] and get_database(hub.settings).is_current()
    with hub.db.write() as s:  # the state of a database from the deploy before
        s.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    forget_databases()
    get_database(hub.settings)
    assert calls == [hub.settings.database_url]


def _insert_active(db: Database, project_id: int, user_id: int) -> None:
    with db.write() as s:
        s.add(Job(project_id=project_id, export_type="scans", status="ready", progress=0, variables={},
                  user_id=user_id, cancel_requested=False, export_sessions_reset=False, attempt=0))


def _seed_project(db: Database) -> tuple[int, int]:
    from exporthub.models import Project, User

    with db.write() as s:
        project = Project(slug="p", name="P", timezone="UTC", status="open")
        user = User(username="u", display_name="U", active=True, is_admin=True, hourly_rate=0)
        s.add_all([project, user])
        s.flush()
        return project.id, user.id


def _assert_index_holds(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    project_id, user_id = _seed_project(db)
    _insert_active(db, project_id, user_id)
    with pytest.raises(IntegrityError):
        _insert_active(db, project_id, user_id)
    with db.write() as s:
        s.execute(text("UPDATE jobs SET status = 'completed'"))
    _insert_active(db, project_id, user_id)  # a finished job does not count


def test_partial_unique_index_on_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.migrate()
    _assert_index_holds(db)


@pytest.mark.postgres
def test_partial_unique_index_on_postgresql(pg_url):
    db = Database(pg_url)
    db.migrate()
    with db.engine.connect() as conn:
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_jobs_one_active_per_type'")
        ).scalar()
    assert "UNIQUE" in definition and "WHERE" in definition
    _assert_index_holds(db)
    db.dispose()


def _race(hub_factory, n: int = 20) -> list:
    service = hub_factory()
    results: list = []

    def attempt(_i: int):
        try:
            return service.start("manager", "demo-open", "scans", {"format": "csv"})
        except JobAlreadyRunning as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(attempt, range(n)))
    return results


def test_twenty_simultaneous_starts_give_one_job(demo_hub):
    results = _race(demo_hub.service)
    jobs = [r for r in results if not isinstance(r, Exception)]
    assert len(jobs) == 1
    assert sum(isinstance(r, JobAlreadyRunning) for r in results) == 19
    with demo_hub.db.read() as s:
        assert len(s.scalars(select(Job).where(Job.status == JobStatus.READY)).all()) == 1


_RACER = """
import json, os, sys, time
from pathlib import Path
from exporthub.db import get_database
from exporthub.dispatch import RecordingDispatcher
from exporthub.errors import JobAlreadyRunning
from exporters import REGISTRY
from exporthub.jobs import JobService
from exporthub.settings import get_settings

settings = get_settings()
service = JobService(get_database(settings, migrate=False), settings, RecordingDispatcher(), registry=REGISTRY)
go = Path(sys.argv[1])
Path(sys.argv[2]).touch()  # ready
while not go.exists():
    time.sleep(0.005)
try:
    job = service.start("manager", "demo-open", "scans", {"format": "csv"})
    print(json.dumps(["ok", job.id]))
except JobAlreadyRunning:
    print(json.dumps(["refused", None]))
except Exception as exc:  # anything else (e.g. "database is locked") fails the test
    print(json.dumps(["error", repr(exc)]))
"""


# What every racer imports, done once in the process the racers are forked from: its own imports, and
# what start() loads on first use (the scans exporter; the lake catalog, for the zone codes it validates).
_RACER_IMPORTS = ("exporthub.db", "exporthub.dispatch", "exporthub.errors", "exporters", "exporthub.jobs",
                  "exporthub.settings", "exporters.scans", "pyiceberg.catalog.sql", "pyiceberg.io.pyarrow",
                  "pyiceberg.table")


def _process_race(data_dir: str, database_url: str = "", n: int = 20) -> list[tuple[object, ...]]:
    """Start ``n`` processes that all call start() at the same moment."""
    import os

    from tests._processes import run_together

    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = data_dir
    if database_url:
        env["EXPORTHUB_DATABASE_URL"] = database_url
        env["EXPORTHUB_SECRET_KEY"] = "x" * 32
    return run_together(_RACER, env, n, preload=_RACER_IMPORTS)


@pytest.mark.slow
def test_twenty_processes_race_on_sqlite_without_lock_errors(demo_hub):
    results = _process_race(str(demo_hub.settings.data_dir))
    assert sorted(kind for kind, _ in results) == ["ok"] + ["refused"] * 19, results


@pytest.mark.postgres
@pytest.mark.slow
def test_twenty_processes_race_on_postgresql(tmp_path, monkeypatch, pg_url):
    from exporthub.demo import create_demo
    from tests._hubs import make_hub

    hub = make_hub(tmp_path, monkeypatch, DATABASE_URL=pg_url, SECRET_KEY="x" * 32)
    create_demo(hub.db, hub.settings, scans=2_000, seed=1)
    results = _process_race(str(hub.settings.data_dir), pg_url)
    assert sorted(kind for kind, _ in results) == ["ok"] + ["refused"] * 19, results
    hub.db.dispose()


def test_concurrent_writers_do_not_hit_database_is_locked(demo_hub):
    """Many threads writing progress and logs while jobs start: no 'database is locked'."""
    from exporthub.models import JobLog, utcnow

    job = demo_hub.service().start("manager", "demo-open", "scans", {"format": "csv"})

    def write(i: int) -> None:
        for _ in range(20):
            with demo_hub.db.write() as s:
                s.add(JobLog(job_id=job.id, time=utcnow(), level="info", message=f"w{i}"))
                s.execute(text("UPDATE jobs SET progress = progress WHERE id = :id"), {"id": job.id})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    with demo_hub.db.read() as s:
        assert s.execute(text("SELECT count(*) FROM job_logs WHERE message LIKE 'w%'")).scalar() == 160
