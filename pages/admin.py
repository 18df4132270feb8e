"""Administration, for global admins: projects, users and roles, data import, and the audit trail.

Thin on purpose: every rule (who may, slugs, timezones, roles, the import contract) lives in
``exporthub.accounts`` and ``exporthub.importer``; this page collects input, calls them and shows
the result. Anyone else gets "Permission denied" and nothing more.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from exporthub.accounts import (
    AccountService,
    ProjectView,
    UserView,
    generate_password,
    is_global_admin,
    role_table,
    timezone_names,
)
from exporthub.errors import ExporthubError
from exporthub.importer import CONTRACT, REPLACEABLE, ImportFile, ImportRefused, file_columns, import_files
from exporthub.sessions import SessionInfo
from exporthub.settings import get_settings
from ui.format import md_escape
from ui.session import current_user, database
from ui.workers_panel import workers_tab

_FLASH = "_admin_flash"  # (kind, message, secret) shown once after a rerun
_CONFIRM = "_admin_confirm"  # (action, slug) waiting for the admin's confirmation
_ALL = "All"
UPLOAD_LIMIT_MB = 200  # Streamlit's own default for one upload


def flash(message: str, *, kind: str = "success", secret: str | None = None) -> None:
    st.session_state[_FLASH] = (kind, message, secret)
    st.rerun()


def show_flash() -> None:
    kind, message, secret = st.session_state.pop(_FLASH, (None, None, None))
    if kind == "success":
        st.success(md_escape(message), icon=":material/check_circle:")
    elif kind:
        st.error(md_escape(message))
    if secret:
        st.code(secret, language=None)
        st.caption('Shown once: pass it on privately. "Set a temporary password" makes a new one.')


def attempt(action, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call a domain action; show a refusal in plain words and return None."""
    try:
        return action(*args, **kwargs)
    except ExporthubError as exc:
        st.error(md_escape(exc.message))
        return None


# ---------------------------------------------------------------------- projects


