"""Who is logged in, which project is picked, and the wired domain services.

The convention every page follows:

- ``st.session_state["user"]``: the logged-in username (use :func:`current_user`);
- ``st.session_state["project"]``: the picked project's slug (use :func:`current_project`);
- :func:`services` gives the process-wide :class:`~exporthub.jobs.JobService`, wired with the Huey
  dispatcher from ``worker.py``.

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

import importlib
import json
import threading
from dataclasses import dataclass

import streamlit as st

from exporthub import auth, maintenance, sessions, tickets
from exporthub.context import ProjectInfo
from exporthub.db import Database, get_database
from exporthub.dispatch import Dispatcher
from exporthub.jobs import JobService
from exporthub.permissions import Permission
from exporthub.settings import Settings, get_settings
from ui.oidc import auth_mode

USER_KEY = "user"
PROJECT_KEY = "project"
SESSION_KEY = "_auth_session"  # the session cookie's value (the signed server-side session id)
_INFO_KEY = "_auth_user"  # the SessionUser of the logged-in user
_SOURCE_KEY = "_auth_source"  # "cookie" | "oidc"
_REDIRECT_KEY = "_auth_redirect"  # (method, URL) the browser must go to on this run
_ENDED_KEY = "_auth_ended"  # why the last session ended (for the login form's message)

LOGIN_ROUTE = "/auth/session"
BEGIN_ROUTE = "/auth/session/begin"
LOGOUT_ROUTE = "/auth/session/end"

# Why a session ended; the login form shows a sentence for each (and the logout route passes it on).
END_REASONS = (
    *(str(r) for r in sessions.EndReason), "ended", "expired-ticket", "no-account", "login-required",
)


# ---------------------------------------------------------------------------- wiring


def settings() -> Settings:
    return get_settings()


def database() -> Database:
    return get_database(get_settings())


def make_dispatcher() -> Dispatcher:
    """The Huey dispatcher. ``worker`` is imported here, at the edge, so the domain never imports Huey."""
    return importlib.import_module("worker").HueyDispatcher()  # type: ignore[no-any-return]


_services: dict[Settings, JobService] = {}
_services_lock = threading.Lock()


def services() -> JobService:
    """The :class:`JobService` for the current settings, built once per process (it loads the config)."""
    current = get_settings()
    with _services_lock:
        service = _services.get(current)
        if service is None:
            from exporters import REGISTRY  # the edge hands the domain its plugins

            service = JobService(get_database(current), current, make_dispatcher(), registry=REGISTRY)
            _services[current] = service
        return service


def housekeeping() -> None:
    """Run the reaper and queue sweep when due (at most once per reaper interval in this process).

    Called on every script run and fragment refresh, so a job whose only worker was killed still ends
    "worker lost" while anyone has the app open. Never raises: errors are logged by the domain.
    """
    current = get_settings()
    maintenance.tick_if_due(get_database(current), current, services().dispatcher)


def use_services(service: JobService) -> None:
    """Make ``service`` the one :func:`services` returns for its settings.

    Tests use it to wire their own dispatcher.
    """
    with _services_lock:
        _services[service.settings] = service


# ---------------------------------------------------------------------------- the convention


def current_user() -> str | None:
    """The logged-in username, or ``None``."""
    value = st.session_state.get(USER_KEY)
    return value if isinstance(value, str) and value else None


def current_project() -> str | None:
    """The picked project's slug, or ``None`` (no project picked or none visible)."""
    value = st.session_state.get(PROJECT_KEY)
    return value if isinstance(value, str) and value else None


def current_user_info() -> auth.SessionUser | None:
    """The logged-in user with id, display name and admin flag (re-read on every full run)."""
    info = st.session_state.get(_INFO_KEY)
    if isinstance(info, auth.SessionUser) and info.username == current_user():
        return info
    name = current_user()
    return auth.current_user(database(), name) if name else None


def visible_projects() -> list[ProjectInfo]:
    name = current_user()
    return auth.projects_for(database(), name) if name else []


def current_project_info() -> ProjectInfo | None:
    slug = current_project()
    return next((p for p in visible_projects() if p.slug == slug), None) if slug else None


# ---------------------------------------------------------------------------- session life


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent when this tab connected (``st.context.cookies``), or ``None``."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and value else None


def _user_agent() -> str | None:
    value = st.context.headers.get("User-Agent")
    return value if isinstance(value, str) else None


def _start(user: auth.SessionUser, cookie: str, source: str) -> None:
    st.session_state[USER_KEY] = user.username
    st.session_state[_INFO_KEY] = user
    st.session_state[SESSION_KEY] = cookie
    st.session_state[_SOURCE_KEY] = source
    st.session_state.pop(_ENDED_KEY, None)


def _clear(reason: str | None) -> None:
    for key in (USER_KEY, PROJECT_KEY, _INFO_KEY, SESSION_KEY, _SOURCE_KEY):
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


def login(username: str, password: str) -> auth.SessionUser:
    """Check the password and send the browser to trade a one-time ticket for the session cookie.

    The ticket is bound to this browser's login nonce. Raises :class:`~exporthub.auth.LoginRefused`
    (or ``LoginThrottled``) with a message to show.
    """
    nonce = login_nonce()
    if nonce is None:  # the form is only shown with a nonce; it may have expired meanwhile
        raise auth.LoginRefused("Your login form expired. Reload the page and log in again.")
    db, current = database(), get_settings()
    user = auth.authenticate(db, current, username, password)
    ticket = tickets.issue(db, user.id, nonce)
    st.session_state[_REDIRECT_KEY] = ("GET", f"{LOGIN_ROUTE}?ticket={ticket}")
    return user


def ask_for_login_nonce() -> None:
    """Have the browser fetch a login nonce (then it comes back to the login form)."""
    reason = ended_reason()
    query = f"?auth={reason}" if reason in END_REASONS else ""
    st.session_state[_REDIRECT_KEY] = ("GET", BEGIN_ROUTE + query)


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
    return tuple(pending) if pending else None  # type: ignore[return-value]


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


# ---------------------------------------------------------------------------- project picker


def pick_project(projects: list[ProjectInfo]) -> ProjectInfo | None:
    """Keep ``st.session_state["project"]`` on one of ``projects`` (the query string may suggest one)."""
    slugs = [p.slug for p in projects]
    chosen = current_project()
    if chosen not in slugs:
        wanted = st.query_params.get("project")
        chosen = wanted if wanted in slugs else (slugs[0] if slugs else None)
        if chosen is None:
            st.session_state.pop(PROJECT_KEY, None)
            return None
        st.session_state[PROJECT_KEY] = chosen
    return next(p for p in projects if p.slug == chosen)


# ---------------------------------------------------------------------------- page context


@dataclass(frozen=True)
class PageContext:
    """Everything a page needs: the user, the picked project, their permissions there, the service."""

    user: auth.SessionUser
    project: ProjectInfo
    permissions: frozenset[Permission]
    service: JobService

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def page_context(required: Permission = Permission.VIEW) -> PageContext:
    """The context for a project page, or a plain message and ``st.stop()`` when there is none:
    not logged in, no project picked, or ``required`` not held on the project."""
    user = current_user_info()
    if user is None:
        st.warning("Please log in.")
        st.stop()
    project = current_project_info()
    if project is None:
        st.info("Pick a project in the sidebar to see its exports.")
        st.stop()
    service = services()
    permissions = service.permissions(user.username, project.slug)
    if required not in permissions:
        st.error("Permission denied")
        st.stop()
    return PageContext(user=user, project=project, permissions=permissions, service=service)
