"""Exporthub in the browser: log in, pick a project, and use the pages you may use.

``server.py`` serves this script with the session-cookie routes next to it (``exporthub up``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from exporthub.context import ProjectInfo
from exporthub.permissions import Permission
from exporthub.sessions import SessionUser
from ui import login, session, style
from ui.format import md_escape

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="Exporthub · Reports & Exports", page_icon="📦", layout="wide")
style.inject()


def follow_redirect() -> bool:
    """Send the browser on when the session asked for it (login nonce, sign-in ticket, logout)."""
    pending = session.pending_redirect()
    if pending:
        method, url = pending
        session.redirect_browser(url, method)
    return pending is not None


def no_projects() -> None:
    st.title("Reports & Exports")
    st.info("You are not a member of any project yet. Ask an administrator to add you to one.")


def sidebar(user: SessionUser, projects: list[ProjectInfo], project: ProjectInfo | None) -> None:
    with st.sidebar:
        if projects and project is not None:
            slugs = [p.slug for p in projects]
            # The browser sends the label back, so two projects with one name would collapse into one:
            # a name shared by several projects shows its slug too.
            counts = {name: sum(p.name == name for p in projects) for name in {p.name for p in projects}}
            names = {p.slug: p.name if counts[p.name] == 1 else f"{p.name} ({p.slug})" for p in projects}
            st.selectbox(
                "Project",
                slugs,
                index=slugs.index(project.slug),
                key="_project_picker",
                format_func=lambda slug: names[slug],
                on_change=_project_picked,
            )
        st.divider()
        role = " · Global admin" if user.is_admin else ""
        st.markdown(f"**{md_escape(user.display_name)}**  \n:gray[{md_escape(user.username)}{role}]")
        if st.button("Log out", key="logout", icon=":material/logout:"):
            session.end_session("signed-out")
            st.rerun()


def _project_picked() -> None:
    st.session_state[session.PROJECT_KEY] = st.session_state["_project_picker"]


def pages_for(user: SessionUser, project: ProjectInfo | None) -> list[st.Page]:
    """Only the pages this user may use on the picked project."""
    pages: list[st.Page] = []
    if project is not None and Permission.VIEW in session.services().permissions(user.username, project.slug):
        pages.append(
            st.Page(
                PAGES / "exports.py",
                title="Reports & Exports",
                icon=":material/download:",
                url_path="exports",
            )
        )
        pages.append(
            st.Page(PAGES / "job.py", title="Job Details", icon=":material/receipt_long:", url_path="job")
        )
        if (PAGES / "statistics.py").exists():
            pages.append(
                st.Page(
                    PAGES / "statistics.py",
                    title="Statistics",
                    icon=":material/insights:",
                    url_path="statistics",
                )
            )
    if user.is_admin and (PAGES / "admin.py").exists():
        pages.append(
            st.Page(
                PAGES / "admin.py",
                title="Administration",
                icon=":material/admin_panel_settings:",
                url_path="admin",
            )
        )
    if not pages:
        pages.append(st.Page(no_projects, title="Reports & Exports", url_path="welcome"))
    return with_home(pages)


def with_home(pages: list[st.Page]) -> list[st.Page]:
    """``/`` opens the landing page (the first) under its own name, so ``/exports`` is an address too.

    Streamlit gives the default page the address ``/`` and no other, so the landing page is registered
    under its own path and a hidden default page switches to it (keeping the query string).
    """
    landing = pages[0]

    def home() -> None:
        st.switch_page(landing, query_params=st.query_params.to_dict())

    return [*pages, st.Page(home, title=landing.title, url_path="home", default=True, visibility="hidden")]


def login_pages() -> list[st.Page]:
    """The login form under every page's address: a deep link keeps its address (and query string)
    through the login and lands on the page it named afterwards."""
    routes = [("", "login"), *((route, route) for route in session.PAGE_ROUTES)]
    return [
        st.Page(partial(login.page, target=target), title="Log in", url_path=path, default=not target)
        for target, path in routes
    ]


session.housekeeping()
user = session.ensure_session()
if follow_redirect():  # a logout or an ended session: the browser clears its cookie first
    st.stop()
if user is None:
    st.navigation(login_pages(), position="hidden").run()
    follow_redirect()
    st.stop()

projects = session.visible_projects()
project = session.pick_project(projects)
sidebar(user, projects, project)
st.navigation(pages_for(user, project)).run()
