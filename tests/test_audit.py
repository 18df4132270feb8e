"""The audit trail: one append-only event per action or refusal, counted over a scripted sequence."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from exporthub import auth, links, maintenance, retention
from exporthub.accounts import AccountService
from exporthub.dispatch import NullDispatcher
from exporthub.errors import ExporthubError
from exporthub.models import AuditEvent, File, Job, utcnow
from exporthub.states import JobStatus

REPO = Path(__file__).resolve().parent.parent


def trail(hub) -> list[tuple[int, str, str, str | None]]:
    with hub.db.read() as s:
        return [(e.id, e.action, e.outcome, e.actor) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_scripted_sequence_writes_exactly_its_events(demo_hub):
    hub = demo_hub
    service, accounts = hub.service(), AccountService(hub.db)
    expected: list[tuple[str, str, str | None]] = []

    def step(action: str, outcome: str, actor: str | None, call) -> object:
        if outcome == "refused":
            with pytest.raises(ExporthubError):
                call()
            result = None
        else:
            result = call()
        expected.append((action, outcome, actor))
        return result

    step("login", "ok", "analyst", lambda: auth.authenticate(hub.db, hub.settings, "analyst", "demo"))
    step("login", "refused", "analyst", lambda: auth.authenticate(hub.db, hub.settings, "analyst", "wrong"))
    job = step("start", "ok", "analyst", lambda: service.start("analyst", "demo-open", "scans", {"format": "csv"}))
    step("start", "refused", "analyst", lambda: service.start("analyst", "demo-open", "scans", {"format": "csv"}))
    # Running a job, reading jobs and making links write nothing.
    assert hub.run(job.id) is JobStatus.COMPLETED
    service.list("viewer", "demo-open")
    service.get("viewer", job.id)
    with hub.db.read() as s:
        f = s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(".csv"))).one()
    link = links.issue_link(hub.db, hub.settings, f.id, "analyst")
    token = link.path.removeprefix(links.ROUTE_PREFIX)
    step("download", "ok", "analyst",
         lambda: links.resolve_download(hub.db, hub.settings, token, requester=links.Requester("analyst", "session")))
    step("download", "refused", None,
         lambda: links.resolve_download(hub.db, hub.settings, token[:-2],
                                        requester=links.Requester("analyst", "session")))
    step("download", "refused", "analyst",
         lambda: links.resolve_download(hub.db, hub.settings, token, requester=links.Requester("manager", "session")))
    step("link", "refused", "outsider", lambda: links.issue_link(hub.db, hub.settings, f.id, "outsider"))
    other = step("start", "ok", "manager", lambda: service.start("manager", "demo-open", "users"))
    step("cancel", "ok", "manager", lambda: service.cancel("manager", other.id))
    step("cancel", "refused", "manager", lambda: service.cancel("manager", other.id))
    step("retry", "ok", "manager", lambda: service.retry("manager", other.id))
    step("reset-sessions", "ok", "manager", lambda: service.reset_export_sessions("manager", job.id))
    step("remove", "refused", "viewer", lambda: service.remove("viewer", job.id))
    step("remove", "ok", "manager", lambda: service.remove("manager", job.id))
    step("download", "refused", "analyst",
         lambda: links.resolve_download(hub.db, hub.settings, token, requester=links.Requester("analyst", "session")))
    step("project-close", "ok", "admin", lambda: accounts.close_project("admin", "demo-open"))
    step("project-close", "refused", "analyst", lambda: accounts.close_project("analyst", "demo-open"))
    step("project-reopen", "ok", "admin", lambda: accounts.reopen_project("admin", "demo-open"))
    # A job whose worker went silent is reaped: one event, by nobody in particular.
    retried = service.list("manager", "demo-open", types=["users"])[0]
    with hub.db.write() as s:
        s.execute(update(Job).where(Job.id == retried.id).values(
            status=str(JobStatus.RUNNING), worker_id="gone:1:1", heartbeat_at=utcnow() - timedelta(hours=1)))
    assert maintenance.reap_stale(hub.db, hub.settings, NullDispatcher()) == [retried.id]
    expected.append(("reap", "ok", None))
    with hub.db.write() as s:  # make the first job old enough for retention (it was removed already)
        s.execute(update(Job).where(Job.id == other.id).values(finished_at=utcnow() - timedelta(days=90)))
    step("cleanup", "ok", "ops", lambda: retention.cleanup(hub.db, hub.settings, actor="ops"))

    events = trail(hub)
    assert [(action, outcome, actor) for _, action, outcome, actor in events] == expected
    assert [e[0] for e in events] == sorted(e[0] for e in events)  # appended in order

    # Append-only: later actions never changed what was written before.
    before = trail(hub)
    hub.service().start("manager", "demo-open", "scans", {"format": "csv"})
    after = trail(hub)
    assert after[: len(before)] == before and len(after) == len(before) + 1


def test_no_code_updates_or_deletes_audit_rows():
    pattern = re.compile(r"(update|delete)\(\s*AuditEvent|query\(\s*AuditEvent\s*\)[^\n]*\.(update|delete)\(")
    offenders = [str(p.relative_to(REPO)) for p in [*REPO.glob("exporthub/**/*.py"), *REPO.glob("web/*.py"),
                                                     *REPO.glob("pages/*.py"), REPO / "app.py", REPO / "worker.py"]
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
