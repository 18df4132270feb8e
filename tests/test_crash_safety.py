"""Crash safety: heartbeats, the reaper ("worker lost"), and kill -9 of a real worker mid-export."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from exporthub import maintenance
from exporthub.db import Database
from exporthub.dispatch import NullDispatcher
from exporthub.models import AuditEvent, File, Job, PeriodicRun, utcnow
from exporthub.states import JobStatus
from tests._processes import cli, start_worker, stop

LEASE, HEARTBEAT, REAPER = 3, 0.5, 1.0
BIG_DEMO = "300000"  # an xlsx of this many scans takes tens of seconds: long enough to kill mid-way


def crash_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update({
        "TMPDIR": str(tmp_path / "tmp"),  # the workers' own temporary files stay with the test
        "EXPORTHUB_DATA_DIR": str(tmp_path / "data"),
        "EXPORTHUB_JOB_LEASE_SECONDS": str(LEASE),
        "EXPORTHUB_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "EXPORTHUB_REAPER_INTERVAL_SECONDS": str(REAPER),
        "EXPORTHUB_WORKER_THREADS": "1",
    })
    env.update({f"EXPORTHUB_{k}": v for k, v in extra.items()})
    return env


def metadata(env: dict[str, str]) -> Database:
    """The instance's metadata DB, opened directly (the workers migrated it)."""
    return Database(f"sqlite:///{env['EXPORTHUB_DATA_DIR']}/exporthub.db")


def start_export(env: dict[str, str], fmt: str = "xlsx") -> int:
    out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", f"format={fmt}",
              "--json")
    assert out.returncode == 0, out.stderr
    return int(json.loads(out.stdout)["job"]["id"])


def wait_until_writing(db: Database, job_id: int, timeout: float = 90) -> Job:
    """Wait until the job runs and its writer has made progress (a partial file exists)."""
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as s:
            job = s.get(Job, job_id)
        if job.status == JobStatus.RUNNING and job.progress >= 10:
            assert job.progress < 90, "the export ran too fast to be caught in the middle"
            return job
        assert job.status in (JobStatus.READY, JobStatus.RUNNING), (job.status, job.error)
        assert time.monotonic() < deadline, "the export never got going"
        time.sleep(0.1)


def wait_while_running(db: Database, job_id: int, timeout: float) -> tuple[Job, float]:
    started = time.monotonic()
    while True:
        with db.read() as s:
            job = s.get(Job, job_id)
        if job.status != JobStatus.RUNNING or time.monotonic() - started > timeout:
            return job, time.monotonic() - started
        time.sleep(0.05)


def job_folder(env: dict[str, str], job_id: int) -> Path:
    return Path(env["EXPORTHUB_DATA_DIR"]) / "files" / "demo-open" / "scans" / str(job_id)


