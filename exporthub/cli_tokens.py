"""Scripts' access to files: ``exporthub tokens create|list|revoke`` and ``exporthub download``.

A download link belongs to one user and, without that user's browser session, asks for a login. A
script on another machine sends one of the user's API tokens instead (``curl -H "Authorization:
Bearer eh_…" URL``); a script on the server itself fetches the file directly with ``exporthub download
FILE_ID --user USERNAME``. Tokens are managed by the operator at the server (the system actor, like
``exporthub users``); the token is printed once and only its sha256 is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from exporthub.errors import ExporthubError
from exporthub.settings import Settings

EXIT_OK = 0


def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub import api_tokens
    from exporthub.accounts import cli_actor
    from exporthub.db import get_database

    view, secret = api_tokens.create(get_database(settings), cli_actor(), args.user, args.name, ttl_days=args.days)
    if args.json:
        print(json.dumps({"token": {**view.to_json(), "secret": secret}}, ensure_ascii=False))
        return EXIT_OK
    print(secret)
    print(f"API token {view.id} for {view.username} ({view.name}); shown once, store it now. "
          f"Send it as 'Authorization: Bearer <token>' with a download link of {view.username}.", file=sys.stderr)
    return EXIT_OK


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub import api_tokens
    from exporthub.accounts import cli_actor
    from exporthub.db import get_database

    tokens = api_tokens.list_tokens(get_database(settings), cli_actor(), args.user)
    if args.json:
        print(json.dumps({"tokens": [t.to_json() for t in tokens]}, ensure_ascii=False))
        return EXIT_OK
    for t in tokens:
        state = "active" if t.active else ("revoked" if t.revoked_at else "expired")
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        print(f"{t.id:<6} {t.username:<20} {state:<8} last used {used:<16}  {t.name}")
    return EXIT_OK


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub import api_tokens
    from exporthub.accounts import cli_actor
    from exporthub.db import get_database

    view = api_tokens.revoke(get_database(settings), cli_actor(), args.token_id)
    print(f"API token {view.id} of {view.username} ({view.name}) revoked")
    return EXIT_OK


def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    from exporthub.db import get_database
    from exporthub.links import fetch_file

    chosen = Path(args.output) if args.output else None
    if chosen is not None and not chosen.is_dir():
        _refuse_existing(chosen, args.force)  # before the download is counted
    from exporthub.links import open_granted

    grant = fetch_file(get_database(settings), settings, args.file_id, args.user)
    name = Path(grant.filename).name
    target = chosen if chosen is not None and not chosen.is_dir() else (chosen or Path.cwd()) / name
    _refuse_existing(target, args.force)
    # Copied next to the target and renamed into place: an interrupted download leaves no half file.
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=target.parent)
    try:
        src = open_granted(settings, grant)
        if src is None:
            raise ExporthubError(f"File {grant.file_id} changed while it was being read; try again")
        with src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if args.json:
        print(json.dumps({"download": {"file_id": grant.file_id, "path": str(target), "size": grant.size,
                                       "sha256": grant.sha256}}, ensure_ascii=False))
    else:
        print(target)
    return EXIT_OK


def _refuse_existing(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise ExporthubError(f"{target} exists already; use --force to replace it")
    if not target.parent.is_dir():
        raise ExporthubError(f"No such folder: {target.parent}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tokens`` and ``download`` to the ``exporthub`` parser's sub-commands."""
    tokens = sub.add_parser("tokens", help="API tokens for scripts that download files").add_subparsers(
        dest="tokens_command", required=True
    )
    p = tokens.add_parser("create", help="make a token for a user (printed once)")
    p.add_argument("--user", required=True, help="whose downloads the token may make")
    p.add_argument("--name", required=True, help="what the token is for, e.g. 'nightly sync'")
    p.add_argument("--days", type=int, default=None, help="lifetime in days (default: until revoked)")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_tokens_create)
    p = tokens.add_parser("list", help="list tokens (never the tokens themselves)")
    p.add_argument("--user", default=None, help="only this user's tokens")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_tokens_list)
    p = tokens.add_parser("revoke", help="revoke a token at once")
    p.add_argument("token_id", type=int, help="the token's id (see 'exporthub tokens list')")
    p.set_defaults(func=cmd_tokens_revoke)

    p = sub.add_parser("download", help="save a stored file as a user may download it")
    p.add_argument("file_id", type=int, help="the file's id (see 'exporthub job')")
    p.add_argument("--user", required=True, help="the acting user; needs exports.view on the file's project")
    p.add_argument("-o", "--output", default=None, help="file or folder to save to (default: the file's name here)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print JSON (refusals too)")
    p.set_defaults(func=cmd_download)
