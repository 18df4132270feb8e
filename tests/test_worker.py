"""A real worker process picks up jobs queued by another process: SqliteHuey, and Redis + PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from exporthub.db import Database
from exporthub.models import Job
from exporthub.states import FINISHED_STATUSES, JobStatus
from tests._processes import cli, start_worker, stop


def wait_for(env: dict[str, str], job_id: int, user: str = "analyst", timeout: float = 60) -> dict:
    """Wait until the job is in a final state (or the deadline passed), then return what ``exporthub job
    --json`` says about it. The wait reads the job's row (a CLI process per poll would cost more CPU
    than the worker it waits for on a busy machine); the answer comes from the CLI."""
    db = Database(env.get("EXPORTHUB_DATABASE_URL") or f"sqlite:///{Path(env['EXPORTHUB_DATA_DIR']) / 'exporthub.db'}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with db.read() as s:
                if s.scalar(select(Job.status).where(Job.id == job_id)) in FINISHED_STATUSES:
                    break
            time.sleep(0.2)
    finally:
        db.dispose()
    return json.loads(cli(env, "job", str(job_id), "--user", user, "--json").stdout)["job"]  # type: ignore[no-any-return]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env.update({"EXPORTHUB_DATA_DIR": str(tmp_path / "data"), "EXPORTHUB_HEARTBEAT_SECONDS": "0.5"})
    env.update({f"EXPORTHUB_{k}": v for k, v in extra.items()})
    return env


def _round_trip(env: dict[str, str]) -> None:
    assert cli(env, "demo", "--scans", "5000", "--anchor", "2026-11-20").returncode == 0
    worker = start_worker(env)
    try:
        out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", "format=csv",
                  "--json")
        assert out.returncode == 0, out.stderr
        job = json.loads(out.stdout)["job"]
        assert job["status"] in ("ready", "running", "completed")
        done = wait_for(env, job["id"])
        assert done["status"] == "completed", done
        assert done["files"] and Path(done["files"][0]["path"]).exists()
        # --wait blocks until the worker finishes, and exits 0.
        out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", "format=parquet",
                  "--wait", "--timeout", "60", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["job"]["status"] == "completed"
    finally:
        stop(worker)


@pytest.mark.slow
def test_worker_picks_up_job_queued_by_another_process(tmp_path):
    _round_trip(base_env(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_scale_out_path_redis_and_postgresql(tmp_path, pg_url):
    """PostgreSQL metadata and a RedisHuey queue, with the worker in another process."""
    import redis

    name = f"exporthub-test-{uuid.uuid4().hex[:8]}"
    env = base_env(tmp_path, DATABASE_URL=pg_url, REDIS_URL="redis://127.0.0.1:6379/0", SECRET_KEY="k" * 32)
    env["EXPORTHUB_QUEUE_NAME"] = name
    try:
        _round_trip(env)
    finally:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)


@pytest.mark.slow
def test_wait_without_a_worker_says_so_at_once_and_gives_up(tmp_path):
    """Job pickup latency is measured in benchmarks/ (a timing belongs there, not in a test)."""
    env = base_env(tmp_path, WORKER_PATIENCE_SECONDS="2")  # the give-up, not the 30 s default, is what is tested
    assert cli(env, "demo", "--scans", "2000").returncode == 0
    out = cli(env, "export", "zones", "--project", "demo-open", "--user", "analyst", "--wait", "--timeout", "600",
              "--json", timeout=120)
    assert out.returncode == 1
    assert "No worker is taking jobs" in out.stderr and "exporthub worker" in out.stderr and "--inline" in out.stderr
    assert json.loads(out.stdout)["job"]["status"] == "ready"  # still queued: a worker will run it later
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_sigterm_drains_a_running_job_back_to_the_queue_for_the_next_worker(tmp_path):
    from tests._slow_exporter import write_config

    env = base_env(tmp_path, SHUTDOWN_GRACE_SECONDS="1", EXTRA_EXPORTERS="tests._slow_exporter",
                   EXPORT_CONFIG=str(write_config(tmp_path / "config.json")))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    assert cli(env, "demo", "--scans", "2000").returncode == 0
    first = start_worker(env, tmp_path / "first.log")
    try:
        out = cli(env, "export", "slow", "--project", "demo-open", "--user", "analyst", "--var", "seconds=8",
                  "--json")
        job_id = json.loads(out.stdout)["job"]["id"]
        db = Database(f"sqlite:///{tmp_path / 'data' / 'exporthub.db'}")
        deadline = time.monotonic() + 30
        while True:
            with db.read() as s:
                if s.get(Job, job_id).status is JobStatus.RUNNING:
                    break
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        stop(first, signal.SIGTERM)
        assert first.returncode == 0
        job = json.loads(cli(env, "job", str(job_id), "--user", "analyst", "--json").stdout)["job"]
        assert job["status"] == "ready" and job["files"] == []  # handed back, nothing half-written kept
        assert not [p for p in (tmp_path / "data" / "files").rglob("*") if p.is_file()]
        second = start_worker(env, tmp_path / "second.log")
        try:
            done = wait_for(env, job_id, timeout=60)
        finally:
            stop(second)
        assert done["status"] == "completed" and len(done["files"]) == 1
        log = [entry["message"] for entry in json.loads(
            cli(env, "job", str(job_id), "--user", "analyst", "--json").stdout)["job"]["log"]]
        assert any("goes back to the queue" in m for m in log)
        assert [m for m in log if m.startswith("Started on")][-1].endswith("(attempt 2)")
        assert "Traceback" not in (tmp_path / "first.log").read_text()
    finally:
        stop(first, signal.SIGKILL)
