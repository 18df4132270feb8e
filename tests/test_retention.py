"""Retention: old finished jobs and their files go, orphaned temporary files go, active jobs stay."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from cli import main
from exporthub import retention
from exporthub.models import AuditEvent, File, Job, utcnow
from exporthub.states import JobStatus

OLD = timedelta(days=40)


def cleanup_events(hub) -> list[AuditEvent]:
    with hub.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "cleanup").order_by(AuditEvent.id)))


def finished_export(hub, fmt: str, export_type: str = "scans", age: timedelta | None = None) -> int:
    service = hub.service()
    job = service.start("manager", "demo-open", export_type, {"format": fmt} if export_type == "scans" else {})
    assert hub.run(job.id) is JobStatus.COMPLETED
    if age is not None:
        with hub.db.write() as s:
            s.execute(update(Job).where(Job.id == job.id).values(finished_at=utcnow() - age))
    return job.id


def files_of(hub, job_id: int) -> list[File]:
    with hub.db.read() as s:
        return list(s.scalars(select(File).where(File.job_id == job_id)))


def age_path(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_cleanup_removes_what_is_due_and_never_an_active_job(demo_hub):
    hub = demo_hub
    old = finished_export(hub, "csv", age=OLD)
    recent = finished_export(hub, "parquet")
    service = hub.service()
    cancelled = service.start("manager", "demo-open", "scans", {"format": "csv"})
    service.cancel("manager", cancelled.id)
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == cancelled.id).values(finished_at=utcnow() - OLD))
    # An active job that started long ago, with an old work folder: never touched.
    active = service.start("manager", "demo-open", "users")
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == active.id).values(
            status=str(JobStatus.RUNNING), started_at=utcnow() - OLD, heartbeat_at=utcnow(), worker_id="w:1:1"))
    active_work = hub.settings.files_dir / "demo-open" / "users" / str(active.id) / ".partial"
    active_work.mkdir(parents=True)
    (active_work / "users_export.xlsx").write_text("in progress")
    age_path(active_work / "users_export.xlsx", 7200)
    age_path(active_work, 7200)
    # An old finished child of that active parent: the parent still needs its files.
    child = finished_export(hub, "csv", export_type="zones", age=OLD)
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == child).values(parent_id=active.id))
    # Orphans: a finished job's work folder, an unrecorded file, a lost job folder. A stray file in the
    # lake is Iceberg maintenance's to judge (it deletes files no snapshot references), not retention's.
    stale_part = hub.settings.lake_dir / "demo-open" / "scans" / ".tmp-dead.parquet"
    stale_part.write_bytes(b"x")
    age_path(stale_part, 7200)
    recent_folder = hub.settings.files_dir / "demo-open" / "scans" / str(recent)
    (recent_folder / ".partial").mkdir()
    (recent_folder / ".partial" / "half.parquet").write_bytes(b"half")
    unrecorded_old, unrecorded_new = recent_folder / "renamed-not-recorded.csv", recent_folder / "just-published.csv"
    unrecorded_old.write_text("x")
    unrecorded_new.write_text("x")
    age_path(unrecorded_old, 7200)
    lost = hub.settings.files_dir / "demo-open" / "scans" / "99999"
    lost.mkdir()
    (lost / "ghost.csv").write_text("x")
    age_path(lost / "ghost.csv", 7200)
    old_files = files_of(hub, old)
    assert len(old_files) >= 1 and all((hub.settings.files_dir / f.storage_key).exists() for f in old_files)

    result = retention.cleanup(hub.db, hub.settings, actor="ops")

    assert result.jobs == sorted([old, cancelled.id])
    assert result.files == len(old_files)
    assert result.orphans == 3  # .partial of a finished job, old unrecorded file, lost folder's file
    with hub.db.read() as s:
        assert s.get(Job, old).removed_at is not None and s.get(Job, cancelled.id).removed_at is not None
        for job_id in (recent, active.id, child):
            assert s.get(Job, job_id).removed_at is None
        assert s.get(Job, active.id).status == JobStatus.RUNNING
    assert all(f.deleted_at is not None and not (hub.settings.files_dir / f.storage_key).exists()
               for f in files_of(hub, old))
    for job_id in (recent, child):
        assert all((hub.settings.files_dir / f.storage_key).exists() for f in files_of(hub, job_id))
    assert (active_work / "users_export.xlsx").exists()
    assert stale_part.exists()
    assert not (recent_folder / ".partial").exists()
    assert not unrecorded_old.exists() and unrecorded_new.exists()
    assert not lost.exists()
    (event,) = cleanup_events(hub)
    assert (event.actor, event.outcome) == ("ops", "ok")
    assert f"removed 2 jobs (job:{min(old, cancelled.id)}, job:{max(old, cancelled.id)})" in event.detail
    assert f"{len(old_files)} files" in event.detail and "3 orphaned temporary files" in event.detail

    # Nothing left to do: still exactly one event for the run, saying so.
    again = retention.cleanup(hub.db, hub.settings)
    assert (again.jobs, again.files, again.orphans) == ([], 0, 0)
    events = cleanup_events(hub)
    assert len(events) == 2 and "removed 0 jobs (none), 0 files" in events[-1].detail


def test_a_file_past_its_own_expiry_goes_alone(demo_hub):
    job_id = finished_export(demo_hub, "csv")
    first, *rest = files_of(demo_hub, job_id)
    with demo_hub.db.write() as s:
        s.get(File, first.id).expires_at = utcnow() - timedelta(minutes=1)
    result = retention.cleanup(demo_hub.db, demo_hub.settings)
    assert result.jobs == [] and result.expired_files == [first.id] and result.files == 1
    assert not (demo_hub.settings.files_dir / first.storage_key).exists()
    assert all((demo_hub.settings.files_dir / f.storage_key).exists() for f in rest)
    assert f"file:{first.id}" in cleanup_events(demo_hub)[-1].detail


def test_cleanup_command_and_the_periodic_task(demo_hub, capsys):
    old = finished_export(demo_hub, "csv", age=OLD)
    assert main(["cleanup", "--user", "admin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["jobs"] == [old] and out["files"] == len(files_of(demo_hub, old))
    from exporthub import periodic
    from exporthub.retention import cleanup

    # What each worker's housekeeping does every round: only the first caller in a period runs it.
    for holder in ("worker-a", "worker-b", "worker-a"):
        periodic.run_if_due(demo_hub.db, "retention", 3600, holder, lambda: cleanup(demo_hub.db, demo_hub.settings))
    events = cleanup_events(demo_hub)
    assert [(e.actor, e.outcome) for e in events] == [("admin", "ok"), (None, "ok")]
