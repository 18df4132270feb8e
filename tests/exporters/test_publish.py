"""Publish: a parent job on a closed project, its children, the published files and the project status."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cli import main
from exporters import REGISTRY
from exporters.registry import Registry
from exporthub.errors import InvalidVariable, JobAlreadyRunning, NotFound, ProjectNotClosed
from exporthub.export_config import load_config
from exporthub.jobs import JobService
from exporthub.models import AuditEvent, Job, Project
from exporthub.settings import get_settings
from exporthub.states import JobStatus

REPORTS = ["scans", "users", "zones"]


def project(hub, slug: str = "demo-closed") -> Project:
    with hub.db.read() as s:
        return s.scalar(select(Project).where(Project.slug == slug))


def test_the_default_report_set_is_configured():
    config = load_config(get_settings().export_config_path)
    reports = config["publish"].variable("reports")
    assert reports.multiple and reports.default == ["scans", "zones", "cost", "statistics"]
    assert {"scans", "zones", "cost", "statistics"} <= set(reports.options)
    assert not config["publish"].allow_when_project_not_closed


def test_refused_on_an_open_project(demo_hub):
    with pytest.raises(ProjectNotClosed, match="Project must be closed"):
        demo_hub.service().start("manager", "demo-open", "publish", {"reports": REPORTS})
    assert demo_hub.dispatcher.enqueued == []


def test_refused_when_a_child_type_is_already_active(demo_hub):
    service = demo_hub.service()
    zones = service.start("manager", "demo-closed", "zones", {})
    with pytest.raises(JobAlreadyRunning, match="Export job already running: zones"):
        service.start("manager", "demo-closed", "publish", {"reports": REPORTS})
    with demo_hub.db.read() as s:
        types = s.scalars(select(Job.export_type).where(Job.project_id == project(demo_hub).id)).all()
        refusal = s.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
    assert types == ["zones"]  # neither the parent nor any child was created
    assert refusal[-1].target == "publish" and "zones" in refusal[-1].detail
    assert service.get("manager", zones.id).status is JobStatus.READY


def test_happy_path_publishes_the_children_files_and_marks_the_project(demo_hub):
    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": REPORTS})
    assert parent.status is JobStatus.WAITING
    assert [(c.export_type, c.status) for c in parent.children] == [(t, JobStatus.READY) for t in REPORTS]
    assert {job_id for job_id, _ in demo_hub.dispatcher.enqueued} == {c.id for c in parent.children}
    demo_hub.run_queued()
    done = service.get("manager", parent.id)
    assert done.status is JobStatus.COMPLETED, done.error
    assert [(c.export_type, c.status) for c in done.children] == [(t, JobStatus.COMPLETED) for t in REPORTS]
    # The publish job's files are a verified copy of every child file, plus an index listing them.
    files = {f.name: f for f in done.files}
    index = json.loads(files.pop("index.json").path.read_text())
    child_files = {(c.id, f.name, f.sha256) for c in done.children for f in c.files}
    assert {(e["source_job_id"], e["name"], e["sha256"]) for e in index["files"]} == child_files
    assert set(files) == {e["name"] for e in index["files"]}
    for f in files.values():
        assert hashlib.sha256(f.path.read_bytes()).hexdigest() == f.sha256
        assert f.path.parent.name == str(parent.id)  # in the publish job's own folder of the files store
    assert {e["export_type"] for e in index["files"]} == set(REPORTS)
    # The hub's cards show the reports publish ran; its row spans the publication from the first report.
    latest = service.latest_by_type("manager", "demo-closed")
    assert {t: latest[t].id for t in REPORTS} == {c.export_type: c.id for c in done.children}
    assert latest["publish"].id == parent.id
    assert done.started_at == min(c.started_at for c in done.children)
    # The project is published, and the change is audited.
    published = project(demo_hub)
    assert published.status == "published" and published.published_at is not None
    with demo_hub.db.read() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "publish")).all()
    assert event.project == "demo-closed" and event.outcome == "ok" and "closed -> published" in event.detail
    # A published project counts as closed: publishing again is allowed.
    assert (
        service.start("manager", "demo-closed", "publish", {"reports": ["users"]}).status is JobStatus.WAITING
    )


def test_a_failing_child_fails_the_parent(demo_hub, monkeypatch):
    def boom(ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(REGISTRY.get("zones"), "run", boom)
    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": REPORTS})
    demo_hub.run_queued()
    failed = service.get("manager", parent.id)
    assert failed.status is JobStatus.FAILED and "zones" in failed.error and "disk on fire" in failed.error
    statuses = {c.export_type: c.status for c in failed.children}
    assert statuses["zones"] is JobStatus.FAILED
    assert project(demo_hub).status == "closed"
    assert failed.files == () and not list((demo_hub.settings.files_dir / "demo-closed" / "publish").rglob("*.*"))


def test_cancelling_the_parent_cancels_the_children(demo_hub):
    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": REPORTS})
    cancelled = service.cancel("manager", parent.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert [c.status for c in cancelled.children] == [JobStatus.CANCELLED] * len(REPORTS)
    demo_hub.run_queued()  # the queued children find nothing to run
    assert all(c.status is JobStatus.CANCELLED for c in service.get("manager", parent.id).children)
    assert project(demo_hub).status == "closed"


def test_an_unregistered_report_type_fails_loudly(demo_hub):
    config = load_config(demo_hub.settings.export_config_path)
    config["cost"] = dataclasses.replace(config["cost"], is_hidden=True)
    registry = Registry()
    for exporter in REGISTRY:
        if exporter.export_type != "cost":
            registry.register(exporter)
    service = JobService(
        demo_hub.db, demo_hub.settings, demo_hub.dispatcher, registry=registry, config=config
    )
    with pytest.raises(NotFound, match="Unknown export type: cost"):
        service.start("manager", "demo-closed", "publish", {"reports": ["scans", "cost"]})
    with pytest.raises(InvalidVariable, match="reports"):
        service.start("manager", "demo-closed", "publish", {"reports": ""})
    assert service.list("manager", "demo-closed") == []


def test_children_get_validated_default_variables(demo_hub):
    parent = demo_hub.service().start("manager", "demo-closed", "publish", {"reports": ["scans", "sessions"]})
    for child in parent.children:
        assert child.variables["format"] == "csv" and child.variables["dateRange"] == "all"


@pytest.mark.parametrize(
    ("slug", "user", "code", "message"),
    [
        ("demo-closed", "manager", 0, ""),
        ("demo-closed", "analyst", 2, "Permission denied"),
        ("demo-open", "manager", 2, "Project must be closed"),
    ],
)
def test_cli_inline_as_each_role_allows(demo_hub, capsys, slug, user, code, message):
    rc = main(
        [
            "export",
            "publish",
            "--project",
            slug,
            "--user",
            user,
            "--inline",
            "--json",
            "--var",
            "reports=zones,sessions",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == code
    if code == 2:  # with --json a refusal is JSON on stdout
        assert message in json.loads(out)["error"]["message"] and err == ""
    if code == 0:
        job = json.loads(out)["job"]
        assert job["status"] == "completed"
        (index,) = [f for f in job["files"] if f["name"] == "index.json"]
        entries = json.loads(Path(index["path"]).read_text())["files"]
        names = sorted(e["name"].split(".", 1)[1] for e in entries)
        assert names == ["about.json", "about.json", "csv", "csv"]  # each child's csv and its sidecar
        assert len(job["files"]) == 5


def test_the_default_set_publishes_or_refuses_loudly(demo_hub):
    """Until every default report type has an exporter, the default start is refused, never trimmed."""
    default = ["scans", "zones", "cost", "statistics"]
    service = demo_hub.service()
    missing = [t for t in default if t not in REGISTRY]
    if missing:
        with pytest.raises(NotFound, match=f"Unknown export type: {missing[0]}"):
            service.start("manager", "demo-closed", "publish", {})
        assert service.list("manager", "demo-closed") == []
        return
    parent = service.start("manager", "demo-closed", "publish", {})
    assert [c.export_type for c in parent.children] == default
    demo_hub.run_queued()
    done = service.get("manager", parent.id)
    assert done.status is JobStatus.COMPLETED, done.error
    (index,) = [f for f in done.files if f.name == "index.json"]
    assert {e["export_type"] for e in json.loads(index.path.read_text())["files"]} == set(default)


# ------------------------------------------------------------------ found in review: no stranded parents


def test_cancelling_the_last_unfinished_child_fails_the_parent_at_once(demo_hub):
    from exporthub.runner import run_job

    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": REPORTS})
    children = [c.id for c in service.get("manager", parent.id).children]
    for child_id in children[:-1]:
        run_job(demo_hub.db, demo_hub.settings, child_id, dispatcher=demo_hub.dispatcher, registry=REGISTRY)
    service.cancel("manager", children[-1])
    after = service.get("manager", parent.id)
    assert after.status is JobStatus.FAILED and "cancelled" in after.error
    # The type is free again: a new publish starts.
    assert service.start("manager", "demo-closed", "publish", {"reports": REPORTS}).status is JobStatus.WAITING


def test_housekeeping_settles_a_parent_whose_wake_up_was_lost(demo_hub):
    from exporthub.maintenance import tick

    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["users"]})
    (child,) = service.get("manager", parent.id).children
    with demo_hub.db.write() as s:  # as if the worker died right after the child's final commit
        s.get(Job, child.id).status = "completed"
    demo_hub.dispatcher.enqueued.clear()
    result = tick(demo_hub.db, demo_hub.settings, demo_hub.dispatcher)
    assert parent.id in result.promoted
    assert service.get("manager", parent.id).status is JobStatus.READY
    assert (parent.id, None) in demo_hub.dispatcher.enqueued


def test_a_scheduled_publish_runs_nothing_before_its_time(demo_hub):
    from datetime import timedelta

    from exporthub.maintenance import promote_due
    from exporthub.models import utcnow

    service = demo_hub.service()
    at = utcnow() + timedelta(hours=2)
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["users"]}, run_at=at)
    (child,) = service.get("manager", parent.id).children
    assert child.status is JobStatus.WAITING and child.run_at is not None
    assert demo_hub.run(child.id) is None  # a worker that gets it early leaves it waiting
    with demo_hub.db.write() as s:  # time passes
        for job in s.scalars(select(Job)):
            job.run_at = utcnow() - timedelta(seconds=1)
    assert promote_due(demo_hub.db, demo_hub.dispatcher) == [child.id]  # the parent still waits for it
    assert service.get("manager", parent.id).status is JobStatus.WAITING
    demo_hub.run_queued()
    assert service.get("manager", parent.id).status is JobStatus.COMPLETED
    assert project(demo_hub).status == "published"


def test_a_project_reopened_while_publishing_is_not_marked_published(demo_hub):
    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["users"]})
    with demo_hub.db.write() as s:
        s.scalar(select(Project).where(Project.slug == "demo-closed")).status = "open"
    demo_hub.run_queued()
    after = service.get("manager", parent.id)
    assert after.status is JobStatus.FAILED and "Project must be closed" in after.error
    assert project(demo_hub).status == "open"
    assert after.files == ()  # nothing half-published is left
    assert not list((demo_hub.settings.files_dir / "demo-closed" / "publish").rglob("*.*"))


def test_a_project_reopened_during_the_final_commit_fails_the_job_and_stays_open(demo_hub, monkeypatch):
    """Publishing and completing are one transaction: the project is published exactly when the job
    completed, even if it was reopened after the exporter's own check."""
    from exporters import publish

    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["users"]})
    original = publish.PublishExporter.run

    def reopen_after_run(self, ctx):  # type: ignore[no-untyped-def]
        original(self, ctx)
        with demo_hub.db.write() as s:
            s.scalar(select(Project).where(Project.slug == "demo-closed")).status = "open"

    monkeypatch.setattr(publish.PublishExporter, "run", reopen_after_run)
    demo_hub.run_queued()
    after = service.get("manager", parent.id)
    assert after.status is JobStatus.FAILED and "Project must be closed" in after.error
    assert project(demo_hub).status == "open" and after.files == ()
    with demo_hub.db.read() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "publish")).all() == []


def test_a_cancel_that_lands_before_the_final_commit_cancels_and_publishes_nothing(demo_hub, monkeypatch):
    from exporters import publish

    service = demo_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["users"]})
    original = publish.PublishExporter.run

    def cancel_after_run(self, ctx):  # type: ignore[no-untyped-def]
        original(self, ctx)
        service.cancel("manager", parent.id)  # after the exporter's last check, before the commit

    monkeypatch.setattr(publish.PublishExporter, "run", cancel_after_run)
    demo_hub.run_queued()
    after = service.get("manager", parent.id)
    assert after.status is JobStatus.CANCELLED and after.files == ()
    assert project(demo_hub).status == "closed"
