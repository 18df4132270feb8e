"""The login session of a browser tab: the cookie (or OIDC) session checked on every run, login,
logout, and the redirects that carry them out.

How a login works and ends (see :mod:`exporthub.sessions` and ``web/auth_routes.py``): the login form
is shown only to a browser holding a login nonce cookie (``/auth/session/begin`` sets it); it checks
the password and sends the browser to ``/auth/session?ticket=…`` with a one-time ticket bound to that
nonce, which starts a server-side session and stores its signed id in an HttpOnly cookie. Every full
script run and every refresh of a refreshing fragment checks that session in the database
(:func:`ensure_session`, :func:`still_active`), so a logout, a password change, a deactivation or an
admin's "end sessions" shows this tab the login page on its next rerun. Logging out ends the session
on the server at once, then clears the cookie with a same-site POST to ``/auth/session/end``. With OIDC
configured in Streamlit's ``[auth]`` secrets, ``st.login``/``st.user`` replace the password form; the
server-side session then lives in ``st.session_state`` instead of a cookie.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import streamlit as st

from exporthub import auth, sessions, tickets
from exporthub.db import Database
from exporthub.settings import Settings, get_settings
from ui.oidc import auth_mode
from ui.page_context import PROJECT_KEY, USER_INFO_KEY, USER_KEY, current_user
from ui.wiring import database
from web import auth_routes

SESSION_KEY = "_auth_session"  # the session cookie's value (the signed server-side session id)
_SOURCE_KEY = "_auth_source"  # "cookie" | "oidc"
_REDIRECT_KEY = "_auth_redirect"  # (method, URL) the browser must go to on this run
_ENDED_KEY = "_auth_ended"  # why the last session ended (for the login form's message)

LOGIN_ROUTE = "/auth/session"
BEGIN_ROUTE = "/auth/session/begin"
LOGOUT_ROUTE = "/auth/session/end"
# The app's page addresses a link may name (``/statistics``, ``/job?job=7``); the login keeps them.
PAGE_ROUTES = auth_routes.PAGE_ROUTES
_LOGIN_PARAMS = frozenset({"auth", "nonce"})  # the login's own query parameters, not the page's

# Why a session ended; the login form shows a sentence for each (and the logout route passes it on).
END_REASONS = (
    *(str(r) for r in sessions.EndReason), "ended", "expired-ticket", "no-account", "login-required",
)


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent when this tab connected (``st.context.cookies``), or ``None``."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and value else None


def _user_agent() -> str | None:
    value = st.context.headers.get("User-Agent")
    return value if isinstance(value, str) else None


def _start(user: auth.SessionUser, cookie: str, source: str) -> None:
    st.session_state[USER_KEY] = user.username
    st.session_state[USER_INFO_KEY] = user
    st.session_state[SESSION_KEY] = cookie
    st.session_state[_SOURCE_KEY] = source
    st.session_state.pop(_ENDED_KEY, None)


def _clear(reason: str | None) -> None:
    for key in (USER_KEY, PROJECT_KEY, USER_INFO_KEY, SESSION_KEY, _SOURCE_KEY):
        st.session_state.pop(key, None)
    if reason:
        st.session_state[_ENDED_KEY] = reason


def ended_reason() -> str | None:
    """Why the last session ended (one of :data:`END_REASONS`), if known."""
    reason = st.session_state.get(_ENDED_KEY)
    if reason:
        return str(reason)
    raw = st.query_params.get("auth")
    return raw if raw in END_REASONS else None


def ensure_session() -> auth.SessionUser | None:
    """The logged-in user for this run, or ``None`` (then the caller shows the login form).

    Checks the server-side session this tab holds (or the browser's session cookie) in the database,
    counts the run as activity, and ends the tab's login when the session is over for any reason.
    Call once per full script run, before drawing pages.
    """
    db, current = database(), get_settings()
    if auth_mode() == "oidc":
        return _ensure_oidc(db, current)
    cookie = st.session_state.get(SESSION_KEY) or browser_cookie(sessions.SESSION_COOKIE)
    if not cookie:
        if current_user():
            _clear(None)  # a user name without a session is nobody
        return None
    check = sessions.check(db, current, cookie, touch=True)
    if check.user is None:
        # Over on the server (or a stale cookie): clear the cookie so later loads do not try it again.
        end_session(check.reason or "ended")
        return None
    _start(check.user, cookie, "cookie")
    return check.user


def _ensure_oidc(db: Database, current: Settings) -> auth.SessionUser | None:
    if not st.user.is_logged_in:
        if current_user():
            _clear("signed-out")
        return None
    cookie = st.session_state.get(SESSION_KEY)
    if cookie:
        check = sessions.check(db, current, cookie, touch=True)
        if check.user is not None:
            _start(check.user, cookie, "oidc")
            return check.user
        _clear(check.reason or "ended")
        st.logout()
        return None
    claims = st.user.to_dict()

    def claim(*names: str) -> str | None:
        return next((str(v) for n in names if isinstance(v := claims.get(n), str) and v), None)

    user = auth.login_identity(db, email=claim("email"), username=claim("preferred_username", "name"))
    if user is None:
        st.session_state[_ENDED_KEY] = "no-account"
        return None
    _start(user, sessions.start(db, current, user.id, source="oidc", user_agent=_user_agent()), "oidc")
    return user


def login_nonce() -> str | None:
    """This browser's login nonce (set by ``/auth/session/begin``), or ``None`` when it has none yet."""
    nonce = browser_cookie(tickets.NONCE_COOKIE)
    return nonce if tickets.is_nonce(nonce) else None


def page_target(route: str) -> str:
    """The address of the page this tab shows: ``/`` + ``route`` + its query string (minus the
    login's own parameters). The login carries it through, so a deep link lands where it pointed."""
    params = {k: v for k, v in st.query_params.to_dict().items() if k not in _LOGIN_PARAMS}
    return f"/{route}" + (f"?{urlencode(params)}" if params else "")


def _with_next(url: str, target: str) -> str:
    if target == "/":
        return url
    return url + ("&" if "?" in url else "?") + urlencode({"next": target})


def login(username: str, password: str, target: str = "/") -> auth.SessionUser:
    """Check the password and send the browser to trade a one-time ticket for the session cookie,
    then on to ``target`` (a page address, see :func:`page_target`).

    The ticket is bound to this browser's login nonce. Raises :class:`~exporthub.auth.LoginRefused`
    (or ``LoginThrottled``) with a message to show.
    """
    nonce = login_nonce()
    if nonce is None:  # the form is only shown with a nonce; it may have expired meanwhile
        raise auth.LoginRefused("Your login form expired. Reload the page and log in again.")
    db, current = database(), get_settings()
    user = auth.authenticate(db, current, username, password)
    ticket = tickets.issue(db, user.id, nonce)
    st.session_state[_REDIRECT_KEY] = ("GET", _with_next(f"{LOGIN_ROUTE}?ticket={ticket}", target))
    return user


def ask_for_login_nonce(target: str = "/") -> None:
    """Have the browser fetch a login nonce (then it comes back to the login form at ``target``)."""
    reason = ended_reason()
    query = f"?auth={reason}" if reason in END_REASONS else ""
    st.session_state[_REDIRECT_KEY] = ("GET", _with_next(BEGIN_ROUTE + query, target))


def end_session(reason: str = "signed-out") -> None:
    """Log out: end the session on the server now, forget the user here, and have the browser clear
    the cookie with a same-site POST (OIDC: ``st.logout``)."""
    source = st.session_state.get(_SOURCE_KEY)
    cookie = st.session_state.get(SESSION_KEY)
    if cookie:
        ending = reason if reason in set(sessions.EndReason) else sessions.EndReason.SIGNED_OUT
        sessions.end(database(), get_settings(), cookie, reason=ending)
    _clear(reason)
    if source == "oidc" or auth_mode() == "oidc":
        st.logout()
        return
    reason = reason if reason in END_REASONS else "signed-out"
    st.session_state[_REDIRECT_KEY] = ("POST", f"{LOGOUT_ROUTE}?reason={reason}")


def still_active() -> bool:
    """For fragments that rerun on their own: False once the session is over for any reason (the
    caller then reruns the whole app, which shows the login form). Not counted as activity."""
    name, cookie = current_user(), st.session_state.get(SESSION_KEY)
    if name is None or not cookie:
        return False
    user = sessions.check(database(), get_settings(), cookie).user
    return user is not None and user.username == name


def touch() -> None:
    """Count an action inside a fragment as activity (fragment reruns skip the main script)."""
    cookie = st.session_state.get(SESSION_KEY)
    if cookie:
        sessions.touch(database(), get_settings(), cookie)


def pending_redirect() -> tuple[str, str] | None:
    """(method, URL) the browser must go to now (sign-in ticket, login nonce or logout), consumed once."""
    pending = st.session_state.pop(_REDIRECT_KEY, None)
    return tuple(pending) if pending else None


def redirect_browser(url: str, method: str = "GET") -> None:
    """Send the browser to ``url`` (a local path) with a one-line script.

    ``st.html`` runs the script in the page itself (not in an iframe), so it navigates the tab. A GET
    uses ``location.replace``, which keeps a ticket URL out of the history; a POST submits a form
    built on the spot, so the browser sends it as a same-origin request (``Sec-Fetch-Site``).
    """
    if method == "POST":
        script = (
            "const f = document.createElement('form'); f.method = 'POST'; "
            f"f.action = {json.dumps(url)}; document.body.appendChild(f); f.submit();"
        )
    else:
        script = f"window.location.replace({json.dumps(url)});"
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
