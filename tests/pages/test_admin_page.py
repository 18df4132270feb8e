"""The admin page in AppTest: who sees it, and what each form does to the real instance."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from exporthub.models import AuditEvent, Project, User
from exporthub.passwords import verify_password
from exporthub.permissions import ROLES
from tests import _handmade as hm
from tests._lake import lake_files
from tests.pages.conftest import plain, shown

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "admin.py")
SLUG = "demo-open"


def page(user: str | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if user is not None:
        at.session_state["user"] = user
    return at.run()


def button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    matches = [b for b in at.button if plain(b.label) == label]
    assert len(matches) == 1, [b.label for b in at.button]
    return matches[0]


def project(hub, slug: str) -> Project | None:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return s.scalar(select(Project).where(Project.slug == slug))


def scan_count(hub) -> int:  # type: ignore[no-untyped-def]
    files = lake_files(hub.settings, SLUG, "scans")
    return int(duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0])


@pytest.mark.parametrize("user", ["manager", "analyst", "viewer", "outsider", "nobody", None])
def test_anyone_but_a_global_admin_gets_permission_denied_and_nothing_else(demo_hub, user):
    at = page(user)
    assert not at.exception
    assert shown(at.error) == ["Permission denied"]
    assert not at.title and not at.tabs and not at.dataframe and not at.button and not at.text_input
    assert not at.selectbox and not at.get("file_uploader") and not at.code


def test_admin_sees_projects_users_import_and_audit(demo_hub):
    at = page("admin")
    assert not at.exception and not at.error
    assert at.title[0].value == "Administration"
    assert [t.label for t in at.tabs] == ["Projects", "Users & roles", "Import data", "Audit trail", "Workers"]
    projects = at.dataframe[0].value
    assert sorted(projects["Slug"]) == ["demo-closed", SLUG]
    users = at.dataframe[1].value.set_index("Username")
    assert users.loc["analyst", "Project roles"] == "demo-open: Analyst"
    assert bool(users.loc["admin", "Admin"]) and not bool(users.loc["staff01", "Can log in"])


def test_admin_creates_a_project_and_sees_refusals_in_plain_words(demo_hub):
    at = page("admin")
    at.text_input(key="new_project_slug").input("north-2026")
    at.text_input(key="new_project_name").input("North warehouse")
    at.selectbox(key="new_project_tz").set_value("Europe/Paris")
    button(at, "Create project").click()
    at.run()
    assert not at.exception and not at.error
    assert "Project north-2026 created." in shown(at.success)
    created = project(demo_hub, "north-2026")
    assert (created.name, created.timezone, created.status) == ("North warehouse", "Europe/Paris", "open")
    assert "north-2026" in list(at.dataframe[0].value["Slug"])
    at.text_input(key="new_project_slug").input("Bad Slug")
    button(at, "Create project").click()
    at.run()
    assert any("Invalid project slug" in e for e in shown(at.error))


def test_admin_grants_and_revokes_a_role(demo_hub):
    at = page("admin")
    at.selectbox(key="grant_user").set_value("outsider")
    at.selectbox(key="grant_project").set_value(SLUG)
    # Roles are offered by who holds them and what they may do, not by permission keys.
    assert at.selectbox(key="grant_role_name").options == [
        "Viewer: sees jobs and downloads files",
        "Analyst: also starts and cancels exports",
        "Manager: also removes jobs and resets export sessions",
    ]
    at.selectbox(key="grant_role_name").set_value("analyst")
    button(at, "Grant role").click()
    at.run()
    assert "outsider is now analyst on demo-open." in shown(at.success)
    assert demo_hub.service().permissions("outsider", SLUG) == ROLES["analyst"]
    button(at, "Revoke role").click()
    at.run()
    assert demo_hub.service().permissions("outsider", SLUG) == frozenset()
    button(at, "Revoke role").click()
    at.run()
    assert shown(at.error) == ["outsider has no role on demo-open"]


def test_admin_adds_a_user_with_a_temporary_password(demo_hub):
    at = page("admin")
    at.text_input(key="new_user_name").input("lena")
    at.text_input(key="new_user_display").input("Lena Lindqvist")
    button(at, "Add user").click()
    at.run()
    assert "User lena added with a temporary password:" in shown(at.success)
    # Where the admin is looking: in the Users tab under the form (not at the top), and the form is empty.
    users_tab = next(t for t in at.tabs if t.label == "Users & roles")
    assert "User lena added with a temporary password:" in shown(users_tab.success)
    assert at.text_input(key="new_user_name").value == "" and at.text_input(key="new_user_display").value == ""
    (secret,) = [c.value for c in at.code if c.value and "," not in c.value]
    with demo_hub.db.read() as s:
        stored = s.scalar(select(User).where(User.username == "lena"))
    assert stored.display_name == "Lena Lindqvist" and verify_password(stored.password_hash, secret)
    at.run()  # the password is shown once
    assert secret not in [c.value for c in at.code]


def test_closing_a_project_asks_for_confirmation(demo_hub):
    at = page("admin")
    at.selectbox(key="status_project").set_value(SLUG)
    at.run()
    button(at, "Close project…").click()
    at.run()
    assert any("Close **demo-open**?" in w for w in shown(at.warning))
    assert project(demo_hub, SLUG).status == "open"
    button(at, "Cancel").click()
    at.run()
    assert project(demo_hub, SLUG).status == "open" and not at.warning
    button(at, "Close project…").click()
    at.run()
    button(at, "Yes, close demo-open").click()
    at.run()
    assert project(demo_hub, SLUG).status == "closed"
    assert "Project demo-open is now closed." in shown(at.success)
    with demo_hub.db.read() as s:
        closes = s.scalars(select(AuditEvent.actor).where(AuditEvent.action == "project-close")).all()
    assert closes == ["admin"]


def test_the_currency_dropdown_starts_on_the_projects_currency(demo_hub):
    from sqlalchemy import update

    with demo_hub.db.write() as s:
        s.execute(update(Project).where(Project.slug == SLUG).values(currency="CHF"))
    at = page("admin")
    at.selectbox(key="currency_project").set_value(SLUG).run()
    assert at.selectbox(key=f"currency_code_{SLUG}").value == "CHF"
    assert project(demo_hub, "demo-closed").currency == "EUR"
    at.selectbox(key="currency_project").set_value("demo-closed").run()
    shown_codes = [s.value for s in at.selectbox if s.key and s.key.startswith("currency_code_")]
    assert shown_codes == ["EUR"]  # the other project's own currency, not the one shown before


def test_admin_sets_a_projects_currency(demo_hub):
    at = page("admin")
    assert project(demo_hub, SLUG).currency == "EUR"
    at.selectbox(key="currency_project").set_value(SLUG).run()
    at.selectbox(key=f"currency_code_{SLUG}").set_value("CHF")
    button(at, "Set currency").click()
    at.run()
    assert not at.exception and not at.error
    assert project(demo_hub, SLUG).currency == "CHF"
    assert "Costs of project demo-open are now in CHF." in shown(at.success)
    listed = at.dataframe[0].value
    assert list(listed.loc[listed["Slug"] == SLUG, "Currency"]) == ["CHF"]
    with demo_hub.db.read() as s:
        changes = s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "project-currency")).all()
    assert changes == ["currency EUR -> CHF"]


def _scans_csv(hub, rows: int) -> bytes:  # type: ignore[no-untyped-def]
    files = lake_files(hub.settings, SLUG, "zone_sessions")
    sid, zone, user_id = duckdb.sql(
        f"SELECT session_id, zone_id, user_id FROM read_parquet({files!r}) "
        "WHERE NOT deleted ORDER BY session_id LIMIT 1"
    ).fetchall()[0]
    lines = ["zone_id,session_id,user_id,barcode,quantity,scanned_at,device"]
    lines += [f"{zone},{sid},{user_id},UP-{i},2,2026-11-19T09:{i:02d}:00+01:00,DEV-U" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_admin_imports_an_uploaded_file_and_gets_a_report(demo_hub):
    before = scan_count(demo_hub)
    at = page("admin")
    at.selectbox(key="import_project").set_value(SLUG)
    at.selectbox(key="import_table").set_value("scans")
    at.run()
    at.file_uploader(key="import_files").set_value(("upload.csv", _scans_csv(demo_hub, 12), "text/csv"))
    at.run()
    button(at, "Import").click()
    at.run()
    assert not at.exception and not at.error
    (message,) = shown(at.success)
    assert message.startswith("12 of 12 rows imported into demo-open/scans")
    assert scan_count(demo_hub) == before + 12
    with demo_hub.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "import")).one()
    assert (event.actor, event.outcome, event.project, event.target) == ("admin", "ok", SLUG, "scans")


def test_a_refused_upload_shows_each_problem_and_changes_nothing(demo_hub):
    before = hm.lake_fingerprint(demo_hub, SLUG)
    bad = (
        _scans_csv(demo_hub, 3)
        .replace(b",2,2026-11-19T09:01", b",two,2026-11-19T09:01")
        .replace(b"UP-2,2,2026-11-19T09:02:00+01:00", b"UP-2,2,2026-11-19 09:02")
    )
    at = page("admin")
    at.selectbox(key="import_table").set_value("scans")
    at.selectbox(key="import_project").set_value(SLUG)
    at.run()
    at.file_uploader(key="import_files").set_value(("bad.csv", bad, "text/csv"))
    at.run()
    button(at, "Import").click()
    at.run()
    assert shown(at.error) == ["Import refused, nothing was changed. 2 problem(s) found:"]
    (problems,) = [d.value for d in at.dataframe if "Problem" in d.value.columns]
    assert list(zip(problems["File"], problems["Row"], problems["Column"], strict=True)) == [
        ("bad.csv", 2, "quantity"),
        ("bad.csv", 3, "scanned_at"),
    ]
    assert hm.lake_fingerprint(demo_hub, SLUG) == before


def test_the_audit_trail_filters_by_action_and_user(demo_hub):
    at = page("admin")
    at.text_input(key="new_project_slug").input("south")
    at.text_input(key="new_project_name").input("South")
    button(at, "Create project").click()
    at.run()
    at.selectbox(key="audit_action").set_value("project-add")
    at.run()
    (audit,) = [t for t in at.tabs if t.label == "Audit trail"]
    trail = audit.dataframe[-1].value
    assert list(trail["Action"]) == ["project-add"] and list(trail["User"]) == ["admin"]
    assert list(trail["Project"]) == ["south"]
    at.selectbox(key="audit_action").set_value("All")
    at.selectbox(key="audit_user").set_value("admin")
    at.run()
    (audit,) = [t for t in at.tabs if t.label == "Audit trail"]
    assert set(audit.dataframe[-1].value["User"]) == {"admin"}


def test_the_workers_tab_lists_each_worker_with_its_running_job_and_the_queue(demo_hub, monkeypatch):
    import sys

    from exporthub import lifecycle, workers

    monkeypatch.delitem(sys.modules, "worker", raising=False)  # its queue comes from this test's settings
    service = demo_hub.service()
    running = service.start("analyst", "demo-open", "scans", {})
    service.start("analyst", "demo-open", "zones", {})  # waits for a worker
    workers.register(demo_hub.db, "host-a:101:aaaaaa", threads=2)
    assert lifecycle.claim(demo_hub.db, running.id, "host-a:101:aaaaaa") is not None
    workers.register(demo_hub.db, "host-b:202:bbbbbb", threads=1)
    workers.report(demo_hub.db, "host-b:202:bbbbbb", workers.UNHEALTHY, "queue unreachable: refused")
    at = page("admin")
    assert not at.exception
    (workers_tab,) = [t for t in at.tabs if t.label == "Workers"]
    (table,) = workers_tab.dataframe
    rows = {row["Worker"]: row for row in table.value.to_dict("records")}
    assert rows["host-a:101:aaaaaa"]["State"] == "running"
    assert rows["host-a:101:aaaaaa"]["Running jobs"] == f"#{running.id}"
    assert (rows["host-b:202:bbbbbb"]["State"], rows["host-b:202:bbbbbb"]["Detail"]) == (
        "unhealthy", "queue unreachable: refused")
    metrics = {m.label: m.value for m in workers_tab.metric}
    assert metrics["Live workers"] == "2" and metrics["Jobs waiting for a worker"] == "1"
def test_admin_sees_live_sessions_per_user_and_ends_them(demo_hub):
    from exporthub import sessions

    with demo_hub.db.read() as s:
        analyst_id = s.scalar(select(User.id).where(User.username == "analyst"))
    cookies = [sessions.start(demo_hub.db, demo_hub.settings, analyst_id, user_agent="Firefox/140") for _ in range(2)]
    at = page("admin")
    users = at.dataframe[1].value  # projects, then users
    assert users.set_index("Username").loc["analyst", "Live sessions"] == 2
    assert users.set_index("Username").loc["viewer", "Live sessions"] == 0
    live = at.dataframe[2].value  # under the users tab
    assert list(live["User"]) == ["analyst", "analyst"] and set(live["Browser"]) == {"Firefox/140"}
    assert not any(c in " ".join(live["Session"]) for c in cookies)  # never the cookie itself
    at.selectbox(key="account_user").set_value("analyst").run()
    button(at, "End sessions (2)").click().run()
    assert shown(at.success) == ["Ended 2 sessions of analyst; their open tabs show the login page."]
    assert all(sessions.validate(demo_hub.db, demo_hub.settings, c) is None for c in cookies)
    with demo_hub.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "sessions-end")).one()
    assert (event.actor, event.target, event.detail) == ("admin", "user:analyst", "2 session(s) ended")
