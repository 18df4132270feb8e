"""The administration's Users & roles tab: accounts, roles, temporary passwords and live sessions."""

from __future__ import annotations

import streamlit as st

from exporthub.accounts import AccountService, ProjectView, UserView, generate_password, role_table
from exporthub.sessions import SessionInfo
from exporthub.settings import get_settings
from ui.admin_common import attempt, flash, show_flash

ADD_USER = "add_user"
# Roles named for the people who hold them, with what they may do in plain words.
ROLE_LABELS = {
    "viewer": "Viewer: sees jobs and downloads files",
    "analyst": "Analyst: also starts and cancels exports",
    "manager": "Manager: also removes jobs and resets export sessions",
}


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, f"{role} ({', '.join(role_table().get(role, ()))})")


def users_tab(
    accounts: AccountService, admin: str, users: list[UserView], projects: list[ProjectView]
) -> None:
    live = accounts.live_sessions(admin, get_settings())
    sessions_of = {u.username: sum(s.username == u.username for s in live) for u in users}
    st.dataframe(
        [
            {
                "Username": u.username,
                "Name": u.display_name,
                "Email": u.email or "",
                "Admin": u.is_admin,
                "Active": u.active and not u.deleted,
                "Can log in": u.can_log_in,
                "Hourly rate": u.hourly_rate,
                "Live sessions": sessions_of[u.username],
                "Project roles": ", ".join(f"{slug}: {role.capitalize()}" for slug, role in u.roles.items()),
            }
            for u in users
        ],
        hide_index=True,
        width="stretch",
        column_config={"Project roles": st.column_config.TextColumn(width="large")},
    )
    names = [u.username for u in users if not u.deleted]
    slugs = [p.slug for p in projects]
    roles = list(role_table())
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Grant or revoke a role")
        with st.form("grant_role"):
            who = st.selectbox("User", names, key="grant_user")
            where = st.selectbox("Project", slugs, key="grant_project")
            role = st.selectbox(
                "Role",
                roles,
                key="grant_role_name",
                format_func=role_label,
            )
            grant, revoke = st.columns(2)
            if (grant.form_submit_button("Grant role", type="primary") and who and where
                    and attempt(accounts.set_membership, admin, who, where, role) is not None):
                flash(f"{who} is now {role} on {where}.")
            if (revoke.form_submit_button("Revoke role") and who and where
                    and attempt(accounts.remove_membership, admin, who, where) is not None):
                flash(f"{who} has no role on {where} any more.")
        st.subheader("Account")
        account_actions(accounts, admin, users, sessions_of)
    with right:
        st.subheader("Add a user")
        add_user(accounts, admin)
    st.subheader("Live sessions")
    live_sessions_table(live)


def add_user(accounts: AccountService, admin: str) -> None:
    # Cleared on submit; the new password is shown right under the form, once.
    with st.form("add_user", clear_on_submit=True):
        username = st.text_input("Username", key="new_user_name")
        display = st.text_input("Display name", key="new_user_display")
        email = st.text_input("Email", key="new_user_email")
        can_log_in = st.checkbox(
            "Can log in (gets a temporary password)",
            value=True,
            key="new_user_login",
            help="Field staff who only scan never log in",
        )
        is_admin = st.checkbox("Global admin (every permission on every project)", key="new_user_admin")
        rate = st.number_input(
            "Hourly rate",
            min_value=0.0,
            value=0.0,
            step=0.5,
            key="new_user_rate",
            help="Cost of one hour of this person's work; the users export's labour figures use it",
        )
        if st.form_submit_button("Add user", type="primary"):
            password = generate_password() if can_log_in or is_admin else None
            created = attempt(
                accounts.create_user,
                admin,
                username.strip(),
                password=password,
                display_name=display or None,
                email=email.strip() or None,
                admin=is_admin,
                hourly_rate=float(rate),
            )
            if created is not None:
                note = " with a temporary password:" if password else " (cannot log in)."
                for key in [k for k in st.session_state if str(k).startswith("new_user_")]:
                    del st.session_state[key]  # the next run draws an empty form
                flash(f"User {created.username} added{note}", secret=password, where=ADD_USER)
    show_flash(ADD_USER)


def account_actions(
    accounts: AccountService, admin: str, users: list[UserView], sessions_of: dict[str, int]
) -> None:
    live = {u.username: u for u in users if not u.deleted}
    if not live:
        return
    who = st.selectbox("User", list(live), key="account_user")
    user = live[who]
    reset, toggle, end = st.columns(3)
    if reset.button("Set a temporary password", key="reset_password", icon=":material/key:"):
        password = generate_password()
        if attempt(accounts.set_password, admin, who, password) is not None:
            flash(f"New temporary password for {who}:", secret=password)
    label = "Deactivate" if user.active else "Activate"
    if (toggle.button(label, key="toggle_active")
            and attempt(accounts.set_active, admin, who, not user.active) is not None):
        flash(f"{who} is now {'active' if not user.active else 'deactivated'}.")
    count = sessions_of.get(who, 0)
    if end.button(
        f"End sessions ({count})", key="end_sessions", icon=":material/logout:", disabled=not count
    ):
        ended = attempt(accounts.end_sessions, admin, who)
        if ended is not None:
            flash(
                f"Ended {ended} session{'' if ended == 1 else 's'} of {who}; their open tabs show the login page."
            )
    with st.form("set_rate"):
        rate = st.number_input(
            f"Hourly rate of {who}",
            min_value=0.0,
            value=float(user.hourly_rate),
            step=0.5,
            key=f"account_rate_{who}",
        )
        if (st.form_submit_button("Save rate")
                and attempt(accounts.set_hourly_rate, admin, who, float(rate)) is not None):
            flash(f"Hourly rate of {who} is now {rate:g}.")


def live_sessions_table(live: list[SessionInfo]) -> None:
    if not live:
        st.caption("Nobody is logged in.")
        return
    st.dataframe(
        [
            {
                "User": s.username,
                "Started (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M"),
                "Last active (UTC)": s.last_seen_at.strftime("%Y-%m-%d %H:%M"),
                "Login": s.source,
                "Browser": s.user_agent or "",
                "Session": s.fingerprint,
            }
            for s in live
        ],
        hide_index=True,
        width="stretch",
        key="live_sessions",
    )


# ---------------------------------------------------------------------- import
