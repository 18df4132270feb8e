"""Who is logged in, which project is picked, and the wired domain services.

The convention every page follows:

- ``st.session_state["user"]``: the logged-in username (use :func:`current_user`);
- ``st.session_state["project"]``: the picked project's slug (use :func:`current_project`);
- :func:`services` gives the process-wide :class:`~exporthub.jobs.JobService`, wired with the Huey
  dispatcher from ``worker.py``.

How a login survives a reload: the login form checks the password, then the browser is sent to
``/auth/session?ticket=…`` (``web/auth_routes.py``), which stores a signed session token in an
HttpOnly cookie. On every page load :func:`ensure_session` reads that cookie through
``st.context.cookies``. While the user is active the page asks ``/auth/session/refresh`` to
re-sign the cookie, so the idle clock restarts; a session idle for longer than
``EXPORTHUB_SESSION_IDLE_SECONDS`` ends. Each script run re-reads the user, so a deactivated
account is sent back to the login form at once. With OIDC configured in Streamlit's ``[auth]``
secrets, ``st.login``/``st.user`` replace the password form and the cookie.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from exporthub import auth, maintenance
from exporthub.context import ProjectInfo
from exporthub.db import Database, get_database
from exporthub.dispatch import Dispatcher
from exporthub.jobs import JobService
from exporthub.permissions import Permission
from exporthub.settings import Settings, get_settings

USER_KEY = "user"
PROJECT_KEY = "project"
_INFO_KEY = "_auth_user"  # the SessionUser of the logged-in user
_SEEN_KEY = "_auth_seen"  # wall-clock time of the last full script run (user activity)
_SOURCE_KEY = "_auth_source"  # "cookie" | "form" | "oidc"
_REFRESHED_KEY = "_auth_refreshed"  # when the cookie was last re-signed
_REDIRECT_KEY = "_auth_redirect"  # a URL the browser must go to on this run
_ENDED_KEY = "_auth_ended"  # why the last session ended (for the login form's message)

LOGIN_ROUTE = "/auth/session"
LOGOUT_ROUTE = "/auth/session/end"
REFRESH_ROUTE = "/auth/session/refresh"

AuthMode = Literal["password", "oidc"]
# Why a session ended; the login form shows a sentence for each (and the logout route passes it on).
END_REASONS = ("signed-out", "idle", "ended", "disabled", "expired-ticket", "no-account")


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
            service = JobService(get_database(current), current, make_dispatcher())
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


# ---------------------------------------------------------------------------- mode


def oidc_configured(secrets: Mapping[str, Any] | None) -> bool:
    """True when Streamlit's ``[auth]`` secrets configure an OIDC provider (so ``st.login`` works).

    Streamlit needs ``redirect_uri`` and ``cookie_secret`` plus a provider with ``client_id``,
    either directly under ``[auth]`` or in a named section such as ``[auth.google]``.
    """
    if not isinstance(secrets, Mapping):
        return False
    section = secrets.get("auth")
    if (
        not isinstance(section, Mapping)
        or not section.get("redirect_uri")
        or not section.get("cookie_secret")
    ):
        return False
    if section.get("client_id"):
        return True
    return any(isinstance(v, Mapping) and v.get("client_id") for v in section.values())


def oidc_providers(secrets: Mapping[str, Any]) -> list[str | None]:
    """The provider names to pass to ``st.login`` (``[None]`` for the unnamed default provider)."""
    section = secrets.get("auth") or {}
    if section.get("client_id"):
        return [None]
    return [k for k, v in section.items() if isinstance(v, Mapping) and v.get("client_id")]


def streamlit_secrets() -> Mapping[str, Any] | None:
    """Streamlit's secrets as a plain mapping, or ``None`` when there are none."""
    try:
        return st.secrets.to_dict() if len(st.secrets) else None
    except Exception:  # no secrets.toml at all: Streamlit raises instead of returning empty
        return None


def auth_mode() -> AuthMode:
    return "oidc" if oidc_configured(streamlit_secrets()) else "password"


# ---------------------------------------------------------------------------- session life


def _now() -> float:
    return time.time()


def _start(user: auth.SessionUser, source: str) -> None:
    st.session_state[USER_KEY] = user.username
    st.session_state[_INFO_KEY] = user
    st.session_state[_SOURCE_KEY] = source
    st.session_state[_SEEN_KEY] = _now()
    st.session_state[_REFRESHED_KEY] = _now()
    st.session_state.pop(_ENDED_KEY, None)


