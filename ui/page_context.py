"""Who is logged in and which project is picked, as every page reads them, and the page context.

- ``st.session_state["user"]``: the logged-in username (use :func:`current_user`);
- ``st.session_state["project"]``: the picked project's slug (use :func:`current_project`);
- :func:`page_context` gives a project page the user, the project, the permissions and the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from exporthub import auth
from exporthub.context import ProjectInfo
from exporthub.jobs import JobService
from exporthub.permissions import Permission
from exporthub.settings import Settings
from ui.wiring import database, services

USER_KEY = "user"
PROJECT_KEY = "project"
USER_INFO_KEY = "_auth_user"  # the SessionUser of the logged-in user (the login session sets it)


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
    info = st.session_state.get(USER_INFO_KEY)
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
