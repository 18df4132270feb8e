"""``GET /download/{token}``: stream a stored export file to the user a link was made for.

Every check lives in the domain (:func:`exporthub.links.resolve_download`); this handler only finds
out who the request is (an API token, else a login session), sends a browser without either to log
in first, streams the granted file from the file store in chunks (never the whole file in memory)
and writes safe headers. Streaming rather than redirecting to a presigned object-store URL: pyarrow's
file systems cannot presign, and a presigned URL works for whoever holds it, while a link here works
only for its own user, is checked on every use and is counted and audited. A refusal answers 403 or 404
with a fixed sentence; why it was refused is in the audit trail, not in the answer.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import AsyncIterator
from typing import BinaryIO
from urllib.parse import quote, urlencode

import anyio.to_thread
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from exporthub import api_tokens, sessions
from exporthub.db import get_database
from exporthub.links import ROUTE_PREFIX, LinkRefused, Requester, open_granted, resolve_download
from exporthub.settings import get_settings
from web.auth_routes import BEGIN_PATH

CHUNK_BYTES = 256 * 1024
# Sent with every answer of this route, files and refusals alike: never cached by a shared proxy or
# kept in the browser cache, never sniffed into something executable, never rendered in a page.
_COMMON_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
_MEDIA_TYPE = re.compile(r"\A[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}\Z")
# RFC 8187 attr-char minus nothing: what may stay unescaped in filename*.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
_FALLBACK_DROP = re.compile(r'[\x00-\x1f\x7f"\\;]')


def requester(request: Request) -> Requester:
    """Who this request is: the user of its API token (``Authorization: Bearer``) or, without one,
    of its login session cookie. Runs in a worker thread: both read the database.

    An ``Authorization`` header that names no live token is ``bad-token`` (refused, never a session
    fallback); an expired, forged or ended session cookie is no session at all.
    """
    settings = get_settings()
    db = get_database(settings)
    header = request.headers.get("authorization")
    if header is not None:
        user = api_tokens.authenticate(db, api_tokens.bearer_token(header))
        return Requester(user.username, "token") if user is not None else Requester(None, "bad-token")
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    user = sessions.check(db, settings, cookie, touch=True).user if cookie else None
    return Requester(user.username, "session") if user is not None else Requester(None, "none")


def _is_browser_navigation(request: Request) -> bool:
    if request.headers.get("sec-fetch-mode") == "navigate":
        return True
    return "text/html" in request.headers.get("accept", "")


def content_disposition(filename: str) -> str:
    """An RFC 6266 ``attachment`` header value for ``filename``.

    ``filename*`` carries the real name, UTF-8 percent-encoded (RFC 8187); ``filename`` is a plain
    ASCII fallback for old clients, with accents folded and quotes, backslashes, semicolons, control
    characters (CR, LF, NUL) and anything non-ASCII removed. Both drop control and format characters
    and turn unusual spaces into plain ones. Path separators become ``_`` in both, so
    no name can point into a folder.
    """
    name = "".join(_clean_char(ch) for ch in filename)
    name = name.replace("/", "_").replace("\\", "_").strip() or "download"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = _FALLBACK_DROP.sub("", ascii_name).strip().lstrip(".") or "download"
    encoded = quote(name, safe=_ATTR_CHAR_SAFE, encoding="utf-8", errors="strict")
    return f"attachment; filename=\"{ascii_name[:150]}\"; filename*=UTF-8''{encoded}"


def _clean_char(ch: str) -> str:
    # Controls (NUL, CR, LF), format characters (e.g. the right-to-left override used to disguise
    # ".exe" names), surrogates and line/paragraph separators go; other spaces become plain spaces.
    category = unicodedata.category(ch)
    if category[0] == "C" or category in ("Zl", "Zp"):
        return ""
    return " " if category == "Zs" else ch


def media_type(content_type: str) -> str:
    """The recorded content type if it is a plain ``type/subtype``, else ``application/octet-stream``."""
    return content_type if _MEDIA_TYPE.match(content_type or "") else "application/octet-stream"


class ChangedWhileSending(RuntimeError):
    """The bytes read from the store are not the recorded file: the last chunk is withheld."""


async def _stream(fh: BinaryIO, size: int, sha256: str) -> AsyncIterator[bytes]:
    """Read ``size`` bytes in chunks, off the event loop; closes the file however the send ends.

    The bytes are hashed on the way and the last chunk is held back until the sha256 is the recorded
    one: an object store's modification time has whole seconds, so a file replaced within the second
    it was written passes the size-and-mtime check, and must still never arrive whole (the client
    sees a body shorter than its ``Content-Length``, i.e. a failed download).
    """
    digest, held, left = hashlib.sha256(), b"", size
    try:
        while left > 0:
            chunk = await anyio.to_thread.run_sync(fh.read, min(CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            digest.update(chunk)
            if held:
                yield held
            held = chunk
        if left or digest.hexdigest() != sha256:
            raise ChangedWhileSending("the stored file is not the recorded one; the download was cut")
        if held:
            yield held
    finally:
        fh.close()


def _refusal(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=_COMMON_HEADERS)


async def download(request: Request) -> Response:
    """``GET /download/{token}``: 200 with the file; a browser without a session is sent to log in
    first (303); otherwise 401/403/404 with a fixed message."""
    if request.method != "GET":  # Starlette adds HEAD to GET routes; a probe must not count a download
        return Response(status_code=405, headers={**_COMMON_HEADERS, "Allow": "GET"})
    settings = get_settings()
    token = request.path_params.get("token", "")
    who = await anyio.to_thread.run_sync(requester, request)
    try:
        grant = await anyio.to_thread.run_sync(
            lambda: resolve_download(get_database(settings), settings, token, requester=who)
        )
    except LinkRefused as refused:
        if refused.status == 401 and who.via == "none" and _is_browser_navigation(request):
            # A forwarded link opened in a browser: log in as its user, then the download starts.
            target = ROUTE_PREFIX + token
            return RedirectResponse(f"{BEGIN_PATH}?{urlencode({'next': target})}", status_code=303,
                                    headers=_COMMON_HEADERS)
        response = _refusal(refused.status, refused.message)
        if refused.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="exporthub"'
        return response
    fh = await anyio.to_thread.run_sync(open_granted, settings, grant)
    if fh is None:
        # Changed in the moment between the check and the open: rare, and never served.
        return _refusal(404, LinkRefused(404, "changed while opening").message)
    headers = {
        **_COMMON_HEADERS,
        "Content-Disposition": content_disposition(grant.filename),
        "Content-Length": str(grant.size),
    }
    body = _stream(fh, grant.size, grant.sha256)
    return StreamingResponse(body, media_type=media_type(grant.content_type), headers=headers)


ROUTES: list[Route] = [Route(ROUTE_PREFIX + "{token}", download, methods=["GET"])]


class KeepDownloadsUncompressed:
    """ASGI middleware: hide ``Accept-Encoding`` from the layers below for ``/download/`` requests.

    Streamlit wraps every route, ours included, in a gzip middleware (level 9). For downloads that
    would burn CPU recompressing xlsx, parquet and zip files that are compressed already, and it
    would drop the ``Content-Length`` the browser shows progress with. Must wrap Streamlit's own
    middleware, i.e. be passed to ``st.App(middleware=...)``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = scope.get("path", ""), scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path.startswith(ROUTE_PREFIX):
                headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


MIDDLEWARE: list[Middleware] = [Middleware(KeepDownloadsUncompressed)]
