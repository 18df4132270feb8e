"""A real worker process picks up jobs queued by another process: SqliteHuey, and Redis + PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from exporthub.states import FINISHED_STATUSES, JobStatus
from tests._processes import cli, start_worker, stop



def wait_for(env: dict[str, str], job_id: int, user: str = "analyst", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = json.loads(cli(env, "job", str(job_id), "--user", user, "--json").stdout)["job"]
        if job["status"] in {str(s) for s in FINISHED_STATUSES} or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env.update({"EXPORTHUB_DATA_DIR": str(tmp_path / "data"), "EXPORTHUB_HEARTBEAT_SECONDS": "0.5"})
    env.update({f"EXPORTHUB_{k}": v for k, v in extra.items()})
    return env


def _round_trip(env: dict[str, str]) -> None:
    assert cli(env, "demo", "--scans", "5000", "--anchor", "2026-11-20").returncode == 0
    worker = start_worker(env)
    try:
        started = time.monotonic()
        out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", "format=csv",
                  "--json")
        assert out.returncode == 0, out.stderr
        job = json.loads(out.stdout)["job"]
        assert job["status"] in ("ready", "running", "completed")
        done = wait_for(env, job["id"])
        elapsed = time.monotonic() - started
        assert done["status"] == "completed", done
        assert done["files"] and Path(done["files"][0]["path"]).exists()
        assert elapsed < 30
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
def test_queue_to_running_latency_is_well_under_a_second(tmp_path):
    env = base_env(tmp_path)
    assert cli(env, "demo", "--scans", "2000").returncode == 0
    worker = start_worker(env)
    try:
        time.sleep(3)  # let the consumer settle into its idle polling
        from exporthub.db import forget_databases, get_database
        from exporthub.models import Job
        from exporthub.settings import reload_settings

        os.environ["EXPORTHUB_DATA_DIR"] = env["EXPORTHUB_DATA_DIR"]
        try:
            settings = reload_settings()
            forget_databases()
            out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--json")
            job_id = json.loads(out.stdout)["job"]["id"]
            done = wait_for(env, job_id)
            with get_database(settings).read() as s:
                job = s.get(Job, job_id)
                latency = (job.started_at - job.created_at).total_seconds()
        finally:
            del os.environ["EXPORTHUB_DATA_DIR"]
            forget_databases()
            reload_settings()
        assert done["status"] == "completed"
        assert latency < 1.0, latency
    finally:
        stop(worker)


@pytest.mark.slow
def test_sigterm_fails_running_job_cleanly(tmp_path):
    env = base_env(tmp_path)
    # An xlsx of 300k rows takes tens of seconds: long enough to be caught running.
    assert cli(env, "demo", "--scans", "300000").returncode == 0
    worker = start_worker(env)
    try:
        out = cli(env, "export", "scans", "--project", "demo-open", "--user", "analyst", "--var", "format=xlsx",
                  "--json")
        job_id = json.loads(out.stdout)["job"]["id"]
        deadline = time.monotonic() + 30
        while json.loads(cli(env, "job", str(job_id), "--user", "analyst", "--json").stdout)["job"]["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        stop(worker, signal.SIGTERM)
        job = json.loads(cli(env, "job", str(job_id), "--user", "analyst", "--json").stdout)["job"]
        assert job["status"] == str(JobStatus.FAILED)
        assert "worker stopped" in job["error"]
        assert job["files"] == []
        leftovers = [p for p in (tmp_path / "data" / "files").rglob("*") if p.is_file()]
        assert leftovers == []
    finally:
        stop(worker, signal.SIGKILL)
