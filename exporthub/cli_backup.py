"""``exporthub restore``: bring a project back from a backup zip, as a new project.

Registered in :func:`exporthub.cli.build_parser`. Only a global admin may restore;
refusals (not an admin, a taken slug, a corrupted backup) exit 2 with the message on stderr and leave
nothing behind.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from exporthub.settings import Settings

EXIT_OK = 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here, not at the top: `exporthub --help` should not load pyarrow and DuckDB.
    from exporthub.db import get_database
    from exporthub.errors import ExporthubError
    from exporthub.restore import restore_backup, restore_stored_backup

    if (args.zip is None) == (args.file is None):
        raise ExporthubError("Give either a backup zip or --file FILE_ID (a backup job's file)")
    if args.file is not None:
        report = restore_stored_backup(get_database(settings), settings, args.file, project_slug=args.project,
                                       actor=args.user, name=args.name)
    else:
        report = restore_backup(get_database(settings), settings, Path(args.zip), project_slug=args.project,
                                actor=args.user, name=args.name)
    if args.json:
        print(json.dumps({"restore": report.to_json()}, ensure_ascii=False))
        return EXIT_OK
    rows = ", ".join(f"{n:,} {t}" for t, n in report.lake_rows.items())
    print(f"Restored {report.source_project} as {report.project} ({report.status}): "
          f"{report.lake_files} lake files, {rows}")
    print(f"  memberships: {', '.join(f'{u} ({r})' for u, r in report.memberships) or 'none'}")
    if report.unknown_usernames:
        print(f"  unknown usernames, memberships skipped: {', '.join(report.unknown_usernames)}")
    if report.created_users:
        print(f"  people in the lake created as field staff: {', '.join(report.created_users)}")
    history = (f"  job history: {report.jobs} jobs (hidden, without files), "
               f"{report.export_sessions} export sessions")
    if report.skipped_active_jobs:
        history += f"; {report.skipped_active_jobs} active jobs skipped"
    if report.reassigned_jobs:
        history += f"; {report.reassigned_jobs} jobs of unknown users now owned by {args.user}"
    print(history)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``restore (ZIP | --file FILE_ID) --project NEW_SLUG --user USERNAME [--name NAME] [--json]``."""
    p = subparsers.add_parser("restore", help="restore a project backup as a new project (global admins)")
    p.add_argument("zip", nargs="?", help="the backup zip made by the 'backup' export")
    p.add_argument("--file", type=int, metavar="FILE_ID",
                   help="restore a backup job's file straight from the file store instead of a zip")
    p.add_argument("--project", required=True, help="the new project's slug (must not exist)")
    p.add_argument("--user", required=True, help="the acting user; must be a global admin")
    p.add_argument("--name", help="the new project's name (default: the backed-up project's name)")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_restore)
