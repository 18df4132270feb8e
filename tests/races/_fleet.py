"""A fleet of real worker processes around one metadata database and one queue, for the race suite.

Each :class:`Fleet` is one instance: its own data folder, a PostgreSQL database and a Redis queue (or
SQLite and SqliteHuey), jobs of the test-only ``slow`` type (:mod:`tests._slow_exporter`) on as many
projects as a test needs, and worker processes started, stopped, killed, frozen or clock-skewed the
way an operator's fleet would be. Jobs are created through the job service in this process and handed
to the real queue; everything else happens in the workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from exporthub.db import Database, forget_databases
from exporthub.models import AuditEvent, ExportSession, File, Job, JobLog
from exporthub.settings import reload_settings
from exporthub.states import FINISHED_STATUSES, JobStatus
from tests._slow_exporter import write_config

REPO = Path(__file__).resolve().parents[2]
ADMIN = "ops"
# Short enough for tests, long enough that a busy 2-core machine never starves a heartbeat past it.
LEASE, HEARTBEAT, INTERVAL = 6.0, 0.5, 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A Redis server of the test's own, on a free port, that the test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _answers(self.port), 10, "the private Redis did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float, message: str, every: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(every)


@dataclass
class Fleet:
    tmp: Path
    env: dict[str, str]
    db: Database
    backend: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    service: Any = None

    # ------------------------------------------------------------------ processes
    def worker(self, name: str, *, skew: str | None = None, **extra: str) -> subprocess.Popen[bytes]:
        """Start ``exporthub worker`` (under ``faketime`` when ``skew`` is given, e.g. ``"+90s"``)."""
        env = dict(self.env, **{f"EXPORTHUB_{k}": v for k, v in extra.items()})
        command = [sys.executable, "-m", "cli", "worker"]
        if skew is not None:
            # A host whose wall clock is off: its monotonic clock (timeouts, waits) runs true, as on a real
            # machine whose NTP is wrong; faking both makes every timed wait last the offset instead.
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            command = ["faketime", "-f", skew, *command]
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log_of(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def cli(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env or self.env, cwd=REPO,
                              input=stdin, capture_output=True, text=True, timeout=timeout)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return int(proc.returncode)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def wait_until_workers(self, count: int, timeout: float = 60) -> None:
        from exporthub import workers

        settings = reload_settings()
        wait_for(lambda: workers.live_count(self.db, settings) >= count, timeout, f"{count} workers never reported")

    # ------------------------------------------------------------------ jobs
    def projects(self, count: int) -> list[str]:
        """``count`` projects (``p-001`` …) with the admin as a member of each."""
        from exporthub.accounts import AccountService

        accounts = AccountService(self.db)
        slugs = [f"p-{i:03d}" for i in range(1, count + 1)]
        existing = {p.slug for p in accounts.list_projects(ADMIN)}
        for slug in slugs:
            if slug not in existing:
                accounts.create_project(ADMIN, slug, f"Project {slug}", "Europe/Berlin")
        return slugs

    def start(self, project: str, seconds: float, *, run_at: Any = None) -> int:
        return int(self.service.start(ADMIN, project, "slow", {"seconds": seconds}, run_at=run_at).id)

    def job(self, job_id: int) -> Job:
        with self.db.read() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job

    def wait_final(self, job_ids: list[int], timeout: float) -> dict[int, Job]:
        def finished() -> dict[int, Job] | None:
            with self.db.read() as s:
                jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(job_ids)))}
            done = all(j.status in FINISHED_STATUSES for j in jobs.values())
            return jobs if done else None

        return wait_for(finished, timeout, "not every job reached a final state", every=0.25)  # type: ignore[no-any-return]

    def wait_running(self, job_id: int, timeout: float = 60) -> Job:
        return wait_for(lambda: (j := self.job(job_id)).status is JobStatus.RUNNING and j,  # type: ignore[return-value]
                        timeout, f"job {job_id} never ran")

    def logs(self, job_id: int) -> list[str]:
        with self.db.read() as s:
            return list(s.scalars(select(JobLog.message).where(JobLog.job_id == job_id).order_by(JobLog.id)))

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.read() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))

    # ------------------------------------------------------------------ the end state, checked
    def assert_consistent(self, job_ids: list[int]) -> dict[int, Job]:
        """Every job in exactly one final state; files on disk and rows exactly for completed jobs; export
        sessions only for delivered exports; one final log line per job."""
        files_root = Path(self.env["EXPORTHUB_DATA_DIR"]) / "files"
        with self.db.read() as s:
            jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(job_ids)))}
            rows = {jid: list(s.scalars(select(File).where(File.job_id == jid, File.deleted_at.is_(None))))
                    for jid in job_ids}
            sessions = dict(s.execute(select(ExportSession.job_id, func.count())
                                      .where(ExportSession.job_id.in_(job_ids)).group_by(ExportSession.job_id)).all())
        for job_id, job in jobs.items():
            assert job.status in FINISHED_STATUSES, (job_id, job.status)
            on_disk = sorted(p.name for p in (files_root / job.project.slug / "slow" / str(job_id)).glob("*")
                             if p.is_file()) if (files_root / job.project.slug).exists() else []
            finals = [m for m in self.logs(job_id) if m.startswith(("Completed", "Cancelled", "Worker ", "Could not"))
                      or "worker lost" in m]
            if job.status is JobStatus.COMPLETED:
                assert len(rows[job_id]) == 1 and on_disk == [rows[job_id][0].name], (job_id, rows[job_id], on_disk)
                assert sessions.get(job_id) == 1, job_id
                assert len([m for m in finals if m.startswith("Completed")]) == 1, (job_id, finals)
            else:
                assert rows[job_id] == [] and sessions.get(job_id) is None, (job_id, job.status)
                folder = files_root / job.project.slug / "slow" / str(job_id)
                wait_for(lambda folder=folder: not [p for p in folder.glob("*") if p.is_file()], 10,
                         f"files of job {job_id} ({job.status}) stayed on disk")
        return jobs


@dataclass
class Backend:
    name: str
    database_url: str | None
    redis: PrivateRedis | None
    redis_url: str | None


def fleet_env(tmp: Path, backend: Backend, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env.update({
        "PYTHONPATH": str(REPO),
        "EXPORTHUB_DATA_DIR": str(tmp / "data"),
        "EXPORTHUB_EXTRA_EXPORTERS": "tests._slow_exporter",
        "EXPORTHUB_EXPORT_CONFIG": str(write_config(tmp / "config.json")),
        "EXPORTHUB_JOB_LEASE_SECONDS": str(int(LEASE)),
        "EXPORTHUB_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "EXPORTHUB_REAPER_INTERVAL_SECONDS": str(INTERVAL),
        "EXPORTHUB_QUEUE_MAX_DELAY_SECONDS": "0.1",
        "EXPORTHUB_SHUTDOWN_GRACE_SECONDS": "1",
        "EXPORTHUB_REQUEUE_AFTER_SECONDS": "3",
        "EXPORTHUB_WORKER_THREADS": "2",
        "EXPORTHUB_QUEUE_NAME": f"race-{tmp.name[-40:]}",
    })
    if backend.database_url:
        env["EXPORTHUB_DATABASE_URL"] = backend.database_url
        env["EXPORTHUB_SECRET_KEY"] = "race-suite-secret-key-0123456789"
    if backend.redis_url:
        env["EXPORTHUB_REDIS_URL"] = backend.redis_url
        env["EXPORTHUB_SECRET_KEY"] = "race-suite-secret-key-0123456789"
    env.update({f"EXPORTHUB_{k}": v for k, v in extra.items()})
    return env


def open_fleet(tmp: Path, backend: Backend, monkeypatch: Any, **extra: str) -> Iterator[Fleet]:
    """The instance: migrated, an admin, this process wired to the same database and queue."""
    from exporters import REGISTRY
    from exporters.registry import Registry
    from exporthub.accounts import SystemActor
    from exporthub.db import get_database
    from exporthub.export_config import load_config
    from exporthub.first_run import initialize
    from exporthub.jobs import JobService
    from tests._slow_exporter import EXPORTER as SLOW

    env = fleet_env(tmp, backend, **extra)
    for key in [k for k in os.environ if k.startswith("EXPORTHUB_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("EXPORTHUB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delitem(sys.modules, "worker", raising=False)  # its queue is built from the settings
    forget_databases()
    settings = reload_settings()
    db = get_database(settings)
    initialize(db, SystemActor("race-suite"), ADMIN, "race-suite-password")
    import worker  # noqa: PLC0415 - after the environment is in place

    registry = Registry()
    for exporter in REGISTRY:
        registry.register(exporter)
    if "slow" not in registry:
        registry.register(SLOW)
    fleet = Fleet(tmp, env, db, backend.name)
    fleet.service = JobService(db, settings, worker.HueyDispatcher(), registry=registry,
                               config=load_config(settings.export_config_path))
    try:
        yield fleet
    finally:
        fleet.close()
        forget_databases()
        monkeypatch.delitem(sys.modules, "worker", raising=False)