def projects_tab(accounts: AccountService, admin: str, projects: list[ProjectView]) -> None:
    st.dataframe(
        [
            {
                "Slug": p.slug,
                "Name": p.name,
                "Timezone": p.timezone,
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
                "Project roles": ", ".join(f"{slug}: {role}" for slug, role in u.roles.items()),
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
                format_func=lambda r: f"{r} ({', '.join(role_table()[r])})",
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
    with st.form("add_user"):
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
            "Hourly rate", min_value=0.0, value=0.0, step=0.5, key="new_user_rate",
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
                flash(f"User {created.username} added{note}", secret=password)


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
    if end.button(f"End sessions ({count})", key="end_sessions", icon=":material/logout:", disabled=not count):
        ended = attempt(accounts.end_sessions, admin, who)
        if ended is not None:
            flash(f"Ended {ended} session{'' if ended == 1 else 's'} of {who}; their open tabs show the login page.")
    with st.form("set_rate"):
        rate = st.number_input(
            f"Hourly rate of {who}", min_value=0.0, value=float(user.hourly_rate), step=0.5, key=f"account_rate_{who}"
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


def import_tab(admin: str, projects: list[ProjectView]) -> None:
    slugs = [p.slug for p in projects if p.status != "published"]
    if not slugs:
        st.caption("Create a project first.")
        return
    left, right = st.columns(2, gap="large")
    with left:
        slug = st.selectbox("Project", slugs, key="import_project")
        table = st.selectbox(
            "Table",
            list(CONTRACT),
            key="import_table",
            format_func=lambda t: t.replace("_", " ").capitalize(),
        )
        files = st.file_uploader(
            "CSV or Parquet files",
            type=["csv", "parquet"],
            accept_multiple_files=True,
            key="import_files",
            # An upload is held in the web process's memory: never more than the import limit allows.
            max_upload_size=max(1, min(UPLOAD_LIMIT_MB, get_settings().import_max_file_bytes // 2**20)),
        )
        replace = st.checkbox(
            f"Replace all {table.replace('_', ' ')}",
            key="import_replace",
            disabled=table not in REPLACEABLE,
            help="Only zones and costs can be replaced whole; the rest is appended",
        )
        skip = st.checkbox(
            "Skip rows that were imported already",
            key="import_skip",
            help="Without it, an import with duplicates is refused",
        )
        go = st.button(
            "Import", type="primary", key="import_go", disabled=not files, icon=":material/upload:"
        )
    with right:
        st.markdown(f"**Columns of a {table.replace('_', ' ')} file**")
        st.code(",".join(file_columns(table)), language=None, wrap_lines=True)
        st.caption(
            "Times in ISO 8601 with an offset (2026-11-02T08:15:00+01:00), booleans true or false, an "
            "empty cell is null. `user` is a username (or give `user_id`). Scans may leave out "
            "`scan_id` (ids are assigned); `deleted` may be left out (false)."
        )
    if go and files:
        uploads = [ImportFile(name=f.name, data=f.getvalue()) for f in files]
        try:
            report = import_files(
                database(),
                get_settings(),
                admin,
                slug,
                table,
                uploads,
                replace=replace and table in REPLACEABLE,
                skip_duplicates=skip,
            )
        except ImportRefused as exc:
            st.error(f"Import refused, nothing was changed. {len(exc.problems)} problem(s) found:")
            st.dataframe(
                [
                    {"File": p.file or "", "Row": p.row, "Column": p.column or "", "Problem": p.message}
                    for p in exc.problems
                ],
                hide_index=True,
                width="stretch",
                column_config={"Problem": st.column_config.TextColumn(width="large")},
            )
        except ExporthubError as exc:
            st.error(md_escape(exc.message))
        else:
            st.success(md_escape(report.summary().capitalize()), icon=":material/check_circle:")
            st.dataframe(
                [{"File": name, "Rows": rows} for name, rows in report.rows_per_file.items()], hide_index=True
            )


# ---------------------------------------------------------------------- audit trail


def audit_tab(accounts: AccountService, admin: str) -> None:
    facets = accounts.audit_facets(admin)
    c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 2, 2])
    who = c1.selectbox("User", [_ALL, *facets["actors"]], key="audit_user")
    action = c2.selectbox("Action", [_ALL, *facets["actions"]], key="audit_action")
    project = c3.selectbox("Project", [_ALL, *facets["projects"]], key="audit_project")
    today = datetime.now(UTC).date()
    since: date = c4.date_input("From (UTC)", value=today - timedelta(days=30), key="audit_from")
    until: date = c5.date_input("To (UTC)", value=today, key="audit_to")
    events = accounts.audit_trail(
        admin,
        user=None if who == _ALL else who,
        action=None if action == _ALL else action,
        project=None if project == _ALL else project,
        since=datetime.combine(since, time.min, UTC),
        until=datetime.combine(until + timedelta(days=1), time.min, UTC),
        limit=1000,
    )
    count = f"{len(events):,} event{'' if len(events) == 1 else 's'}"
    st.caption(
        f"{count}, newest first" + (" (only the newest 1,000 are shown)" if len(events) == 1000 else "")
    )
    st.dataframe(
        [
            {
                "Time (UTC)": e.time.strftime("%Y-%m-%d %H:%M:%S"),
                "User": e.actor or "system",
                "Action": e.action,
                "Project": e.project or "",
                "Target": e.target or "",
                "Outcome": e.outcome,
                "Detail": e.detail or "",
            }
            for e in events
        ],
        hide_index=True,
        width="stretch",
    )


# ---------------------------------------------------------------------- the page

admin = current_user()
if not is_global_admin(database(), admin):
    st.error("Permission denied")
    st.stop()
assert admin is not None
accounts = AccountService(database())

st.title("Administration")
show_flash()
projects = accounts.list_projects(admin)
users = accounts.list_users(admin)
# Keyed, stateful tabs: after an action reruns the page the admin stays on the tab they were using.
tab_projects, tab_users, tab_import, tab_audit, tab_workers = st.tabs(
    ["Projects", "Users & roles", "Import data", "Audit trail", "Workers"], key="_admin_tab", on_change="rerun"
)
with tab_projects:
    projects_tab(accounts, admin, projects)
with tab_users:
    users_tab(accounts, admin, users, projects)
with tab_import:
    import_tab(admin, projects)
with tab_audit:
    audit_tab(accounts, admin)
with tab_workers:
    workers_tab(admin)