def assert_nothing_left(env: dict[str, str], db: Database, job_id: int) -> None:
    """No file row, and (once the reaper's post-commit delete has run) nothing in the job's folder."""
    folder = job_folder(env, job_id)
    deadline = time.monotonic() + 10
    while folder.exists() and list(folder.rglob("*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists() or [p for p in folder.rglob("*")] == [], list(folder.rglob("*"))
    with db.read() as s:
        assert s.scalars(select(File).where(File.job_id == job_id)).all() == []  # nothing to download


def assert_reaped_after_the_lease(job: Job) -> None:
    """The reaper waited out the lease: by the database's clock the job ended at least ``LEASE``
    seconds after its last heartbeat (a reap before that would fail a live job)."""
    assert job.heartbeat_at is not None and job.finished_at is not None
    assert job.finished_at - job.heartbeat_at >= timedelta(seconds=LEASE), (job.heartbeat_at, job.finished_at)


def pid_of(worker_id: str) -> int:
    return int(worker_id.split(":")[1])  # host:pid:thread


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_export_is_reaped_by_the_surviving_worker(tmp_path):
    env = crash_env(tmp_path)
    assert cli(env, "demo", "--scans", BIG_DEMO).returncode == 0
    workers = [start_worker(env, tmp_path / "a.log"), start_worker(env, tmp_path / "b.log")]
    try:
        db = metadata(env)
        job_id = start_export(env)
        job = wait_until_writing(db, job_id)
        victim = next(w for w in workers if w.pid == pid_of(job.worker_id))
        survivor = next(w for w in workers if w is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        job, latency = wait_while_running(db, job_id, timeout=LEASE + REAPER + 10)
        print(f"reaped {latency:.2f} s after SIGKILL (lease {LEASE} s, reaper every {REAPER} s)")
        assert job.status == JobStatus.FAILED and job.error == "worker lost"
        assert_reaped_after_the_lease(job)  # how soon is a figure to read (above), not to assert
        assert_nothing_left(env, db, job_id)
        stray = sum(p.stat().st_size for p in (tmp_path / "tmp").iterdir() if p.is_file())
        print(f"the killed worker left {stray:,} bytes of library temporary files in TMPDIR")
        # No stale lock: the type starts again, and the survivor runs it to the end.
        again = start_export(env, fmt="csv")
        done, _ = wait_while_running(db, again, timeout=0)
        deadline = time.monotonic() + 60
        while done.status not in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
            assert time.monotonic() < deadline
            time.sleep(0.2)
            with db.read() as s:
                done = s.get(Job, again)
        assert done.status == JobStatus.COMPLETED and pid_of(done.worker_id) == survivor.pid
        with db.read() as s:
            reaps = s.scalars(select(AuditEvent).where(AuditEvent.action == "reap")).all()
        assert [(e.target, e.detail.split(" (")[0]) for e in reaps] == [(f"job:{job_id}", "worker lost")]
    finally:
        for w in workers:
            stop(w)


@pytest.mark.slow
def test_killed_sole_worker_is_reaped_by_the_web_app_and_the_type_restarts_inline(tmp_path, monkeypatch):
    env = crash_env(tmp_path)
    assert cli(env, "demo", "--scans", BIG_DEMO).returncode == 0
    worker = start_worker(env, tmp_path / "w.log")
    try:
        db = metadata(env)
        job_id = start_export(env)
        wait_until_writing(db, job_id)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        stop(worker)
    # Nobody restarts the worker. The web app calls tick_if_due on its reruns (here: every 0.2 s).
    from exporthub.db import forget_databases, get_database
    from exporthub.settings import reload_settings

    for key, value in env.items():
        if key.startswith("EXPORTHUB_"):
            monkeypatch.setenv(key, value)
    forget_databases()
    settings = reload_settings()
    web_db = get_database(settings)
    monkeypatch.setattr(maintenance, "_last_try", float("-inf"))
    killed_at = time.monotonic()
    reaped_by_web = []
    while time.monotonic() - killed_at < LEASE + REAPER + 10:
        result = maintenance.tick_if_due(web_db, settings, NullDispatcher())
        if result and result.reaped:
            reaped_by_web += result.reaped
            break
        time.sleep(0.2)
    latency = time.monotonic() - killed_at
    print(f"web app reaped the job {latency:.2f} s after SIGKILL")
    assert reaped_by_web == [job_id]  # within the loop's deadline; how soon is the figure printed above
    with web_db.read() as s:
        job = s.get(Job, job_id)
        assert (job.status, job.error) == (JobStatus.FAILED, "worker lost")
    assert_reaped_after_the_lease(job)
    assert_nothing_left(env, web_db, job_id)
    out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", "format=csv",
              "--inline", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["job"]["status"] == "completed"
    forget_databases()


@pytest.mark.slow
def test_a_starting_worker_reaps_a_job_left_running_and_its_stray_files(tmp_path):
    env = crash_env(tmp_path)
    assert cli(env, "demo", "--scans", "2000").returncode == 0
    db = metadata(env)
    job_id = start_export(env, fmt="csv")  # queued; no worker yet
    with db.write() as s:  # as a worker killed an hour ago would have left it
        s.execute(update(Job).where(Job.id == job_id).values(
            status=str(JobStatus.RUNNING), worker_id="gone-host:1:1", heartbeat_at=utcnow() - timedelta(hours=1),
            started_at=utcnow() - timedelta(hours=1), attempt=1))
    folder = job_folder(env, job_id)
    (folder / ".partial").mkdir(parents=True)
    (folder / ".partial" / "scans_export.csv").write_text("half a fi")
    (folder / "scans_export.csv").write_text("renamed into place, never recorded")
    started = time.monotonic()
    worker = start_worker(env, tmp_path / "w.log")
    try:
        job, _ = wait_while_running(db, job_id, timeout=30)
        print(f"reaped by the starting worker {time.monotonic() - started:.2f} s after its launch")
        assert (job.status, job.error) == (JobStatus.FAILED, "worker lost")
        assert_nothing_left(env, db, job_id)
    finally:
        stop(worker)


# ----------------------------------------------------------------------------- in-process pieces


def _stale(hub, job_id: int) -> None:
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            status=str(JobStatus.RUNNING), worker_id="x:1:1", heartbeat_at=utcnow() - timedelta(hours=1)))


def test_tick_if_due_runs_at_most_once_per_interval(demo_hub, monkeypatch):
    monkeypatch.setattr(maintenance, "_last_try", float("-inf"))
    service = demo_hub.service()
    first = service.start("analyst", "demo-open", "scans", {"format": "csv"})
    _stale(demo_hub, first.id)
    interval = demo_hub.settings.reaper_interval_seconds
    result = maintenance.tick_if_due(demo_hub.db, demo_hub.settings, NullDispatcher(), now=1000.0)
    assert result is not None and result.reaped == [first.id]
    second = service.start("analyst", "demo-open", "scans", {"format": "csv"})  # the type is free again
    _stale(demo_hub, second.id)
    assert maintenance.tick_if_due(demo_hub.db, demo_hub.settings, NullDispatcher(),
                                   now=1000.0 + interval / 2) is None  # not due here: no DB work at all
    # Due in this process, but the database says this period's tick ran already (any process's).
    assert maintenance.tick_if_due(demo_hub.db, demo_hub.settings, NullDispatcher(), now=1000.0 + interval) is None
    assert service.get("analyst", second.id).status is JobStatus.RUNNING
    with demo_hub.db.write() as s:  # a period passes on the database's clock
        s.execute(update(PeriodicRun).values(started_at=utcnow() - timedelta(seconds=interval + 1)))
    result = maintenance.tick_if_due(demo_hub.db, demo_hub.settings, NullDispatcher(), now=1000.0 + 2 * interval)
    assert result is not None and result.reaped == [second.id]


def test_concurrent_callers_run_one_tick(demo_hub, monkeypatch):
    monkeypatch.setattr(maintenance, "_last_try", float("-inf"))
    calls = []
    gate = threading.Event()

    def slow_tick(*args, **kwargs):
        calls.append(1)
        gate.wait(5)
        return maintenance.TickResult([], [], [])

    monkeypatch.setattr(maintenance, "tick", slow_tick)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(
        maintenance.tick_if_due(demo_hub.db, demo_hub.settings, NullDispatcher()))) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(results) < 7 or not calls:  # the seven others gave up at once, while the one tick holds the gate
        assert time.monotonic() < deadline, (len(results), len(calls))
        time.sleep(0.01)
    assert results == [None] * 7
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sum(r is not None for r in results) == 1


