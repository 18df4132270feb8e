"""Operator commands: ``init``, ``projects``, ``users``, ``members`` and ``roles``.

These run on the server as the system actor (:func:`exporthub.accounts.cli_actor`): no ``--user``;
the audit trail records ``cli:<operating-system user>``. Passwords are read from standard input
(the first line) or, at a terminal, from a prompt that asks twice; never from an argument, which
would end up in the shell history and the process list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from exporthub.errors import ExporthubError
from exporthub.permissions import ROLES
from exporthub.settings import Settings

if TYPE_CHECKING:  # imported by the commands that use them, so `exporthub --help` stays light
    from exporthub.accounts import AccountService, ProjectView, SystemActor, UserView
    from exporthub.db import Database


def get_database(settings: Settings) -> Database:
    from exporthub.db import get_database as _get_database

    return _get_database(settings)


def cli_actor() -> SystemActor:
    from exporthub.accounts import cli_actor as _cli_actor

    return _cli_actor()

EXIT_OK = 0


def read_password(prompt: str = "Password: ") -> str:
    """The new password: prompted twice at a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Repeat the password: ") != first:
            raise ExporthubError("The two passwords differ")
        return first
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise ExporthubError("No password given: type it at the prompt or pipe it on standard input")
    return password


def _service(settings: Settings) -> AccountService:
    from exporthub.accounts import AccountService

    return AccountService(get_database(settings))


def _print_project(p: ProjectView) -> None:
    print(f"{p.slug:<24} {p.status:<9} {p.timezone:<22} {p.name}")


def _print_user(u: UserView) -> None:
    flags = [
        f
        for f, on in (
            ("admin", u.is_admin),
            ("inactive", not u.active),
            ("deleted", u.deleted),
            ("no-login", not u.can_log_in),
        )
        if on
    ]
    roles = ", ".join(f"{slug}: {role}" for slug, role in u.roles.items())
    print(f"{u.username:<20} {u.display_name:<28} {' '.join(flags):<18} {roles}")


def _json(key: str, value: Any) -> None:
    print(json.dumps({key: value}, ensure_ascii=False))


# ---------------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.first_run import initialize

    db = get_database(settings)  # creates and migrates the schema
    password = read_password(f"Password for {args.username}: ")
    user = initialize(db, cli_actor(), args.username, password, display_name=args.name)
    print(f"Initialised {settings.data_dir}: schema ready, global admin '{user.username}' created.")
    return EXIT_OK


def cmd_projects_add(args: argparse.Namespace, settings: Settings) -> int:
    project = _service(settings).create_project(cli_actor(), args.slug, args.name, args.timezone)
    print(f"Created project {project.slug} ({project.name}, {project.timezone})")
    return EXIT_OK


def cmd_projects_list(args: argparse.Namespace, settings: Settings) -> int:
    projects = _service(settings).list_projects(cli_actor())
    if args.json:
        _json("projects", [p.to_json() for p in projects])
    else:
        for p in projects:
            _print_project(p)
    return EXIT_OK


def _project_status(action: str) -> Any:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        service = _service(settings)
        change = service.close_project if action == "close" else service.reopen_project
        project = change(cli_actor(), args.slug)
        print(f"Project {project.slug} is now {project.status}")
        return EXIT_OK

    return run


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    password = None if args.no_login else read_password(f"Password for {args.username}: ")
    user = _service(settings).create_user(
        cli_actor(),
        args.username,
        password=password,
        display_name=args.name,
        email=args.email,
        admin=args.admin,
        hourly_rate=args.hourly_rate,
    )
    kind = "global admin" if user.is_admin else ("user" if user.can_log_in else "user without login")
    print(f"Created {kind} {user.username}")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    users = _service(settings).list_users(cli_actor())
    if args.json:
        _json("users", [u.to_json() for u in users])
    else:
        for u in users:
            _print_user(u)
    return EXIT_OK


def cmd_users_rate(args: argparse.Namespace, settings: Settings) -> int:
    user = _service(settings).set_hourly_rate(cli_actor(), args.username, args.rate)
    print(f"Hourly rate of {user.username} set to {user.hourly_rate:g}")
    return EXIT_OK


def cmd_users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(f"New password for {args.username}: ")
    _service(settings).set_password(cli_actor(), args.username, password)
    print(f"Password of {args.username} set")
    return EXIT_OK


