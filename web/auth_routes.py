"""Session cookie routes: the only places that set or clear the login cookies.

Streamlit's script cannot set cookies, and state kept in ``st.session_state`` is lost on reload. So:

- ``GET /auth/session/begin[?next=/download/…]`` gives the browser a random login nonce in an
  HttpOnly cookie before the login form is shown (and remembers a download to resume after login),
  then goes to ``/`` (or back to the page a deep link named, ``next=/statistics``);
- the login form checks the password and sends the browser to ``GET /auth/session?ticket=…``; this
  route redeems the ticket, only with the nonce cookie of the browser it was issued to (login CSRF),
  sets the session cookie (the signed session id, HttpOnly, SameSite=Lax) and goes to ``/``, to the
  remembered download, or to the page named by ``next`` (one of the app's pages, nowhere else);
- ``POST /auth/session/end?reason=…`` ends the server-side session and clears the cookie (logout).
  Only a same-site POST is honoured (``Sec-Fetch-Site``, else ``Origin``), so another site can neither
  log a user out with a link nor with a form.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from exporthub import sessions, tickets
from exporthub.db import get_database
from exporthub.settings import Settings, get_settings

LOGIN_PATH = "/auth/session"
BEGIN_PATH = "/auth/session/begin"
LOGOUT_PATH = "/auth/session/end"
NEXT_COOKIE = "exporthub_next"
NONCE_MAX_AGE_SECONDS = 3600
# Why the browser landed back on the login form; the app shows a matching sentence.
END_REASONS = frozenset({*(str(r) for r in sessions.EndReason), "ended", "expired-ticket", "login-required"})
# The only places a login may lead on to: a download link (see exporthub.links), or one of the app's
# pages with a plain query string (a deep link such as /statistics or /job?job=7).
_NEXT = re.compile(r"\A/download/[0-9]{1,16}\.[0-9]{1,16}\.[0-9]{1,16}\.[A-Za-z0-9_-]{43}\Z")
PAGE_ROUTES = ("exports", "job", "statistics", "admin")  # the app's addresses a link may name
_PAGE = re.compile(rf"\A/(?:{'|'.join(PAGE_ROUTES)})(?:\?[A-Za-z0-9_.~%+=&-]{{1,300}})?\Z")


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def _cookie(response: Response, request: Request, settings: Settings, name: str, value: str, *,
            max_age: int, path: str = "/") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax",
                        secure=_secure(request, settings))


def _clear(response: Response, request: Request, settings: Settings, name: str, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=_secure(request, settings))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _go(target: str) -> RedirectResponse:
    # Always a fixed local path or a checked download path: the request never decides where else to go.
    return RedirectResponse(target, status_code=303)


def _home(reason: str | None = None, *, nonce_set: bool = False) -> str:
    query = [f"auth={reason}"] if reason in END_REASONS else []
    if nonce_set:
        query.append("nonce=set")
    return "/" + ("?" + "&".join(query) if query else "")


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a download link path, else ``None``."""
    return value if isinstance(value, str) and _NEXT.match(value) else None


def safe_page(value: str | None) -> str | None:
    """``value`` if it is the address of one of the app's pages (with a plain query string), else ``None``."""
    return value if isinstance(value, str) and _PAGE.match(value) else None


def _at(page: str, query: str) -> str:
    return page + ("&" if "?" in page else "?") + query


def begin(request: Request) -> Response:
    """``GET /auth/session/begin``: a nonce cookie for the login form, and where to go after login."""
    settings = get_settings()
    target = safe_next(request.query_params.get("next"))
    home = _home("login-required" if target else request.query_params.get("auth"), nonce_set=True)
    page = safe_page(request.query_params.get("next"))
    # A deep link comes back to its own page for the login form (the form then carries it on).
    response = _go(_at(page, home.removeprefix("/?")) if page else home)
    if not tickets.is_nonce(request.cookies.get(tickets.NONCE_COOKIE)):
        _cookie(response, request, settings, tickets.NONCE_COOKIE, tickets.new_nonce(),
                max_age=NONCE_MAX_AGE_SECONDS)
    if target:
        _cookie(response, request, settings, NEXT_COOKIE, target, max_age=NONCE_MAX_AGE_SECONDS, path=LOGIN_PATH)
    return _no_store(response)


def start_session(request: Request) -> Response:
    """``GET /auth/session?ticket=…``: redeem the ticket with this browser's nonce, set the session
    cookie, and go to the app (or the download the login was for)."""
    settings = get_settings()
    cookie = tickets.redeem(get_database(settings), settings, request.query_params.get("ticket"),
                            request.cookies.get(tickets.NONCE_COOKIE),
                            user_agent=request.headers.get("user-agent"))
    if cookie is None:
        # The session cookie stays as it is: a planted ticket must not log anybody out either.
        return _no_store(_go(_home("expired-ticket")))
    target = safe_next(request.cookies.get(NEXT_COOKIE)) or safe_page(request.query_params.get("next"))
    response = _go(target or "/")
    _cookie(response, request, settings, sessions.SESSION_COOKIE, cookie, max_age=sessions.SESSION_MAX_AGE_SECONDS)
    _clear(response, request, settings, tickets.NONCE_COOKIE)  # one nonce, one login
    _clear(response, request, settings, NEXT_COOKIE, path=LOGIN_PATH)
    return _no_store(response)


def same_site(request: Request) -> bool:
    """Whether a state-changing request comes from this site's own pages.

    Browsers send ``Sec-Fetch-Site`` (``same-origin`` for our own forms and scripts); older ones send
    at least ``Origin`` with a POST, which must name this host. A request with neither is refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    host = request.headers.get("host", "")
    allowed = {host, urlsplit(get_settings().public_url).netloc}
    return urlsplit(origin).netloc in allowed - {""}


def end_session(request: Request) -> Response:
    """``POST /auth/session/end[?reason=idle]``: end the session, clear the cookie, show the login form."""
    if request.method != "POST":  # a link or an image on another site must never log anybody out
        return _no_store(PlainTextResponse("Log out with the button in the app.\n", status_code=405,
                                           headers={"Allow": "POST"}))
    if not same_site(request):
        return _no_store(PlainTextResponse("Cross-site logout refused.\n", status_code=403))
    settings = get_settings()
    reason = request.query_params.get("reason", "signed-out")
    reason = reason if reason in END_REASONS else "signed-out"
    sessions.end(get_database(settings), settings, request.cookies.get(sessions.SESSION_COOKIE),
                 reason=reason if reason in set(sessions.EndReason) else sessions.EndReason.SIGNED_OUT)
    # On to a fresh login nonce, so the login form is ready at once.
    response = _go(f"{BEGIN_PATH}?auth={reason}")
    _clear(response, request, settings, sessions.SESSION_COOKIE)
    return _no_store(response)


# Plain (sync) handlers: Starlette runs them in its thread pool, so their DB work never blocks the
# event loop that also carries every Streamlit websocket.
ROUTES: list[Route] = [
    Route(BEGIN_PATH, begin, methods=["GET"]),
    Route(LOGIN_PATH, start_session, methods=["GET"]),
    # GET is routed here too, to be refused, instead of falling through to Streamlit's pages.
    Route(LOGOUT_PATH, end_session, methods=["GET", "POST"]),
]
