"""The administration's Import data and Audit trail tabs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from exporthub.accounts import AccountService, ProjectView
from exporthub.errors import ExporthubError
from exporthub.importer import CONTRACT, REPLACEABLE, ImportFile, ImportRefused, file_columns, import_files
from exporthub.settings import get_settings
from ui.format import md_escape
from ui.session import database

_ALL = "All"
UPLOAD_LIMIT_MB = 200  # Streamlit's own default for one upload


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
