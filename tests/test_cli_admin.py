"""The operator commands: init, projects, users, members, roles, import and compact.

Every command's success path and its refusals (exit 2, the message on stderr, nothing changed).
"""

from __future__ import annotations

import getpass
import io
import json
import sys

import pytest
from sqlalchemy import select

from cli import main
from exporthub.models import AuditEvent, Membership, User
from exporthub.passwords import verify_password
from exporthub.permissions import ROLES
from tests import _handmade as hm
from tests._lake import lake_files

OPERATOR = f"cli:{getpass.getuser()}"


def run(capsys, monkeypatch, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refuses bad usage with exit 2
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(hub, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    def call(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        return run(capsys, monkeypatch, *argv, stdin=stdin)

    return call


@pytest.fixture
def ready(hub, cli):  # type: ignore[no-untyped-def]
    """An initialised instance with one project and two field staff."""
    assert cli("init", "--username", "chief", stdin="chief-password\n")[0] == 0
    assert cli("projects", "add", hm.SLUG, "--name", "Hand-made", "--timezone", hm.TIMEZONE)[0] == 0
    for name in hm.STAFF:
        assert cli("users", "add", name, "--no-login")[0] == 0
    return hub


def user(hub, username: str) -> User | None:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return s.scalar(select(User).where(User.username == username))


def last_event(hub) -> tuple[str, str, str | None]:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        e = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        return (e.action, e.outcome, e.actor)


# ---------------------------------------------------------------------- init


def test_init_creates_the_first_admin_from_stdin_and_refuses_twice(hub, cli):
    code, out, err = cli("init", "--username", "chief", "--name", "The Chief", stdin="chief-password\n")
    assert code == 0 and "global admin 'chief' created" in out
    stored = user(hub, "chief")
    assert stored.is_admin and verify_password(stored.password_hash, "chief-password")
    assert last_event(hub) == ("init", "ok", OPERATOR)
    code, _, err = cli("init", "--username", "other", stdin="other-password\n")
    assert code == 2 and "initialised already" in err and user(hub, "other") is None


def test_init_refuses_without_a_password_and_never_takes_one_as_an_argument(hub, cli):
    code, _, err = cli("init", stdin="")
    assert code == 2 and "No password given" in err
    code, _, err = cli("init", "--password", "secret-secret")
    assert code == 2 and "unrecognized arguments" in err
    assert user(hub, "admin") is None


def test_init_prompts_twice_at_a_terminal(hub, cli, monkeypatch):
    answers = iter(["tty-password", "tty-password-typo"])

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", Tty())
    code = main(["init"])
    assert code == 2 and user(hub, "admin") is None


# ---------------------------------------------------------------------- projects


def test_projects_add_list_close_and_reopen(ready, cli):
    code, out, _ = cli("projects", "list", "--json")
    assert code == 0
    (project,) = json.loads(out)["projects"]
    assert (project["slug"], project["timezone"], project["status"]) == (hm.SLUG, hm.TIMEZONE, "open")
    code, out, _ = cli("projects", "close", hm.SLUG)
    assert code == 0 and "closed" in out and last_event(ready) == ("project-close", "ok", OPERATOR)
    code, _, err = cli("projects", "close", hm.SLUG)
    assert code == 2 and "only an open project can be closed" in err
    assert cli("projects", "reopen", hm.SLUG)[0] == 0
    code, _, err = cli("projects", "reopen", hm.SLUG)
    assert code == 2 and "only a closed project can be reopened" in err
    code, out, _ = cli("projects", "list")
    assert hm.SLUG in out and "open" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("projects", "add", "Bad Slug", "--name", "X"), "Invalid project slug"),
        (("projects", "add", "ok-slug", "--name", "X", "--timezone", "Europe/Atlantis"), "Unknown timezone"),
        (("projects", "add", hm.SLUG, "--name", "X"), "exists already"),
        (("projects", "close", "nope"), "Unknown project: nope"),
        (("projects", "add", "no-name"), "--name"),
    ],
)
def test_projects_refusals_exit_2(ready, cli, argv, message):
    code, _, err = cli(*argv)
    assert code == 2 and message in err


# ---------------------------------------------------------------------- users


