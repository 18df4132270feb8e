"""``exporthub link FILE_ID --user USERNAME [--ttl SECONDS] [--json]``: print a download link.

The link belongs to ``--user``: it works only while that user is active and may view the file's
project, and never inside another user's browser session (see :mod:`exporthub.links`).
"""

from __future__ import annotations

import argparse
import json

from exporthub.errors import ExporthubError
from exporthub.settings import Settings

EXIT_OK = 0


def _ttl(text: str) -> int:
    from exporthub.links import MAX_TTL_SECONDS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {text!r}") from None
    if not 1 <= value <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL_SECONDS} seconds")
    return value


def cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here, not at the top: `exporthub --help` should not load SQLAlchemy.
    from exporthub.db import get_database
    from exporthub.links import issue_link
    from exporthub.views import iso

    try:
        link = issue_link(get_database(settings), settings, args.file_id, args.user, ttl=args.ttl)
    except ValueError as exc:
        raise ExporthubError(str(exc)) from None
    if args.json:
        print(json.dumps({"link": {"url": link.url, "path": link.path, "file_id": link.file_id,
                                   "user": link.username, "filename": link.filename,
                                   "expires_at": iso(link.expires_at)}}, ensure_ascii=False))
    else:
        print(link.url)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``link`` sub-command to the ``exporthub`` parser."""
    p = subparsers.add_parser("link", help="print a download link to a file for one user")
    p.add_argument("file_id", type=int, help="the file's id (see 'exporthub job')")
    p.add_argument("--user", required=True, help="the user the link belongs to")
    p.add_argument("--ttl", type=_ttl, default=None,
                   help="lifetime in seconds (default: the UI's link lifetime, EXPORTHUB_LINK_TTL_SECONDS)")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_link)
