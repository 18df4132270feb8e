"""Who is logged in, which project is picked, and the wired domain services: one import for pages.

The convention every page follows:

- ``st.session_state["user"]``: the logged-in username (use :func:`current_user`);
- ``st.session_state["project"]``: the picked project's slug (use :func:`current_project`);
- :func:`services` gives the process-wide :class:`~exporthub.jobs.JobService`, wired with the Huey
  dispatcher from ``worker.py``.

The work lives in three modules, re-exported here: :mod:`ui.wiring` (settings, database, services),
:mod:`ui.login_session` (the tab's login session, login, logout, redirects) and :mod:`ui.page_context`
(the convention above, the project picker and :func:`page_context`).
"""

from __future__ import annotations

from exporthub import auth
from ui.login_session import (
    BEGIN_ROUTE,
    END_REASONS,
    LOGIN_ROUTE,
    LOGOUT_ROUTE,
    PAGE_ROUTES,
    SESSION_KEY,
    ask_for_login_nonce,
    browser_cookie,
    end_session,
    ended_reason,
    ensure_session,
    login,
    login_nonce,
    page_target,
    pending_redirect,
    redirect_browser,
    still_active,
    touch,
)
from ui.page_context import (
    PROJECT_KEY,
    USER_KEY,
    PageContext,
    current_project,
    current_project_info,
    current_user,
    current_user_info,
    page_context,
    pick_project,
    visible_projects,
)
from ui.wiring import database, housekeeping, make_dispatcher, services, settings, use_services

__all__ = [
    "BEGIN_ROUTE", "END_REASONS", "LOGIN_ROUTE", "LOGOUT_ROUTE", "PAGE_ROUTES", "PROJECT_KEY", "SESSION_KEY",
    "USER_KEY", "PageContext", "ask_for_login_nonce", "auth", "browser_cookie", "current_project",
    "current_project_info", "current_user", "current_user_info", "database", "end_session", "ended_reason",
    "ensure_session", "housekeeping", "login", "login_nonce", "make_dispatcher", "page_context",
    "page_target", "pending_redirect", "pick_project", "redirect_browser", "services", "settings",
    "still_active", "touch", "use_services", "visible_projects",
]