def test_users_add_passwd_deactivate_and_activate(ready, cli):
    code, out, _ = cli(
        "users", "add", "lena", "--name", "Lena L", "--email", "lena@example.com", stdin="lena-password\n"
    )
    assert code == 0 and "Created user lena" in out
    stored = user(ready, "lena")
    assert verify_password(stored.password_hash, "lena-password") and stored.display_name == "Lena L"
    assert user(ready, "ann").password_hash is None  # --no-login
    code, out, _ = cli("users", "add", "ada", "--admin", stdin="ada-password\n")
    assert code == 0 and "global admin" in out and user(ready, "ada").is_admin
    assert cli("users", "passwd", "lena", stdin="lena-password-2\n")[0] == 0
    assert verify_password(user(ready, "lena").password_hash, "lena-password-2")
    assert cli("users", "deactivate", "lena")[0] == 0 and not user(ready, "lena").active
    assert cli("users", "activate", "lena")[0] == 0 and user(ready, "lena").active
    code, out, _ = cli("users", "list", "--json")
    listed = {u["username"]: u for u in json.loads(out)["users"]}
    assert listed["ann"]["can_log_in"] is False and listed["ada"]["is_admin"] is True


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("users", "add", "lena"), "", "No password given"),
        (("users", "add", "lena"), "short\n", "at least 8 characters"),
        (("users", "add", "ann", "--no-login"), None, "exists already"),
        (("users", "add", "bad:name", "--no-login"), None, "Invalid username"),
        (("users", "add", "boss", "--admin", "--no-login"), None, "must be able to log in"),
        (("users", "passwd", "ghost"), "ghost-password\n", "Unknown user: ghost"),
        (("users", "passwd", "ann"), "", "No password given"),
        (("users", "activate", "ann"), None, "already active"),
        (("users", "deactivate", "chief"), None, "last active global admin"),
        (("users", "deactivate", "ghost"), None, "Unknown user: ghost"),
    ],
)
def test_users_refusals_exit_2(ready, cli, argv, stdin, message):
    code, _, err = cli(*argv, stdin=stdin)
    assert code == 2 and message in err, err


# ---------------------------------------------------------------------- members and roles


def test_members_set_and_remove(ready, cli):
    code, out, _ = cli("members", "set", "ann", hm.SLUG, "analyst")
    assert code == 0 and f"ann is analyst on {hm.SLUG}" in out
    assert ready.service().permissions("ann", hm.SLUG) == ROLES["analyst"]
    assert cli("members", "set", "ann", hm.SLUG, "viewer")[0] == 0
    with ready.db.read() as s:
        assert s.scalars(select(Membership.role)).all() == ["viewer"]
    assert cli("members", "remove", "ann", hm.SLUG)[0] == 0
    assert ready.service().permissions("ann", hm.SLUG) == frozenset()
    assert last_event(ready) == ("member-remove", "ok", OPERATOR)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("members", "set", "ann", hm.SLUG, "owner"), "Unknown role 'owner'"),
        (("members", "set", "ghost", hm.SLUG, "viewer"), "Unknown user: ghost"),
        (("members", "set", "ann", "nope", "viewer"), "Unknown project: nope"),
        (("members", "remove", "ann", hm.SLUG), "ann has no role on hand-made"),
    ],
)
def test_members_refusals_exit_2(ready, cli, argv, message):
    code, _, err = cli(*argv)
    assert code == 2 and message in err


def test_roles_lists_each_role_with_its_permissions(hub, cli):
    code, out, _ = cli("roles")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith("(")}
    assert set(lines) == set(ROLES)
    for role, perms in ROLES.items():
        assert all(str(p) in lines[role] for p in perms)
    assert "exports.start" not in lines["viewer"]
    code, out, _ = cli("roles", "--json")
    roles = json.loads(out)["roles"]
    assert code == 0 and {role: set(perms) for role, perms in roles.items()} == {
        role: {str(p) for p in perms} for role, perms in ROLES.items()
    }


# ---------------------------------------------------------------------- import and compact


