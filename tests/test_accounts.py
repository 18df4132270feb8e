"""Projects, users, memberships and the audit trail: who may, what is validated, what is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exporthub.access import permissions_on
from exporthub.accounts import (
    AccountService,
    SystemActor,
    is_global_admin,
    role_table,
)
from exporthub.errors import AlreadyExists, InvalidTransition, InvalidValue, NotFound, PermissionDenied
from exporthub.first_run import initialize
from exporthub.models import AuditEvent, LoginAttempt, Project, User, utcnow
from exporthub.passwords import verify_password
from exporthub.permissions import ROLES, Permission

SYSTEM = SystemActor("operator")
ADMIN, PASSWORD = "root-admin", "a-long-password"


@pytest.fixture
def accounts(hub) -> AccountService:  # type: ignore[no-untyped-def]
    initialize(hub.db, SYSTEM, ADMIN, PASSWORD)
    return AccountService(hub.db)


def events(hub) -> list[tuple[str, str, str | None, str | None, str | None]]:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return [
            (e.action, e.outcome, e.actor, e.project, e.target)
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def user_row(hub, username: str) -> User:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return s.scalar(select(User).where(User.username == username))


# ---------------------------------------------------------------------- init


def test_init_creates_the_first_admin_once(hub):
    user = initialize(hub.db, SYSTEM, ADMIN, PASSWORD, display_name="First Admin")
    assert user.is_admin and user.can_log_in and user.display_name == "First Admin"
    assert verify_password(user_row(hub, ADMIN).password_hash, PASSWORD)
    with pytest.raises(InvalidTransition, match="initialised already"):
        initialize(hub.db, SYSTEM, "second", PASSWORD)
    assert events(hub) == [
        ("init", "ok", "cli:operator", None, f"user:{ADMIN}"),
        ("init", "refused", "cli:operator", None, "user:second"),
    ]


def test_init_validates_the_password(hub):
    with pytest.raises(InvalidValue, match="at least 8"):
        initialize(hub.db, SYSTEM, ADMIN, "short")
    assert not is_global_admin(hub.db, ADMIN)


# ---------------------------------------------------------------------- projects


def test_create_project_validates_and_audits(hub, accounts):
    project = accounts.create_project(ADMIN, "north-2026", "North warehouse", "Europe/Berlin")
    assert (project.slug, project.status, project.timezone) == ("north-2026", "open", "Europe/Berlin")
    assert [p.slug for p in accounts.list_projects(SYSTEM)] == ["north-2026"]
    for slug in ("North", "a_b", "-x", "x-", "a--b", "", "x" * 65, "a/b"):
        with pytest.raises(InvalidValue, match="Invalid project slug"):
            accounts.create_project(ADMIN, slug, "Name")
    with pytest.raises(InvalidValue, match="Unknown timezone"):
        accounts.create_project(ADMIN, "south", "South", "Mars/Olympus")
    with pytest.raises(InvalidValue, match="Unknown timezone"):
        accounts.create_project(ADMIN, "south", "South", "localtime")
    with pytest.raises(AlreadyExists):
        accounts.create_project(SYSTEM, "north-2026", "Again")
    with pytest.raises(InvalidValue, match="needs a name"):
        accounts.create_project(ADMIN, "south", "  ")
    log = events(hub)
    assert log[1] == ("project-add", "ok", ADMIN, "north-2026", "project:north-2026")
    assert [e[1] for e in log[2:]] == ["refused"] * 12
    with hub.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 1


def test_close_and_reopen_write_exactly_one_event_each(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    before = len(events(hub))
    closed = accounts.close_project(ADMIN, "p1")
    assert closed.status == "closed" and closed.closed_at is not None
    assert events(hub)[before:] == [("project-close", "ok", ADMIN, "p1", "project:p1")]
    reopened = accounts.reopen_project(SYSTEM, "p1")
    assert reopened.status == "open" and reopened.closed_at is None
    assert events(hub)[before + 1 :] == [("project-reopen", "ok", "cli:operator", "p1", "project:p1")]
    with pytest.raises(InvalidTransition, match="only a closed project can be reopened"):
        accounts.reopen_project(ADMIN, "p1")
    accounts.close_project(ADMIN, "p1")
    with pytest.raises(InvalidTransition, match="only an open project can be closed"):
        accounts.close_project(ADMIN, "p1")
    with pytest.raises(NotFound):
        accounts.close_project(ADMIN, "nope")


def test_set_project_currency_validates_and_audits(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    assert accounts.list_projects(ADMIN)[0].currency == "EUR"
    before = len(events(hub))
    assert accounts.set_project_currency(ADMIN, "p1", "usd").currency == "USD"
    assert events(hub)[before:] == [("project-currency", "ok", ADMIN, "p1", "project:p1")]
    with pytest.raises(InvalidValue, match="Unknown currency"):
        accounts.set_project_currency(ADMIN, "p1", "Dollars")
    accounts.create_user(ADMIN, "mia", password="mia-password")
    with pytest.raises(PermissionDenied):
        accounts.set_project_currency("mia", "p1", "GBP")
    assert [e[:3] for e in events(hub)[before + 1 :]][::2] == [
        ("project-currency", "refused", ADMIN), ("project-currency", "refused", "mia")]
    with hub.db.read() as s:
        assert s.scalar(select(Project.currency).where(Project.slug == "p1")) == "USD"


def test_a_published_project_cannot_be_reopened(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    with hub.db.write() as s:
        s.scalar(select(Project).where(Project.slug == "p1")).status = "published"
    with pytest.raises(InvalidTransition, match="published"):
        accounts.reopen_project(ADMIN, "p1")


def test_only_active_global_admins_act(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    accounts.create_user(ADMIN, "mia", password="mia-password", display_name="Mia")
    accounts.set_membership(ADMIN, "mia", "p1", "manager")  # a project manager is not a global admin
    for call in (
        lambda: accounts.create_project("mia", "p2", "P2"),
        lambda: accounts.close_project("mia", "p1"),
        lambda: accounts.create_user("mia", "zed", password="zed-password"),
        lambda: accounts.set_membership("mia", "mia", "p1", "viewer"),
        lambda: accounts.list_users("mia"),
        lambda: accounts.audit_trail("mia"),
        lambda: accounts.close_project("ghost", "p1"),
    ):
        with pytest.raises(PermissionDenied, match="Permission denied"):
            call()
    accounts.create_user(ADMIN, "ada", password="ada-password", admin=True)
    accounts.set_active(ADMIN, "ada", False)
    with pytest.raises(PermissionDenied):
        accounts.create_project("ada", "p3", "P3")
    assert [e[:3] for e in events(hub) if e[1] == "refused"][:2] == [
        ("project-add", "refused", "mia"),
        ("project-close", "refused", "mia"),
    ]


# ---------------------------------------------------------------------- users


def test_create_user_hashes_the_password_and_no_login_users_have_none(hub, accounts):
    user = accounts.create_user(
        ADMIN, "lena", password="lena-password", display_name="Lena L", email="lena@example.com"
    )
    stored = user_row(hub, "lena")
    assert stored.password_hash and stored.password_hash != "lena-password"
    assert stored.password_hash.startswith("$argon2")
    assert verify_password(stored.password_hash, "lena-password") and not verify_password(
        stored.password_hash, "x"
    )
    assert (user.can_log_in, user.is_admin, user.email) == (True, False, "lena@example.com")
    staff = accounts.create_user(SYSTEM, "field.01", password=None)
    assert not staff.can_log_in and user_row(hub, "field.01").password_hash is None
    assert staff.display_name == "field.01"


def test_create_user_refusals(hub, accounts):
    accounts.create_user(ADMIN, "lena", password="lena-password")
    cases = [
        (dict(username="Lena", password="lena-password"), AlreadyExists),
        (dict(username="cli:root", password="lena-password"), InvalidValue),
        (dict(username="", password="lena-password"), InvalidValue),
        (dict(username="short", password="1234567"), InvalidValue),
        (dict(username="boss", password=None, admin=True), InvalidValue),
        (dict(username="mail", password="lena-password", email="not-an-email"), InvalidValue),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            accounts.create_user(ADMIN, kwargs.pop("username"), **kwargs)
    assert [u.username for u in accounts.list_users(ADMIN)] == ["lena", ADMIN]


def test_set_password_replaces_the_hash_and_clears_a_lockout(hub, accounts):
    accounts.create_user(ADMIN, "lena", password=None)
    with hub.db.write() as s:
        s.add(LoginAttempt(username="lena", failures=9, locked_until=utcnow() + timedelta(hours=1)))
    user = accounts.set_password(ADMIN, "lena", "new-password-1")
    assert user.can_log_in and verify_password(user_row(hub, "lena").password_hash, "new-password-1")
    with hub.db.read() as s:
        assert s.get(LoginAttempt, "lena") is None
    with pytest.raises(InvalidValue):
        accounts.set_password(ADMIN, "lena", "short")
    with pytest.raises(NotFound):
        accounts.set_password(ADMIN, "ghost", "new-password-1")
    assert events(hub)[-3:] == [
        ("user-password", "ok", ADMIN, None, "user:lena"),
        ("user-password", "refused", ADMIN, None, "user:lena"),
        ("user-password", "refused", ADMIN, None, "user:ghost"),
    ]


def test_deactivate_and_activate(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    accounts.create_user(ADMIN, "lena", password="lena-password")
    accounts.set_membership(ADMIN, "lena", "p1", "analyst")
    with hub.db.read() as s:
        project = s.scalar(select(Project))
        assert Permission.START in permissions_on(s, user_row(hub, "lena"), project)
    assert not accounts.set_active(ADMIN, "lena", False).active
    with hub.db.read() as s:
        assert permissions_on(s, user_row(hub, "lena"), s.scalar(select(Project))) == frozenset()
    with pytest.raises(InvalidTransition, match="already deactivated"):
        accounts.set_active(ADMIN, "lena", False)
    assert accounts.set_active(SYSTEM, "lena", True).active
    assert [e[0] for e in events(hub)[-3:]] == ["user-deactivate", "user-deactivate", "user-activate"]


def test_the_last_admin_and_ones_own_account_stay_active(hub, accounts):
    with pytest.raises(InvalidTransition, match="your own account"):
        accounts.set_active(ADMIN, ADMIN, False)
    with pytest.raises(InvalidTransition, match="last active global admin"):
        accounts.set_active(SYSTEM, ADMIN, False)
    accounts.create_user(ADMIN, "ada", password="ada-password", admin=True)
    accounts.set_active(SYSTEM, ADMIN, False)
    assert not is_global_admin(hub.db, ADMIN) and is_global_admin(hub.db, "ada")


# ---------------------------------------------------------------------- memberships and roles


def test_memberships_grant_change_and_revoke_roles(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    accounts.create_user(ADMIN, "lena", password="lena-password")
    service = hub.service()
    assert accounts.set_membership(ADMIN, "lena", "p1", "viewer").roles == {"p1": "viewer"}
    assert service.permissions("lena", "p1") == ROLES["viewer"]
    assert accounts.set_membership(ADMIN, "lena", "p1", "manager").roles == {"p1": "manager"}
    assert service.permissions("lena", "p1") == ROLES["manager"]
    accounts.set_membership(ADMIN, "lena", "p1", "manager")  # the same again: fine for scripts
    assert accounts.remove_membership(SYSTEM, "lena", "p1").roles == {}
    assert service.permissions("lena", "p1") == frozenset()
    with pytest.raises(NotFound, match="no role on p1"):
        accounts.remove_membership(ADMIN, "lena", "p1")
    with pytest.raises(InvalidValue, match="Unknown role 'owner'; the roles are: viewer, analyst, manager"):
        accounts.set_membership(ADMIN, "lena", "p1", "owner")
    with pytest.raises(NotFound, match="Unknown project"):
        accounts.set_membership(ADMIN, "lena", "p9", "viewer")
    details = [e for e in events(hub) if e[0].startswith("member-")]
    assert [(e[0], e[1]) for e in details] == [("member-set", "ok")] * 3 + [
        ("member-remove", "ok"),
        ("member-remove", "refused"),
        ("member-set", "refused"),
        ("member-set", "refused"),
    ]


def test_role_table_lists_every_role_with_its_permissions():
    table = role_table()
    assert list(table) == list(ROLES)
    for role, perms in table.items():
        assert set(perms) == {str(p) for p in ROLES[role]}
    assert table["viewer"] == ("exports.view",)


# ---------------------------------------------------------------------- audit trail


def test_audit_trail_filters_by_user_action_project_and_time(hub, accounts):
    accounts.create_project(ADMIN, "p1", "P1")
    accounts.create_project(SYSTEM, "p2", "P2")
    accounts.close_project(ADMIN, "p2")
    everything = accounts.audit_trail(ADMIN)
    assert [e.action for e in everything] == ["project-close", "project-add", "project-add", "init"]
    assert [e.project for e in accounts.audit_trail(ADMIN, user=ADMIN)] == ["p2", "p1"]
    assert [e.project for e in accounts.audit_trail(ADMIN, action="project-add")] == ["p2", "p1"]
    assert [e.action for e in accounts.audit_trail(ADMIN, project="p2")] == ["project-close", "project-add"]
    newest = everything[0].time
    assert [e.action for e in accounts.audit_trail(ADMIN, since=newest)] == ["project-close"]
    assert len(accounts.audit_trail(ADMIN, until=newest)) == 3
    assert accounts.audit_trail(ADMIN, since=newest + timedelta(seconds=1)) == []
    facets = accounts.audit_facets(ADMIN)
    assert facets == {
        "actors": ["cli:operator", ADMIN],
        "actions": ["init", "project-add", "project-close"],
        "projects": ["p1", "p2"],
    }