def _user_active(active: bool) -> Any:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        _service(settings).set_active(cli_actor(), args.username, active)
        print(f"{args.username} is now {'active' if active else 'deactivated'}")
        return EXIT_OK

    return run


def cmd_members_set(args: argparse.Namespace, settings: Settings) -> int:
    _service(settings).set_membership(cli_actor(), args.username, args.project, args.role)
    print(f"{args.username} is {args.role} on {args.project}")
    return EXIT_OK


def cmd_members_remove(args: argparse.Namespace, settings: Settings) -> int:
    _service(settings).remove_membership(cli_actor(), args.username, args.project)
    print(f"{args.username} has no role on {args.project} any more")
    return EXIT_OK


def cmd_roles(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.accounts import role_table

    roles = role_table()
    if args.json:
        _json("roles", {role: list(perms) for role, perms in roles.items()})
        return EXIT_OK
    for role, perms in roles.items():
        print(f"{role:<10} {', '.join(perms)}")
    print("(a global admin holds every permission on every project)")
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator commands to the ``exporthub`` parser's sub-commands."""
    p = sub.add_parser("init", help="create the schema and the first global admin (asks for the password)")
    p.add_argument("--username", default="admin", help="the first admin's username (default admin)")
    p.add_argument("--name", default=None, help="display name")
    p.set_defaults(func=cmd_init)

    projects = sub.add_parser("projects", help="add, list, close and reopen projects").add_subparsers(
        dest="projects_command", required=True
    )
    p = projects.add_parser("add", help="create a project")
    p.add_argument("slug", help="the project's slug: lower-case words joined by -")
    p.add_argument("--name", required=True, help="the project's name as people read it")
    p.add_argument("--timezone", default="UTC", help="IANA name, e.g. Europe/Berlin (default UTC)")
    p.set_defaults(func=cmd_projects_add)
    p = projects.add_parser("list", help="list every project")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_projects_list)
    for action in ("close", "reopen"):
        p = projects.add_parser(action, help=f"{action} a project")
        p.add_argument("slug", help="the project's slug: lower-case words joined by -")
        p.set_defaults(func=_project_status(action))

    users = sub.add_parser("users", help="add users, set passwords, activate and deactivate").add_subparsers(
        dest="users_command", required=True
    )
    p = users.add_parser("add", help="create a user (password from standard input or a prompt)")
    p.add_argument("username", help="the user's username")
    p.add_argument("--name", default=None, help="display name (default: the username)")
    p.add_argument("--email", default=None, help="the user's email address (OIDC logins match it)")
    p.add_argument("--admin", action="store_true", help="a global admin: every permission everywhere")
    p.add_argument("--no-login", action="store_true", help="field staff who never log in: no password")
    p.add_argument("--hourly-rate", type=float, default=0.0, metavar="RATE",
                   help="cost of one hour of this person's work, for the users export (default 0)")
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("rate", help="set a user's hourly rate (the users export's labour figures)")
    p.add_argument("username", help="the user's username")
    p.add_argument("rate", type=float, help="cost of one hour of work, e.g. 21.50")
    p.set_defaults(func=cmd_users_rate)
    p = users.add_parser("list", help="list users with their roles")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("passwd", help="set a user's password (from standard input or a prompt)")
    p.add_argument("username", help="the user's username")
    p.set_defaults(func=cmd_users_passwd)
    for action, active in (("deactivate", False), ("activate", True)):
        p = users.add_parser(action, help=f"{action} an account")
        p.add_argument("username", help="the user's username")
        p.set_defaults(func=_user_active(active))

    members = sub.add_parser("members", help="grant and revoke project roles").add_subparsers(
        dest="members_command", required=True
    )
    p = members.add_parser("set", help="give USERNAME the ROLE on PROJECT (replaces any role there)")
    p.add_argument("username", help="the user's username")
    p.add_argument("project", help="the project's slug")
    p.add_argument("role", help=f"one of: {', '.join(ROLES)}")
    p.set_defaults(func=cmd_members_set)
    p = members.add_parser("remove", help="take away USERNAME's role on PROJECT")
    p.add_argument("username", help="the user's username")
    p.add_argument("project", help="the project's slug")
    p.set_defaults(func=cmd_members_remove)

    p = sub.add_parser("roles", help="list the roles and their permissions")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_roles)
