"""The session, ticket, token, link, job and restore rules of issue 13 on SQLite and on PostgreSQL.

Sessions and tickets are rows now, and several web replicas share them: each rule here runs on both
databases, and single use across replicas is raced with real processes (one engine each, as replicas
have) redeeming the same ticket at the same moment.
"""

from __future__ import annotations

import os
import time
import zipfile

import pytest
from sqlalchemy import func, select

from exporthub import api_tokens, links, sessions, tickets
from exporthub.accounts import AccountService, SystemActor
from exporthub.errors import BackupInvalid, JobNotFound
from exporthub.links import LinkRefused, Requester, make_token, resolve_download
from exporthub.models import AuditEvent, File, LoginSession, Project, User
from exporthub.restore import restore_backup
from tests._hubs import make_hub
from tests._processes import run_together

SYSTEM = SystemActor("pytest")
NONCE = "n" * 43


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def both(request, tmp_path, monkeypatch):
    """A small demo instance on either database."""
    from exporthub.demo import create_demo

    extra = {}
    if request.param == "postgresql":
        extra = {"DATABASE_URL": request.getfixturevalue("pg_url"), "SECRET_KEY": "s" * 32}
    hub = make_hub(tmp_path, monkeypatch, **extra)
    create_demo(hub.db, hub.settings, scans=300, seed=3)
    yield hub, extra
    hub.db.dispose()


def _uid(hub, name: str) -> int:
    with hub.db.read() as s:
        return s.scalar(select(User.id).where(User.username == name))


_REDEEMER = r"""
import json, sys, time
from pathlib import Path
from exporthub import tickets
from exporthub.db import get_database
from exporthub.settings import get_settings

settings = get_settings()
db = get_database(settings, migrate=False)  # one engine per process, like one per web replica
go, ready, ticket, nonce = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
ready.touch()
while not go.exists():
    time.sleep(0.002)
try:
    cookie = tickets.redeem(db, settings, ticket, nonce)
    print(json.dumps(["won" if cookie else "lost", cookie]))
except Exception as exc:
    print(json.dumps(["error", repr(exc)]))
"""


@pytest.mark.slow
def test_a_ticket_works_once_across_replicas(both):
    hub, extra = both
    ticket = tickets.issue(hub.db, _uid(hub, "analyst"), NONCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env |= {f"EXPORTHUB_{k}": v for k, v in extra.items()} | {"EXPORTHUB_DATA_DIR": str(hub.settings.data_dir)}
    results = run_together(_REDEEMER, env, 6, (ticket, NONCE))
    assert sorted(r[0] for r in results) == ["lost"] * 5 + ["won"], results
    (cookie,) = [r[1] for r in results if r[0] == "won"]
    assert sessions.validate(hub.db, hub.settings, cookie).username == "analyst"
    with hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 1


def test_sessions_end_on_the_server_for_every_reason(both):
    hub, _ = both
    db, s = hub.db, hub.settings
    accounts = AccountService(db)
    cookies = {n: sessions.start(db, s, _uid(hub, n)) for n in ("viewer", "analyst", "manager", "admin")}
    assert sessions.end(db, s, cookies["viewer"])
    accounts.set_password(SYSTEM, "analyst", "another-password")
    accounts.set_active(SYSTEM, "manager", False)
    accounts.set_active(SYSTEM, "manager", True)
    reasons = {n: sessions.check(db, s, c).reason for n, c in cookies.items()}
    assert reasons == {"viewer": "signed-out", "analyst": "password-changed", "manager": "disabled", "admin": None}
    assert accounts.end_sessions("admin", "admin") == 1
    assert sessions.check(db, s, cookies["admin"]).reason == "ended-by-admin"


def test_links_are_bound_to_their_user_through_session_or_token(both):
    hub, _ = both
    job = hub.service().start("analyst", "demo-open", "zones", {"format": "csv"})
    hub.run(job.id)
    with hub.db.read() as s:
        f = s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(".csv"))).one()
    token = make_token(hub.settings, f.id, _uid(hub, "analyst"), int(time.time()) + 600)
    _view, secret = api_tokens.create(hub.db, SYSTEM, "analyst", "sync")
    who = api_tokens.authenticate(hub.db, secret)
    assert resolve_download(hub.db, hub.settings, token, requester=Requester(who.username, "token")).file_id == f.id
    for requester, status in ((Requester(None), 401), (Requester("manager", "session"), 403),
                              (Requester(None, "bad-token"), 401)):
        with pytest.raises(LinkRefused) as info:
            resolve_download(hub.db, hub.settings, token, requester=requester)
        assert info.value.status == status and info.value.message == links.PUBLIC_MESSAGES[status]
    with hub.db.read() as s:
        outcomes = s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "download")).all()
    assert outcomes == ["ok", "refused", "refused", "refused"]


def test_a_hidden_job_and_a_missing_one_get_the_same_answer(both):
    hub, _ = both
    job = hub.service().start("manager", "demo-closed", "zones", {"format": "csv"})
    service = hub.service()
    answers = []
    for job_id in (job.id, job.id + 10_000, 2**40):
        for call in (service.get, service.cancel, service.remove, service.retry):
            with pytest.raises(JobNotFound) as info:
                call("analyst", job_id)
            answers.append(info.value.message.replace(str(job_id), "N"))
    assert set(answers) == {"Job N not found or not permitted"}


def test_a_crafted_restore_is_refused_once_and_creates_nothing(both, tmp_path):
    hub, _ = both
    job = hub.service().start("manager", "demo-open", "backup", {})
    hub.run(job.id)
    (backup,) = hub.service().get("manager", job.id).files
    crafted = tmp_path / "crafted.zip"
    from tests.test_restore_hostile import json_edit, repack

    repack(backup.path, crafted, edit={"metadata/project.json": json_edit(lambda p: p.update(status="bogus"))})
    with hub.db.read() as s:
        projects = s.scalar(select(func.count()).select_from(Project))
    with pytest.raises(BackupInvalid, match="unknown project status 'bogus'"):
        restore_backup(hub.db, hub.settings, crafted, project_slug="crafted", actor="admin")
    with hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == projects
        assert s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "restore")).all() == ["refused"]
    assert not (hub.settings.lake_dir / "crafted").exists()
    with zipfile.ZipFile(crafted) as archive:  # the crafted archive's checksums were right all along
        assert archive.testzip() is None
