"""The administration's Projects tab: the list, close or reopen (after a confirmation), the currency,
create."""

from __future__ import annotations

import streamlit as st

from exporthub.accounts import AccountService, ProjectView, timezone_names
from exporthub.validation import CURRENCIES
from ui.admin_common import attempt, flash
from ui.format import md_escape

_CONFIRM = "_admin_confirm"  # (action, slug) waiting for the admin's confirmation


def projects_tab(accounts: AccountService, admin: str, projects: list[ProjectView]) -> None:
    st.dataframe(
        [
            {
                "Slug": p.slug,
                "Name": p.name,
                "Timezone": p.timezone,
                "Currency": p.currency,
                "Status": p.status.capitalize(),
                "Created": p.created_at.strftime("%Y-%m-%d"),
                "Closed": p.closed_at.strftime("%Y-%m-%d %H:%M") if p.closed_at else "",
            }
            for p in projects
        ],
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Close or reopen")
        status_change(accounts, admin, projects)
        st.subheader("Currency")
        currency_change(accounts, admin, projects)
    with right:
        st.subheader("Create a project")
        create_project(accounts, admin)


def status_change(accounts: AccountService, admin: str, projects: list[ProjectView]) -> None:
    if not projects:
        st.caption("No projects yet.")
        return
    by_slug = {p.slug: p for p in projects}
    pending = st.session_state.get(_CONFIRM)
    # Always drawn (disabled while confirming), so the choice survives the confirmation step.
    slug = st.selectbox(
        "Project",
        list(by_slug),
        key="status_project",
        disabled=pending is not None,
        format_func=lambda s: f"{s} · {by_slug[s].status}",
    )
    if pending:
        confirm_status_change(accounts, admin, *pending)
        return
    project = by_slug[slug]
    if project.status == "open":
        if st.button("Close project…", key="close_project", icon=":material/lock:"):
            st.session_state[_CONFIRM] = ("close", slug)
            st.rerun()
    elif project.status == "closed":
        if st.button("Reopen project…", key="reopen_project", icon=":material/lock_open:"):
            st.session_state[_CONFIRM] = ("reopen", slug)
            st.rerun()
    else:
        st.caption("A published project stays closed: its files went out.")


def confirm_status_change(accounts: AccountService, admin: str, action: str, slug: str) -> None:
    verb = "Close" if action == "close" else "Reopen"
    consequence = (
        "Exports that need a closed project (publish) become possible; analysts should stop "
        "changing its data."
        if action == "close"
        else "Exports that need a closed project are refused again until it is closed."
    )
    st.warning(f"{verb} **{md_escape(slug)}**? {consequence}", icon=":material/help:")
    yes, no = st.columns(2)
    if yes.button(f"Yes, {verb.lower()} {md_escape(slug)}", type="primary", key="confirm_status"):
        del st.session_state[_CONFIRM]
        change = accounts.close_project if action == "close" else accounts.reopen_project
        if attempt(change, admin, slug) is not None:
            flash(f"Project {slug} is now {'closed' if action == 'close' else 'open'}.")
    if no.button("Cancel", key="cancel_status"):
        del st.session_state[_CONFIRM]
        st.rerun()


def currency_change(accounts: AccountService, admin: str, projects: list[ProjectView]) -> None:
    """What a project's costs are in: cost figures, charts and reports show it."""
    if not projects:
        return
    by_slug = {p.slug: p for p in projects}
    cols = st.columns(2)
    # Outside the form, so that picking a project shows its currency in the dropdown at once.
    slug = cols[0].selectbox("Project", list(by_slug), key="currency_project",
                             format_func=lambda s: f"{s} · {by_slug[s].currency}")
    current = by_slug[slug].currency
    with cols[1].form("project_currency", border=False):
        # One dropdown per project (its key), starting on the project's currency, not on the list's first.
        code = st.selectbox("Currency", CURRENCIES, key=f"currency_code_{slug}",
                            index=CURRENCIES.index(current) if current in CURRENCIES else 0,
                            help="Cost figures, charts and reports of the project show it")
        if (st.form_submit_button("Set currency", icon=":material/payments:")
                and attempt(accounts.set_project_currency, admin, slug, code) is not None):
            flash(f"Costs of project {slug} are now in {code}.")


def create_project(accounts: AccountService, admin: str) -> None:
    zones = sorted(timezone_names())
    with st.form("create_project", clear_on_submit=False):
        slug = st.text_input(
            "Slug",
            key="new_project_slug",
            placeholder="warehouse-2026",
            help="Lower-case letters, digits and hyphens; used in folders and links",
        )
        name = st.text_input("Name", key="new_project_name", placeholder="Warehouse inventory 2026")
        tz = st.selectbox(
            "Timezone",
            zones,
            index=zones.index("UTC"),
            key="new_project_tz",
            help="Every filter, chart and file name of the project uses it",
        )
        if (st.form_submit_button("Create project", type="primary")
                and attempt(accounts.create_project, admin, slug.strip(), name, tz) is not None):
            flash(f"Project {slug.strip()} created.")


# ---------------------------------------------------------------------- users and roles