def _clear(reason: str | None) -> None:
    for key in (USER_KEY, PROJECT_KEY, _INFO_KEY, _SOURCE_KEY, _SEEN_KEY, _REFRESHED_KEY):
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

    Picks the user up from this browser session, the session cookie or OIDC; ends the session when
    it was idle too long or the account was deactivated; and keeps the cookie's idle clock fresh.
    Call once per full script run, before drawing pages.
    """
    db, current = database(), get_settings()
    if auth_mode() == "oidc":
        return _ensure_oidc(db)
    name = current_user()
    if name is not None:
        seen = float(st.session_state.get(_SEEN_KEY) or _now())
        if _now() - seen > current.session_idle_seconds:
            end_session("idle")
            return None
        user = auth.current_user(db, name)
        if user is None:
            end_session("disabled")
            return None
        st.session_state[_INFO_KEY] = user
        st.session_state[_SEEN_KEY] = _now()
        _keep_cookie_fresh(current)
        return user
    token = st.context.cookies.get(auth.SESSION_COOKIE)
    if isinstance(token, str) and token:
        user = auth.validate_session(db, current, token)
        if user is None:
            # A stale or revoked cookie: clear it so every later load does not try it again.
            end_session("ended")
            return None
        _start(user, "cookie")
        return user
    return None


def _ensure_oidc(db: Database) -> auth.SessionUser | None:
    if not st.user.is_logged_in:
        if current_user():
            _clear("signed-out")
        return None
    name = current_user()
    if name is not None:
        user = auth.current_user(db, name)
        if user is None:
            _clear("disabled")
            return None
        st.session_state[_INFO_KEY] = user
        st.session_state[_SEEN_KEY] = _now()
        return user
    claims = st.user.to_dict()

    def claim(*names: str) -> str | None:
        return next((str(v) for n in names if isinstance(v := claims.get(n), str) and v), None)

    user = auth.login_identity(db, email=claim("email"), username=claim("preferred_username", "name"))
    if user is not None:
        _start(user, "oidc")
    else:
        st.session_state[_ENDED_KEY] = "no-account"
    return user


def login(username: str, password: str) -> auth.SessionUser:
    """Check the password and start the session; the browser is then sent to the cookie route.

    Raises :class:`~exporthub.auth.LoginRefused` (or ``LoginThrottled``) with a message to show.
    """
    db, current = database(), get_settings()
    user = auth.authenticate(db, current, username, password)
    _start(user, "form")
    ticket = auth.issue_ticket(db, current, user.id)
    st.session_state[_REDIRECT_KEY] = f"{LOGIN_ROUTE}?ticket={ticket}"
    return user


def end_session(reason: str = "signed-out") -> None:
    """Log out: forget the user here and have the browser clear the cookie (OIDC: ``st.logout``)."""
    source = st.session_state.get(_SOURCE_KEY)
    _clear(reason)
    if source == "oidc" or auth_mode() == "oidc":
        st.logout()
        return
    st.session_state[_REDIRECT_KEY] = f"{LOGOUT_ROUTE}?reason={reason}"


def still_active() -> bool:
    """For fragments that rerun on their own: False once the account was deactivated or the
    session idled out (the caller then reruns the whole app, which shows the login form)."""
    name = current_user()
    if name is None:
        return False
    seen = float(st.session_state.get(_SEEN_KEY) or _now())
    if _now() - seen > get_settings().session_idle_seconds:
        return False
    return auth.current_user(database(), name) is not None


def touch() -> None:
    """Count an action inside a fragment as activity (fragment reruns skip the main script)."""
    if current_user():
        st.session_state[_SEEN_KEY] = _now()


def pending_redirect() -> str | None:
    """The URL the browser must go to now (sign-in ticket or logout), consumed once."""
    return st.session_state.pop(_REDIRECT_KEY, None)


def redirect_browser(url: str) -> None:
    """Send the browser to ``url`` (a local path) with a one-line script.

    ``st.html`` runs the script in the page itself (not in an iframe), so ``location.replace``
    navigates the tab; ``replace`` keeps the ticket URL out of the history.
    """
    st.html(f"<script>window.location.replace({json.dumps(url)});</script>", unsafe_allow_javascript=True)


def _refresh_interval(current: Settings) -> float:
    # Often enough that an active user never idles out, rarely enough to cost nothing.
    return max(30.0, min(300.0, current.session_idle_seconds / 4))


def _keep_cookie_fresh(current: Settings) -> None:
    if st.session_state.get(_SOURCE_KEY) not in ("cookie", "form"):
        return
    last = float(st.session_state.get(_REFRESHED_KEY) or 0)
    if _now() - last < _refresh_interval(current):
        return
    st.session_state[_REFRESHED_KEY] = _now()
    # The stamp makes the element new, so the browser runs the script once more.
    st.html(
        f"<script>/* {int(_now())} */ fetch({json.dumps(REFRESH_ROUTE)}, "
        "{method: 'POST', credentials: 'same-origin'});</script>",
        unsafe_allow_javascript=True,
    )


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
