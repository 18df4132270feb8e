"""The job engine: transitions, the permission matrix, refusals and the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exporthub.errors import (
    InvalidTransition,
    InvalidVariable,
    JobAlreadyRunning,
    JobNotFound,
    NotFound,
    PermissionDenied,
    ProjectNotClosed,
)
from exporthub.models import AuditEvent, Job, Project, utcnow
from exporthub.states import JobStatus

CSV = {"format": "csv"}


def audit_actions(hub) -> list[tuple[str, str]]:
    with hub.db.read() as s:
        return [(e.action, e.outcome) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def set_status(hub, job_id: int, status: JobStatus) -> None:
    with hub.db.write() as s:
        s.get(Job, job_id).status = str(status)


# ----------------------------------------------------------------------------- start


def test_start_creates_ready_job_and_enqueues_it(demo_hub):
    job = demo_hub.service().start("analyst", "demo-open", "scans", CSV)
    assert job.status is JobStatus.READY
    assert job.variables["format"] == "csv" and job.variables["dateRange"] == "all"
    assert demo_hub.dispatcher.enqueued == [(job.id, None)]
    assert audit_actions(demo_hub) == [("start", "ok")]


def test_second_start_of_active_type_is_refused_and_audited(demo_hub):
    service = demo_hub.service()
    service.start("analyst", "demo-open", "scans", CSV)
    with pytest.raises(JobAlreadyRunning, match="Export job already running"):
        service.start("manager", "demo-open", "scans", CSV)
    assert audit_actions(demo_hub) == [("start", "ok"), ("start", "refused")]


def test_same_type_on_another_project_is_independent(demo_hub):
    service = demo_hub.service()
    service.start("manager", "demo-open", "scans", CSV)
    assert service.start("manager", "demo-closed", "scans", CSV).status is JobStatus.READY


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_finished_job_frees_its_type(demo_hub, status):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", CSV)
    set_status(demo_hub, job.id, status)
    assert service.start("analyst", "demo-open", "scans", CSV).id != job.id


def test_invalid_variable_is_refused_by_name(demo_hub):
    with pytest.raises(InvalidVariable, match="'format'"):
        demo_hub.service().start("analyst", "demo-open", "scans", {"format": "docx"})
    with pytest.raises(InvalidVariable, match="'colour'"):
        demo_hub.service().start("analyst", "demo-open", "scans", {"colour": "red"})
    with demo_hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_unknown_type_project_and_user_are_not_found(demo_hub):
    service = demo_hub.service()
    with pytest.raises(NotFound, match="Unknown export type"):
        service.start("analyst", "demo-open", "nonsense")
    with pytest.raises(NotFound, match="Unknown project"):
        service.start("analyst", "no-such-project", "scans")
    with pytest.raises(NotFound, match="Unknown user"):
        service.start("nobody", "demo-open", "scans")


def test_scheduled_job_waits_and_is_enqueued_with_eta(demo_hub):
    at = utcnow() + timedelta(hours=1)
    job = demo_hub.service().start("analyst", "demo-open", "scans", CSV, run_at=at)
    assert job.status is JobStatus.WAITING and job.run_at == at.replace(microsecond=job.run_at.microsecond)
    assert demo_hub.dispatcher.enqueued[0][1] == at
    # A worker that picks it up early leaves it waiting.
    assert demo_hub.run(job.id) is None
    assert demo_hub.service().get("analyst", job.id).status is JobStatus.WAITING


def test_project_must_be_closed_for_publish_like_types(demo_hub, monkeypatch):
    from exporthub.export_config import ExportDefinition

    service = demo_hub.service()
    scans = service.config["scans"]
    service.config["scans"] = ExportDefinition(
        type="scans", title=scans.title, group=scans.group, allow_when_project_not_closed=False,
        is_hidden=False, variables=scans.variables,
    )
    with pytest.raises(ProjectNotClosed, match="Project must be closed"):
        service.start("manager", "demo-open", "scans", CSV)
    # A closed project, and a published one, count as closed.
    assert service.start("manager", "demo-closed", "scans", CSV).status is JobStatus.READY
    with demo_hub.db.write() as s:
        s.scalar(select(Project).where(Project.slug == "demo-open")).status = "published"
    assert service.start("manager", "demo-open", "scans", CSV).status is JobStatus.READY


# ----------------------------------------------------------------------------- permission matrix

USERS = ("admin", "manager", "analyst", "viewer", "outsider")
# What each demo user may do on each project: V(iew) S(tart) C(ancel) R(emove) X (reset sessions).
MATRIX = {
    ("admin", "demo-open"): "VSCRX", ("admin", "demo-closed"): "VSCRX",
    ("manager", "demo-open"): "VSCRX", ("manager", "demo-closed"): "VSCRX",
    ("analyst", "demo-open"): "VSC", ("analyst", "demo-closed"): "",
    ("viewer", "demo-open"): "V", ("viewer", "demo-closed"): "",
    ("outsider", "demo-open"): "", ("outsider", "demo-closed"): "",
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("project", ["demo-open", "demo-closed"])
def test_permission_matrix(demo_hub, user, project):
    allowed = MATRIX[(user, project)]
    service = demo_hub.service()

    def attempt(letter, action, *, on_job: bool = False):
        if letter in allowed:
            return action()
        if on_job and "V" not in allowed:
            # A job on a project the user may not see answers like a job that does not exist.
            with pytest.raises(JobNotFound, match=r"^Job \d+ not found or not permitted$"):
                action()
            return None
        with pytest.raises(PermissionDenied, match="Permission denied"):
            action()
        return None

    attempt("V", lambda: service.list(user, project))
    job = attempt("S", lambda: service.start(user, project, "scans", CSV))
    if job is None:
        job = service.start("admin", project, "scans", CSV)
    attempt("C", lambda: service.cancel(user, job.id), on_job=True)
    # A completed job with export sessions, for remove and reset.
    with demo_hub.db.write() as s:
        s.get(Job, job.id).status = "ready"
        s.get(Job, job.id).cancel_requested = False
    demo_hub.run(job.id)
    attempt("X", lambda: service.reset_export_sessions(user, job.id), on_job=True)
    attempt("R", lambda: service.remove(user, job.id), on_job=True)


def test_deactivated_user_loses_every_permission(demo_hub):
    from exporthub.models import User

    with demo_hub.db.write() as s:
        s.scalar(select(User).where(User.username == "manager")).active = False
    with pytest.raises(PermissionDenied):
        demo_hub.service().list("manager", "demo-open")


# ----------------------------------------------------------------------------- transitions


def test_cancel_ready_job_finishes_it_and_worker_never_starts_it(demo_hub):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", CSV)
    cancelled = service.cancel("analyst", job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    assert demo_hub.run(job.id) is None
    assert service.get("analyst", job.id).status is JobStatus.CANCELLED


def test_cancel_running_job_sets_flag_only(demo_hub):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", CSV)
    set_status(demo_hub, job.id, JobStatus.RUNNING)
    view = service.cancel("analyst", job.id)
    assert view.status is JobStatus.RUNNING and view.cancel_requested


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_refused_once_finished(demo_hub, status):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", CSV)
    set_status(demo_hub, job.id, status)
    with pytest.raises(InvalidTransition):
        service.cancel("analyst", job.id)


@pytest.mark.parametrize("status", [JobStatus.WAITING, JobStatus.READY, JobStatus.RUNNING])
def test_remove_refused_while_active(demo_hub, status):
    service = demo_hub.service()
    job = service.start("manager", "demo-open", "scans", CSV)
    set_status(demo_hub, job.id, status)
    with pytest.raises(InvalidTransition, match="cancel it before removing"):
        service.remove("manager", job.id)


def test_remove_deletes_files_hides_job_and_keeps_row(demo_hub):
    service = demo_hub.service()
    job = service.start("manager", "demo-open", "scans", CSV)
    assert demo_hub.run(job.id) is JobStatus.COMPLETED
    paths = [f.path for f in service.get("manager", job.id).files]
    assert paths and all(p.exists() for p in paths)
    service.remove("manager", job.id)
    assert not any(p.exists() for p in paths)
    assert [j.id for j in service.list("manager", "demo-open")] == []
    with pytest.raises(NotFound):
        service.get("manager", job.id)
    with demo_hub.db.read() as s:
        assert s.get(Job, job.id).removed_at is not None
    with pytest.raises(InvalidTransition, match="already removed"):
        service.remove("manager", job.id)


def test_retry_only_from_failed_or_cancelled(demo_hub):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", {"format": "xlsx", "includeDeleted": True})
    with pytest.raises(InvalidTransition, match="retried"):
        service.retry("analyst", job.id)
    service.cancel("analyst", job.id)
    again = service.retry("analyst", job.id)
    assert again.id != job.id and again.variables == job.variables and again.status is JobStatus.READY


# The state machine as DESIGN.md draws it, written out here rather than read back from the code.
ALLOWED = {
    ("waiting", "ready"), ("waiting", "cancelled"), ("waiting", "failed"),
    ("ready", "running"), ("ready", "cancelled"), ("ready", "failed"),
    ("running", "completed"), ("running", "failed"), ("running", "cancelled"),
    ("running", "ready"),  # a draining worker hands its job back
}


def test_the_state_machine_allows_exactly_the_designed_transitions():
    from exporthub.states import FINISHED_STATUSES, can_transition

    allowed = {(str(a), str(b)) for a in JobStatus for b in JobStatus if can_transition(a, b)}
    assert allowed == ALLOWED
    assert all(not can_transition(done, other) for done in FINISHED_STATUSES for other in JobStatus)


def test_list_filters_and_pages_newest_first(demo_hub):
    service = demo_hub.service()
    ids = []
    for _ in range(5):
        job = service.start("manager", "demo-open", "scans", CSV)
        service.cancel("manager", job.id)
        ids.append(job.id)
    assert [j.id for j in service.list("manager", "demo-open", limit=2)] == ids[::-1][:2]
    assert [j.id for j in service.list("manager", "demo-open", limit=2, offset=2)] == ids[::-1][2:4]
    assert service.count("manager", "demo-open", statuses=["cancelled"]) == 5
    assert service.list("manager", "demo-open", statuses=["completed"]) == []


def test_audit_matches_a_scripted_sequence(demo_hub):
    service = demo_hub.service()
    job = service.start("manager", "demo-open", "scans", CSV)  # start ok
    with pytest.raises(JobAlreadyRunning):
        service.start("manager", "demo-open", "scans", CSV)  # start refused
    service.list("manager", "demo-open")  # reads write nothing
    service.get("manager", job.id)
    demo_hub.run(job.id)  # progress and heartbeats write nothing
    service.reset_export_sessions("manager", job.id)  # reset ok
    with pytest.raises(InvalidTransition):
        service.reset_export_sessions("manager", job.id)  # reset refused
    with pytest.raises(PermissionDenied):
        service.remove("viewer", job.id)  # remove refused
    service.remove("manager", job.id)  # remove ok
    with pytest.raises(InvalidTransition):
        service.cancel("manager", job.id)  # cancel refused
    assert audit_actions(demo_hub) == [
        ("start", "ok"), ("start", "refused"), ("reset-sessions", "ok"), ("reset-sessions", "refused"),
        ("remove", "refused"), ("remove", "ok"), ("cancel", "refused"),
    ]


def test_retry_checks_permission_before_revealing_anything(demo_hub):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", CSV)
    demo_hub.run(job.id)
    with pytest.raises(JobNotFound) as hidden:
        service.retry("outsider", job.id)
    with pytest.raises(JobNotFound) as missing:
        service.retry("outsider", job.id + 1000)
    # The same sentence whether the job exists elsewhere or not at all.
    assert hidden.value.message.replace(str(job.id), "N") == missing.value.message.replace(str(job.id + 1000), "N")


def test_far_off_dates_are_refused_not_overflowed(demo_hub):
    with pytest.raises(InvalidVariable, match="'dateTo'"):
        demo_hub.service().start("analyst", "demo-open", "scans",
                                 {"dateRange": "custom", "dateFrom": "2026-01-01", "dateTo": "9999-12-31"})
