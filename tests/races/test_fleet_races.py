"""The races SQLite's serialised writes hide, forced between real processes on SQLite and on
PostgreSQL + Redis: workers killed, drained, frozen and clock-skewed mid-job, cancels against claims,
schedules, reapers and retention against each other. Each test asserts the end state in the database
and on disk (:meth:`Fleet.assert_consistent`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from exporthub.models import Job, PeriodicRun
from exporthub.states import JobStatus
from tests.races._fleet import LEASE, REPO, Fleet, wait_for

pytestmark = [pytest.mark.slow]


def _worker_of(fleet: Fleet, job: Job) -> str:
    pid = int((job.worker_id or "").split(":")[1])
    return next(name for name, proc in fleet.procs.items() if proc.pid == pid)


def _started_lines(fleet: Fleet, job_id: int) -> list[str]:
    return [m for m in fleet.logs(job_id) if m.startswith("Started on")]


def test_a_fleet_under_fire_kill_9_and_sigterm_mid_job(fleet: Fleet) -> None:
    """3 workers, 45 jobs: SIGKILL one worker mid-job (its job is reaped exactly once, after its lease ran
    out) and SIGTERM another mid-job (its job completes on the third worker); every other job runs once."""
    projects = fleet.projects(45)
    fleet.worker("a", WORKER_THREADS="1")
    fleet.wait_until_workers(1)
    killed_job = fleet.start(projects[0], 120)
    fleet.wait_running(killed_job)
    fleet.worker("b", WORKER_THREADS="1")
    fleet.wait_until_workers(2)
    drained_job = fleet.start(projects[1], 8)
    drained = fleet.wait_running(drained_job)
    assert (_worker_of(fleet, fleet.job(killed_job)), _worker_of(fleet, drained)) == ("a", "b")
    fleet.worker("c", WORKER_THREADS="2")
    short = [fleet.start(slug, 0.2) for slug in projects[2:]]
    # a and b each have their one thread busy, so only c can take the short ones: wait until it has.
    wait_for(lambda: any(fleet.job(j).status is not JobStatus.READY for j in short), 60, "c never took a job")

    os.killpg(fleet.procs["a"].pid, signal.SIGKILL)
    assert fleet.stop("b", signal.SIGTERM) == 0  # drains: hands its job back within the 1 s grace
    # Reaped once its lease ran out: a deadline for the wait (generous, the machine may be busy), not a timing.
    wait_for(lambda: fleet.job(killed_job).status is JobStatus.FAILED, LEASE + 120, "the killed job was never reaped")
    jobs = fleet.wait_final([killed_job, drained_job, *short], timeout=240)

    killed = jobs[killed_job]
    assert (killed.status, killed.error) == (JobStatus.FAILED, "worker lost")
    assert [m for m in fleet.logs(killed_job) if "stopped sending heartbeats" in m] != []
    assert len([m for m in fleet.logs(killed_job) if "stopped sending heartbeats" in m]) == 1
    assert [e.target for e in fleet.audit("reap")] == [f"job:{killed_job}"]
    silent_for = (killed.finished_at - killed.heartbeat_at).total_seconds()
    print(f"[{fleet.backend}] reaped {silent_for:.1f} s after its last heartbeat (lease {LEASE:.0f} s)")
    assert silent_for >= LEASE  # never before its lease ran out (how soon after is the wait's deadline above)

    moved = jobs[drained_job]
    assert moved.status is JobStatus.COMPLETED and moved.attempt == 2 and _worker_of(fleet, moved) == "c"
    assert any("goes back to the queue" in m for m in fleet.logs(drained_job))
    for job_id in short:
        assert jobs[job_id].status is JobStatus.COMPLETED and jobs[job_id].attempt == 1, job_id
        assert len(_started_lines(fleet, job_id)) == 1, fleet.logs(job_id)
    fleet.assert_consistent([killed_job, drained_job, *short])
    for name in ("b", "c"):
        assert "Traceback" not in fleet.log_of(name), name


def test_sigterm_lets_a_job_finish_within_the_grace_period(fleet: Fleet) -> None:
    (project,) = fleet.projects(1)
    fleet.worker("a", SHUTDOWN_GRACE_SECONDS="30")
    fleet.wait_until_workers(1)
    job_id = fleet.start(project, 3)
    fleet.wait_running(job_id)
    assert fleet.stop("a", signal.SIGTERM) == 0
    job = fleet.job(job_id)
    assert job.status is JobStatus.COMPLETED and job.attempt == 1  # finished by the draining worker itself
    fleet.assert_consistent([job_id])


def test_a_worker_frozen_past_its_lease_loses_the_job_and_its_output(fleet: Fleet) -> None:
    """Reaper against a finishing worker: the frozen worker wakes up and finishes, but the reaper's
    commit came first, so its finish changes nothing and its files are deleted."""
    projects = fleet.projects(1)
    fleet.worker("a", WORKER_THREADS="1")
    fleet.wait_until_workers(1)
    job_id = fleet.start(projects[0], 3)
    fleet.wait_running(job_id)
    fleet.worker("reaper", WORKER_THREADS="1")
    os.killpg(fleet.procs["a"].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: fleet.job(job_id).status is JobStatus.FAILED, LEASE + 30, "the frozen job was not reaped")
    finally:
        os.killpg(fleet.procs["a"].pid, signal.SIGCONT)
    wait_for(lambda: "its output was dropped" in fleet.log_of("a"), 30, "the woken worker did not notice")
    job = fleet.job(job_id)
    assert (job.status, job.error) == (JobStatus.FAILED, "worker lost")
    assert len(fleet.audit("reap")) == 1
    fleet.assert_consistent([job_id])


def test_cancels_racing_claims_leave_every_job_in_one_final_state(fleet: Fleet) -> None:
    projects = fleet.projects(40)
    jobs = [fleet.start(slug, 2) for slug in projects]  # ~14 s of work for 6 threads: cancels meet every state
    for name in ("a", "b", "c"):
        fleet.worker(name)
    doomed = jobs[::2]
    crowd = [subprocess.Popen([sys.executable, "-m", "tests.races._crowd", "cancel", *map(str, part)],
                              env=fleet.env, cwd=REPO, stdout=subprocess.PIPE, text=True)
             for part in (doomed[:10], doomed[10:])]
    outputs = [proc.communicate(timeout=120)[0] for proc in crowd]
    final = fleet.wait_final(jobs, timeout=180)
    cancelled = [j for j in jobs if final[j].status is JobStatus.CANCELLED]
    assert set(cancelled) <= set(doomed)  # only what was cancelled
    assert all(final[j].status is JobStatus.COMPLETED for j in jobs if j not in doomed)
    assert all(final[j].attempt <= 1 for j in jobs)
    events = fleet.audit("cancel")
    assert sorted(int(e.target.split(":")[1]) for e in events) == sorted(doomed)  # one event per request
    too_late = sum(line.split()[1] == "refused" for o in outputs for line in o.splitlines())
    print(f"[{fleet.backend}] {len(cancelled)} of {len(doomed)} cancels landed before the job completed; "
          f"{too_late} came too late")
    assert cancelled, "no cancel met a waiting or running job: the race was not exercised"
    fleet.assert_consistent(jobs)


def _scheduled_start_seconds(fleet: Fleet, projects: list[str]) -> float:
    """How long one scheduled start takes on this machine now: the mean of a few in a row after one to
    warm up, each scheduled an hour ahead on a spare project and cancelled afterwards (so nothing of
    them runs or stays waiting)."""
    later = datetime.now(UTC) + timedelta(hours=1)
    ids = [fleet.service.start("ops", projects[0], "slow", {"seconds": 0}, run_at=later).id]
    began = time.monotonic()
    ids += [fleet.service.start("ops", slug, "slow", {"seconds": 0}, run_at=later).id for slug in projects[1:]]
    took = (time.monotonic() - began) / (len(projects) - 1)
    for job_id in ids:
        fleet.service.cancel("ops", job_id)
    return took


def test_jobs_scheduled_for_one_moment_each_run_exactly_once(fleet: Fleet) -> None:
    slugs = fleet.projects(206)
    projects, spare = slugs[:200], slugs[200:]
    fleet.worker("a")
    fleet.worker("b")
    fleet.wait_until_workers(2)
    # The moment: after the last of the 200 starts, with room for the machine to get twice as slow as it
    # just was (a fixed 20 s was waste on a quiet machine and too short at a load of 8).
    lead = 3 + 2 * len(projects) * _scheduled_start_seconds(fleet, spare)
    at = datetime.now(UTC) + timedelta(seconds=lead)
    views = [fleet.service.start("ops", slug, "slow", {"seconds": 0}, run_at=at) for slug in projects]
    left = (at - datetime.now(UTC)).total_seconds()
    print(f"[{fleet.backend}] scheduled {lead:.1f} s ahead; {left:.1f} s of it left after the last start")
    assert left > 0, "creating the jobs took longer than the schedule allows"
    assert all(v.status is JobStatus.WAITING for v in views)
    jobs = [v.id for v in views]
    final = fleet.wait_final(jobs, timeout=300)
    for job_id in jobs:
        assert final[job_id].status is JobStatus.COMPLETED and final[job_id].attempt == 1, job_id
        assert len(_started_lines(fleet, job_id)) == 1, fleet.logs(job_id)
        assert final[job_id].started_at >= at - timedelta(seconds=1)  # nothing ran early
    fleet.assert_consistent(jobs)


def test_reapers_in_many_processes_reap_a_lost_job_once(fleet: Fleet) -> None:
    (project,) = fleet.projects(1)
    job_id = fleet.start(project, 1)
    with fleet.db.write() as s:  # as a worker killed a minute ago would have left it
        s.execute(update(Job).where(Job.id == job_id).values(
            status=JobStatus.RUNNING, worker_id="gone-host:1:dead00", attempt=1,
            started_at=datetime.now(UTC) - timedelta(minutes=1), heartbeat_at=datetime.now(UTC) - timedelta(minutes=1)))
    crowd = [subprocess.Popen([sys.executable, "-m", "tests.races._crowd", "reap"], env=fleet.env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=120)[0] for proc in crowd]
    assert sum(f"[{job_id}]" in out for out in outputs) == 1, outputs
    assert len([m for m in fleet.logs(job_id) if "worker lost" in m]) == 1
    assert len(fleet.audit("reap")) == 1
    fleet.assert_consistent([job_id])


def test_retention_runs_once_per_period_across_workers(fleet: Fleet) -> None:
    projects = fleet.projects(12)
    jobs = [fleet.start(slug, 0) for slug in projects]
    fleet.worker("a")
    fleet.wait_final(jobs, timeout=120)
    fleet.stop("a")
    with fleet.db.write() as s:  # every job finished long ago
        s.execute(update(Job).where(Job.id.in_(jobs[:8])).values(finished_at=datetime.now(UTC) - timedelta(days=90)))
    period = 3
    for name in ("r1", "r2", "r3"):
        fleet.worker(name, RETENTION_INTERVAL_SECONDS=str(period))
    wait_for(lambda: all(fleet.job(j).removed_at is not None for j in jobs[:8]), 60, "retention never ran")
    observed_from = datetime.now(UTC)
    time.sleep(4 * period)  # a few more periods: each is one run, not one per worker
    events = [e for e in fleet.audit("cleanup") if e.actor is None]
    times = [e.time for e in events]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # An event is written when a run ends, so two runs of one period would be a fraction of a second
    # apart; one run per period keeps them about a period apart, give or take how long a run takes.
    assert gaps and min(gaps) >= period / 2, gaps
    within = [t for t in times if t >= observed_from]
    assert 1 <= len(within) <= 4 * period // period + 1, times
    reported = [int(x) for e in events for x in re.findall(r"job:(\d+)", e.detail or "")]
    assert sorted(reported) == sorted(jobs[:8])  # each removal reported once, by one run
    assert all(fleet.job(j).removed_at is None for j in jobs[8:])  # young jobs stay

    # Operators running `exporthub cleanup` at once: every job is reported by exactly one of them.
    for name in ("r1", "r2", "r3"):
        fleet.stop(name)
    with fleet.db.write() as s:
        s.execute(update(Job).where(Job.id.in_(jobs[8:])).values(finished_at=datetime.now(UTC) - timedelta(days=90)))
    crowd = [subprocess.Popen([sys.executable, "-m", "cli", "cleanup", "--json"], env=fleet.env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    removed = [json.loads(p.communicate(timeout=120)[0])["jobs"] for p in crowd]
    assert sorted(j for r in removed for j in r) == sorted(jobs[8:])


# ---------------------------------------------------------------------- PostgreSQL + Redis only


def test_a_worker_whose_clock_runs_90_seconds_ahead_reaps_no_healthy_job(pg_fleet: Fleet, faketime: str) -> None:
    """Leases are judged on the database's clock: a skewed host running housekeeping reaps nothing."""
    fleet = pg_fleet
    (project,) = fleet.projects(1)
    fleet.worker("steady", REAPER_INTERVAL_SECONDS="3600")  # runs the job; no housekeeping after its start
    fleet.wait_until_workers(1)
    job_id = fleet.start(project, 15)
    fleet.wait_running(job_id)
    with fleet.db.read() as s:
        runs_before = s.scalar(select(PeriodicRun.runs).where(PeriodicRun.name == "housekeeping")) or 0
    fleet.worker("skewed", skew="+90s")
    final = fleet.wait_final([job_id], timeout=120)[job_id]
    with fleet.db.read() as s:
        row = s.get(PeriodicRun, "housekeeping")
    steady_pid = fleet.procs["steady"].pid  # (faketime starts the skewed worker as its own child)
    assert row.holder is not None and f":{steady_pid}:" not in row.holder and row.runs - runs_before >= 10
    stamp = re.search(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", fleet.log_of("skewed"), re.M)
    assert stamp and datetime.fromisoformat(stamp.group(1)) - datetime.now() > timedelta(seconds=60)  # really skewed
    assert final.status is JobStatus.COMPLETED and final.attempt == 1
    assert fleet.audit("reap") == []
    fleet.assert_consistent([job_id])


def test_a_start_with_redis_down_exits_0_and_the_job_runs_once_redis_is_back(pg_fleet: Fleet, pg_backend) -> None:  # type: ignore[no-untyped-def]
    fleet = pg_fleet
    (project,) = fleet.projects(1)
    pg_backend.redis.stop()
    out = fleet.cli("export", "slow", "--project", project, "--user", "ops", "--var", "seconds=0", "--json")
    assert out.returncode == 0, out.stderr
    assert "queued; no worker reachable yet" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    job_id = json.loads(out.stdout)["job"]["id"]
    assert fleet.job(job_id).status is JobStatus.READY
    pg_backend.redis.start()
    fleet.worker("a")
    final = fleet.wait_final([job_id], timeout=90)[job_id]
    assert final.status is JobStatus.COMPLETED and final.attempt == 1
    fleet.assert_consistent([job_id])


def test_a_worker_without_redis_is_unhealthy_quiet_and_never_strands_jobs(pg_fleet: Fleet) -> None:
    from exporthub.dispatch import NullDispatcher

    fleet = pg_fleet
    projects = fleet.projects(10)
    fleet.worker("cut-off", REDIS_URL="redis://127.0.0.1:9/0")  # reaches PostgreSQL, not Redis
    fleet.worker("healthy")

    def states() -> dict[str, str]:
        out = fleet.cli("workers", "--json")
        return {w["id"]: w["state"] for w in json.loads(out.stdout)["workers"]}

    wait_for(lambda: sorted(states().values()) == ["running", "unhealthy"], 60, "the cut-off worker never said so")
    # Jobs whose queue message was lost: only housekeeping's re-queue can start them, and the worker that
    # cannot reach the queue must not take that turn.
    fleet.service.dispatcher = NullDispatcher()
    jobs = [fleet.start(slug, 0) for slug in projects]
    final = fleet.wait_final(jobs, timeout=60)
    assert all(j.status is JobStatus.COMPLETED for j in final.values())
    assert all(_worker_of(fleet, j) == "healthy" for j in final.values())
    log = fleet.log_of("cut-off")
    assert log.count("Traceback") == 0 and log.count("queue unreachable") <= 3, log[-2000:]
    fleet.assert_consistent(jobs)
