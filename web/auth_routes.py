"""Session cookie routes: the only places that set or clear the login cookie.

Streamlit's script cannot set an HttpOnly cookie, and state kept in ``st.session_state`` is lost on
reload. So after the login form checks the password, the page sends the browser to
``/auth/session?ticket=…`` with a one-time ticket; this route trades it for a signed session token
in an HttpOnly, SameSite=Lax cookie and redirects to ``/``. The script reads the cookie through
``st.context.cookies`` on each page load. ``/auth/session/refresh`` slides the idle expiry while the
user is active, and ``/auth/session/end`` clears the cookie (logout).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from exporthub import auth
from exporthub.db import get_database
from exporthub.settings import Settings, get_settings

LOGIN_PATH = "/auth/session"
LOGOUT_PATH = "/auth/session/end"
REFRESH_PATH = "/auth/session/refresh"
# Why the browser landed back on the login form; the app shows a matching sentence.
END_REASONS = frozenset({"signed-out", "idle", "ended", "disabled", "expired-ticket"})


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def set_session_cookie(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=settings.session_idle_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )


def clear_session_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request, settings)
    )


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _home(reason: str | None = None) -> RedirectResponse:
    # Always a fixed local path: nothing from the request decides where the browser goes.
    target = "/" if reason is None else f"/?auth={reason}"
    return RedirectResponse(target, status_code=303)


def start_session(request: Request) -> Response:
    """``GET /auth/session?ticket=…``: set the session cookie and go to the app."""
    settings = get_settings()
    token = auth.redeem_ticket(get_database(settings), settings, request.query_params.get("ticket"))
    if token is None:
        response = _home("expired-ticket")
        clear_session_cookie(response, request, settings)
        return _no_store(response)
    response = _home()
    set_session_cookie(response, request, settings, token)
    return _no_store(response)


def end_session(request: Request) -> Response:
    """``GET /auth/session/end[?reason=idle]``: clear the cookie and show the login form."""
    settings = get_settings()
    reason = request.query_params.get("reason", "signed-out")
    reason = reason if reason in END_REASONS else "signed-out"
    auth.end_session(get_database(settings), settings, request.cookies.get(auth.SESSION_COOKIE), reason=reason)
    response = _home(reason)
    clear_session_cookie(response, request, settings)
    return _no_store(response)


def refresh_session(request: Request) -> Response:
    """``POST /auth/session/refresh``: re-sign a live session as seen now (204), or clear it (401).

    POST with a SameSite=Lax cookie: another site cannot make a browser send it here.
    """
    settings = get_settings()
    token = auth.refresh_session(get_database(settings), settings, request.cookies.get(auth.SESSION_COOKIE))
    response = Response(status_code=204 if token else 401)
    if token:
        set_session_cookie(response, request, settings, token)
    else:
        clear_session_cookie(response, request, settings)
    return _no_store(response)


# Plain (sync) handlers: Starlette runs them in its thread pool, so their DB reads never block the
# event loop that also carries every Streamlit websocket.
ROUTES: list[Route] = [
    Route(LOGIN_PATH, start_session, methods=["GET"]),
    Route(LOGOUT_PATH, end_session, methods=["GET"]),
    Route(REFRESH_PATH, refresh_session, methods=["POST"]),
]