def test_a_stalled_worker_that_was_reaped_stops_its_job(tmp_path, monkeypatch):
    """A worker that was silent past the lease finds its job reaped and stops it; its output never appears."""
    from exporters.registry import BaseExporter, Registry
    from exporthub.demo import create_demo
    from exporthub.export_config import parse_config
    from exporthub.jobs import JobService
    from exporthub.runner import run_job
    from tests._hubs import make_hub

    hub = make_hub(tmp_path, monkeypatch, HEARTBEAT_SECONDS="0.2", JOB_LEASE_SECONDS="2")
    create_demo(hub.db, hub.settings, scans=1000, seed=1)
    config = parse_config({"busy": {"title": "Busy", "group": "Test", "exportVariables": []}})
    running = threading.Event()

    class Busy(BaseExporter):
        export_type, formats, uses_lake = "busy", ("csv",), False

        def run(self, ctx):
            ctx.output_path("csv").write_text("partial output")
            running.set()
            while True:  # works forever, checking for cancellation like a writer does
                ctx.check_cancelled()
                time.sleep(0.02)

    registry = Registry()
    registry.register(Busy())
    job = JobService(hub.db, hub.settings, hub.dispatcher, registry=registry, config=config).start(
        "analyst", "demo-open", "busy")
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(
        run_job(hub.db, hub.settings, job.id, dispatcher=hub.dispatcher, registry=registry, config=config)))
    thread.start()
    assert running.wait(10)
    reaped: list[int] = []
    for _ in range(50):  # its watcher heartbeats every 0.2 s; catch a moment between two beats
        with hub.db.write() as s:  # as if its heartbeats had stopped for an hour
            s.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(hours=1)))
        reaped = maintenance.reap_stale(hub.db, hub.settings, hub.dispatcher)
        if reaped:
            break
    assert reaped == [job.id]
    stopped_at = time.monotonic()
    thread.join(10)
    assert not thread.is_alive(), "the worker kept running a job the reaper had failed"
    print(f"stalled worker stopped {time.monotonic() - stopped_at:.2f} s after being reaped")
    with hub.db.read() as s:
        final = s.get(Job, job.id)
        assert (final.status, final.error) == (JobStatus.FAILED, "worker lost")
        assert s.scalars(select(File).where(File.job_id == job.id)).all() == []
    folder = hub.settings.files_dir / "demo-open" / "busy" / str(job.id)
    assert not folder.exists() or list(folder.rglob("*")) == []
