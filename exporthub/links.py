"""User-bound, expiring download links: ``/download/<token>``.

A token is ``<file id>.<user id>.<expires>.<signature>``: three decimal integers and an HMAC-SHA256
over them (keyed with the instance secret, :meth:`Settings.resolved_secret_key`), base64url without
padding. It carries no secret and needs no server-side state, so any web replica can check it.

A token only *names* a grant. Everything that can change after a link was made is checked again on
every use by :func:`resolve_download`: the signature (so a rotated secret kills every link), the
expiry, that the user still exists and is active, that they still hold ``exports.view`` on the file's
project, that the file and its job were not removed, that the stored file is still inside the files
folder and unchanged since it was recorded, and that the request comes from that same user: through
their browser session or one of their API tokens (``Authorization: Bearer``). Without either, a
browser is asked to log in first and then gets the file; another user's session or token is refused.
Each use writes exactly one audit event, ``download``: ``ok``
(and the file's download count goes up) or ``refused`` with the reason in the detail.

Links the UI shows use :func:`download_path`, whose expiry is *bucketed*: it is rounded up to a
multiple of the TTL, so the same file and user give the same link for a whole TTL period (pages
rerun every second or so, and a link that changes on every rerun defeats the browser and the user's
"copy link"). The remaining lifetime of a freshly made bucketed link is always more than ``ttl`` and
at most ``2 * ttl``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from exporthub import audit, signing
from exporthub.access import get_user, has, is_usable
from exporthub.db import Database
from exporthub.errors import PUBLIC_MESSAGES, ExporthubError, FileNotAvailable, LinkRefused, NotFound
from exporthub.models import File, Job, Project, User
from exporthub.permissions import Permission
from exporthub.settings import Settings
from exporthub.stored_files import open_granted, stored_path, verify_stored

ACTION = "download"
ROUTE_PREFIX = "/download/"  # the one path of the download route (web/downloads.py serves it)
# Long enough for any real token (ids and expiry are bounded below), short enough to refuse junk cheaply.
MAX_TOKEN_LENGTH = 128
MAX_ID = 2**53 - 1  # ids and timestamps beyond this are junk, whatever the signature says
MAX_TTL_SECONDS = 366 * 24 * 3600
_PURPOSE = "download-link"  # its own key: a session cookie can never pass as a link
_TOKEN = re.compile(r"\A([0-9]{1,16})\.([0-9]{1,16})\.([0-9]{1,16})\.([A-Za-z0-9_-]{43})\Z")



@dataclass(frozen=True)
class LinkClaims:
    """What a token with a valid signature says: which file, for whom, until when (Unix seconds)."""

    file_id: int
    user_id: int
    expires_at: int


@dataclass(frozen=True)
class DownloadGrant:
    """A download that passed every check: what to send and how to name it.

    ``mtime_ns`` is the verified file's modification time; the server compares it with the file it
    opens from the store (:func:`open_granted`), so a file swapped between the check and the send is
    not served.
    """

    storage_key: str
    filename: str
    content_type: str
    size: int
    file_id: int
    sha256: str
    mtime_ns: int


# ---------------------------------------------------------------------- making links


def _message(file_id: int, user_id: int, expires_at: int) -> str:
    return f"{file_id}.{user_id}.{expires_at}"


def _check_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"{name} must be an integer between 0 and {MAX_ID}, got {value!r}")
    return value


def make_token(settings: Settings, file_id: int, user_id: int, expires_at: int | datetime) -> str:
    """A signed token for ``file_id`` and ``user_id``, valid until ``expires_at`` (Unix seconds or an
    aware datetime). Raises ``ValueError`` for negative or absurd values and ``SettingsError`` when the
    instance has no usable secret."""
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        expires_at = math.ceil(expires_at.timestamp())
    file_id, user_id = _check_int("file_id", file_id), _check_int("user_id", user_id)
    expires_at = _check_int("expires_at", expires_at)
    message = _message(file_id, user_id, expires_at)
    return f"{message}.{signing.sign(settings, _PURPOSE, message)}"


def bucketed_expiry(now: float, ttl: int) -> int:
    """The end of the TTL period after the current one: the same for every ``now`` in one period
    ``[k * ttl, (k + 1) * ttl)``, and always more than ``ttl`` and at most ``2 * ttl`` seconds away."""
    if ttl < 1:
        raise ValueError("ttl must be at least one second")
    return (math.floor(now) // ttl + 2) * ttl


def download_path(
    settings: Settings, file_id: int, user_id: int, now: float | None = None, ttl: int | None = None
) -> str:
    """``/download/<token>`` for the UI, with a bucketed expiry (see the module docstring).

    ``ttl`` defaults to ``settings.link_ttl_seconds``; ``now`` (Unix seconds) to the current time.
    """
    ttl = settings.link_ttl_seconds if ttl is None else ttl
    expires = bucketed_expiry(time.time() if now is None else now, ttl)
    return ROUTE_PREFIX + make_token(settings, file_id, user_id, expires)


def download_url(
    settings: Settings, file_id: int, user_id: int, now: float | None = None, ttl: int | None = None
) -> str:
    """:func:`download_path` prefixed with ``settings.public_url`` (for e-mails, the CLI, scripts)."""
    return settings.public_url + download_path(settings, file_id, user_id, now=now, ttl=ttl)


@dataclass(frozen=True)
class IssuedLink:
    url: str
    path: str
    file_id: int
    username: str
    filename: str
    expires_at: datetime


def issue_link(
    db: Database, settings: Settings, file_id: int, username: str, *, ttl: int | None = None,
    now: float | None = None,
) -> IssuedLink:
    """A link for ``username`` to a stored file, after checking they may download it today.

    With ``ttl`` the link expires exactly ``ttl`` seconds from now (the CLI's ``--ttl``); without it the
    expiry is bucketed like the UI's. Raises :class:`NotFound` for an unknown user,
    :class:`FileNotAvailable` for a file that is missing, removed or not visible to the user (one
    answer for all three), ``ValueError`` for a bad ``ttl``. Making a link is a read and writes
    nothing; a refusal writes one ``link`` audit event.
    """
    if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds")
    slug: str | None = None
    try:
        with db.read() as s:
            user = get_user(s, username)
            try:
                slug, _expected, (filename, _type, _id) = _visible_file(s, user, file_id)
            except LinkRefused:
                raise FileNotAvailable(file_id) from None
            user_id = user.id
    except ExporthubError as exc:
        audit.record_refusal(db, exc, action="link", actor=username, project=slug, target=f"file:{file_id}")
        raise
    now = time.time() if now is None else now
    expires = math.ceil(now) + ttl if ttl is not None else bucketed_expiry(now, settings.link_ttl_seconds)
    path = ROUTE_PREFIX + make_token(settings, file_id, user_id, expires)
    return IssuedLink(url=settings.public_url + path, path=path, file_id=file_id, username=username,
                      filename=filename, expires_at=datetime.fromtimestamp(expires, UTC))


# ---------------------------------------------------------------------- checking links


def parse_token(settings: Settings, token: object) -> LinkClaims:
    """The claims of a token whose signature is valid under the current secret.

    Checks the shape and the signature only (constant-time), not the expiry or anything in the database.
    Raises :class:`LinkRefused` (403) for anything else, whatever the input; never another exception
    except ``SettingsError`` when the instance itself has no usable secret.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise LinkRefused(403, "malformed token")
    match = _TOKEN.match(token)
    if match is None:
        raise LinkRefused(403, "malformed token")
    file_id, user_id, expires_at = (int(g) for g in match.groups()[:3])
    if max(file_id, user_id, expires_at) > MAX_ID:
        raise LinkRefused(403, "malformed token")
    # Canonical form only: "007" and "7" must not both be valid spellings of one link.
    if f"{file_id}.{user_id}.{expires_at}" != token.rsplit(".", 1)[0]:
        raise LinkRefused(403, "malformed token")
    if not signing.verify(settings, _PURPOSE, _message(file_id, user_id, expires_at), match.group(4)):
        raise LinkRefused(403, "bad signature")
    return LinkClaims(file_id=file_id, user_id=user_id, expires_at=expires_at)


@dataclass(frozen=True)
class Requester:
    """Who presents a link: the user of the request's login session or API token, if any.

    ``via`` says how the request identified itself: ``"session"``, ``"token"``, ``"bad-token"`` (an
    ``Authorization`` header whose token is not a live one) or ``"none"``.
    """

    username: str | None
    via: str = "none"


_Expected = tuple[str, int, int, str]  # storage key, size, mtime_ns, sha256
_Named = tuple[str, str, int]  # file name, content type, file id


def _visible_file(s: Session, user: User, file_id: int) -> tuple[str, _Expected, _Named]:
    """(project slug, what is on disk, how it is named) of a file ``user`` may download now.

    A file that does not exist, that the user may not see, or that was removed is refused with one
    and the same answer (404), so nobody learns which file ids exist elsewhere.
    """
    row = s.get(File, file_id) if 0 <= file_id <= MAX_ID else None
    job = s.get(Job, row.job_id) if row is not None else None
    if row is None or job is None:
        raise LinkRefused(404, "unknown file")
    project = s.get(Project, row.project_id)
    assert project is not None
    if not has(s, user, project, Permission.VIEW):
        raise LinkRefused(404, "no exports.view on the project")
    if row.deleted_at is not None or job.removed_at is not None:
        raise LinkRefused(404, "file removed")
    return project.slug, (row.storage_key, row.size, row.mtime_ns, row.sha256), (row.name, row.content_type, row.id)


def _granted(db: Database, settings: Settings, username: str, slug: str, expected: _Expected, named: _Named,
             detail: str | None) -> DownloadGrant:
    """Check the file on disk, count the download and write its ``ok`` audit event."""
    mtime_ns = verify_stored(settings, *expected)
    name, content_type, file_id = named
    with db.write() as s:
        changes: dict[str, object] = {"download_count": File.download_count + 1}
        if mtime_ns != expected[2]:
            # Same bytes (re-hashed) under a new mtime, e.g. after a restore: remember it, hash once.
            changes["mtime_ns"] = mtime_ns
        s.execute(update(File).where(File.id == file_id).values(**changes))
        audit.record(s, action=ACTION, actor=username, project=slug, target=f"file:{file_id}", detail=detail)
    return DownloadGrant(storage_key=expected[0], filename=name, content_type=content_type, size=expected[1],
                         file_id=file_id, sha256=expected[3], mtime_ns=mtime_ns)


def _refused(db: Database, refused: LinkRefused, *, username: str | None, slug: str | None,
             file_id: int | None) -> None:
    with db.write() as s:
        audit.record(s, action=ACTION, outcome=audit.Outcome.REFUSED, actor=username, project=slug,
                     target=None if file_id is None else f"file:{file_id}", detail=refused.reason)


def resolve_download(
    db: Database,
    settings: Settings,
    token: object,
    *,
    requester: Requester,
    now: float | None = None,
) -> DownloadGrant:
    """Check a download token against the current state and the requester, and count the download.

    A link works only for its own user: ``requester`` must be that user, through a login session or
    an API token. Raises :class:`LinkRefused`: 401 when the request carries neither (a browser is
    then sent to log in) or a dead API token; 403 for a bad or expired token, an unusable user, or
    a requester who is another user; 404 for a file that is unknown, not visible to the user, removed,
    missing, outside the files folder or changed on disk. Success and refusal each write exactly one
    ``download`` audit event; success also increments ``files.download_count``.
    """
    claims: LinkClaims | None = None
    username: str | None = None
    slug: str | None = None
    try:
        claims = parse_token(settings, token)
        with db.read() as s:
            user = s.get(User, claims.user_id)
            if user is None:
                raise LinkRefused(403, "user no longer exists")
            username = user.username  # a signed token names its user: worth a name in the audit trail
            if (time.time() if now is None else now) >= claims.expires_at:
                raise LinkRefused(403, "link expired")
            if not is_usable(user):
                raise LinkRefused(403, "user is deactivated or deleted")
            if requester.via == "bad-token":
                raise LinkRefused(401, "invalid, revoked or expired API token")
            if requester.username is None:
                raise LinkRefused(401, "no login session or API token: asked to log in")
            if requester.username != user.username:
                raise LinkRefused(403, f"link used by another user ({requester.username[:64]}, {requester.via})")
            slug, expected, named = _visible_file(s, user, claims.file_id)
        return _granted(db, settings, user.username, slug, expected, named,
                        None if requester.via == "session" else f"via {requester.via}")
    except LinkRefused as refused:
        _refused(db, refused, username=username, slug=slug, file_id=None if claims is None else claims.file_id)
        raise


def fetch_file(db: Database, settings: Settings, file_id: int, username: str) -> DownloadGrant:
    """A stored file for ``username`` at the server's command line (``exporthub download``).

    The same checks as a link (the user is active and may view the file's project, the file is there
    and unchanged), the same count and one ``download`` audit event. Raises :class:`NotFound` for an
    unknown user and :class:`FileNotAvailable` for every other refusal (missing, removed, not visible,
    changed on disk): one answer, whatever the reason; the reason is in the audit trail.
    """
    slug: str | None = None
    try:
        with db.read() as s:
            user = get_user(s, username)
            if not is_usable(user):
                raise LinkRefused(403, "user is deactivated or deleted")
            slug, expected, named = _visible_file(s, user, file_id)
        return _granted(db, settings, username, slug, expected, named, "via cli")
    except LinkRefused as refused:
        _refused(db, refused, username=username, slug=slug, file_id=file_id)
        raise FileNotAvailable(file_id) from None
    except NotFound as exc:
        raise audit.record_refusal(db, exc, action=ACTION, actor=username, target=f"file:{file_id}") from None


__all__ = [
    "PUBLIC_MESSAGES",
    "DownloadGrant",
    "IssuedLink",
    "LinkClaims",
    "LinkRefused",
    "Requester",
    "download_path",
    "download_url",
    "fetch_file",
    "issue_link",
    "make_token",
    "open_granted",
    "parse_token",
    "resolve_download",
    "stored_path",
]