def test_import_then_export_inline_gives_back_the_rows(ready, cli, tmp_path):
    folder = tmp_path / "in"
    for table, name, text in (
        ("zones", "zones.csv", hm.ZONES_CSV),
        ("zone_sessions", "sessions.csv", hm.SESSIONS_CSV),
        ("scans", "scans.csv", hm.SCANS_CSV),
        ("costs", "costs.csv", hm.COSTS_CSV),
    ):
        code, out, err = cli("import", hm.SLUG, table, str(hm.write(folder, name, text)), "--json")
        assert code == 0, err
        assert json.loads(out)["import"]["rows_imported"] == text.count("\n") - 1
    assert last_event(ready) == ("import", "ok", OPERATOR)
    cli("members", "set", "chief", hm.SLUG, "manager")
    code, out, err = cli(
        "export",
        "scans",
        "--project",
        hm.SLUG,
        "--user",
        "chief",
        "--inline",
        "--var",
        "format=csv",
        "--var",
        "includeDeleted=true",
        "--json",
    )
    assert code == 0, err
    (csv_file,) = [f["path"] for f in json.loads(out)["job"]["files"] if f["name"].endswith(".csv")]
    import duckdb

    got = duckdb.sql(
        f"SELECT scan_id, zone_code, username, barcode, quantity, device FROM "
        f"read_csv('{csv_file}', all_varchar=true) ORDER BY scan_id::INT"
    ).fetchall()
    # CSV neutralises the formula-like barcode for spreadsheets; every other value comes back as typed.
    assert got == [
        ("1", "A-01", "ann", "4006381333931", "1", "DEV-01"),
        ("2", "A-01", "ann", "0000000000017", "2", "DEV-01"),
        ("3", "A-02", "bob", "'=SUM(A1)", "1", None),
        ("4", "A-02", "bob", "Ünïcødé ✓", "5", "DEV-07"),
        ("5", "B-01", "ann", "4006381333931", "1", "DEV-02"),
    ]


def test_import_refusals_exit_2_list_the_problems_and_change_nothing(ready, cli, tmp_path):
    folder = tmp_path / "in"
    cli("import", hm.SLUG, "zones", str(hm.write(folder, "zones.csv", hm.ZONES_CSV)))
    before = hm.lake_fingerprint(ready)
    bad = hm.write(
        folder,
        "bad.csv",
        hm.SESSIONS_CSV.replace("1,ann,count", "7,ann,count").replace("2026-03-29T07:15:00Z", "yesterday"),
    )
    code, out, err = cli("import", hm.SLUG, "zone_sessions", str(bad))
    assert code == 2 and out == ""
    assert "bad.csv, row 2, column started_at: expected a time in ISO 8601" in err
    code, _, err = cli("import", hm.SLUG, "zones", str(hm.write(folder, "zones.csv", hm.ZONES_CSV)))
    assert code == 2 and "3 duplicate rows" in err
    code, out, _ = cli("import", hm.SLUG, "zones", str(folder / "zones.csv"), "--skip-duplicates")
    assert code == 0 and "0 of 3 rows imported" in out and "3 duplicates skipped" in out
    code, _, err = cli("import", hm.SLUG, "scans", str(folder / "zones.csv"), "--replace")
    assert code == 2 and "can only be appended to" in err
    code, _, err = cli("import", hm.SLUG, "users", str(folder / "zones.csv"))
    assert code == 2 and "invalid choice" in err
    code, _, err = cli("import", "nope", "zones", str(folder / "zones.csv"))
    assert code == 2 and "Unknown project: nope" in err
    code, _, err = cli("import", hm.SLUG, "zones", str(folder / "missing.csv"))
    assert code == 2 and "no such file" in err
    assert hm.lake_fingerprint(ready) == before


def test_import_replace_and_compact(ready, cli, tmp_path):
    folder = tmp_path / "in"
    cli("import", hm.SLUG, "zones", str(hm.write(folder, "zones.csv", hm.ZONES_CSV)))
    for i in range(3):
        text = (
            f"cost_id,user,zone_id,date,category,hours,rate,amount\n{i + 1},ann,1,2026-03-28,labor,1,10,10\n"
        )
        assert cli("import", hm.SLUG, "costs", str(hm.write(folder, f"c{i}.csv", text)))[0] == 0
    assert len(lake_files(ready.settings, hm.SLUG, "costs")) == 3
    code, out, _ = cli("compact", hm.SLUG, "--json")
    result = json.loads(out)["compact"]["tables"]["costs"]
    assert code == 0 and (result["files_before"], result["files_after"], result["rows_rewritten"]) == (3, 1, 3)
    assert len(lake_files(ready.settings, hm.SLUG, "costs")) == 1
    code, out, _ = cli("compact", hm.SLUG)
    assert code == 0 and "costs: 1 -> 1 files" in out
    replacement = "cost_id,user,zone_id,date,category,hours,rate,amount\n9,,,2026-04-01,other,,,5\n"
    code, out, _ = cli("import", hm.SLUG, "costs", str(hm.write(folder, "new.csv", replacement)), "--replace")
    assert code == 0 and "replacing the previous costs" in out
    import duckdb

    files = lake_files(ready.settings, hm.SLUG, "costs")
    assert duckdb.sql(f"SELECT cost_id, amount FROM read_parquet({files!r})").fetchall() == [(9, 5.0)]
    code, _, err = cli("compact", "nope")
    assert code == 2 and "Unknown project: nope" in err
