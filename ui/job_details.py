"""The job details page: status and timings, variables, files, child jobs, the error, and the log."""

from __future__ import annotations

import re

import streamlit as st

from exporthub.errors import ExporthubError
from exporthub.jobs import RETRY_OF
from exporthub.lake.snapshot import snapshot_label
from exporthub.states import ACTIVE_STATUSES, JobStatus
from exporthub.views import JobView
from ui import file_links, forms, hub, jobs_view, session
from ui import format as fmt
from ui.format import md_escape
from ui.session import PageContext, page_context

JOB_PAGE = "pages/job.py"
_RETRY = re.compile(re.escape(RETRY_OF) + r"(\d+)")
_WORKER = re.compile(r"^Started on \S+")
RECENT = 50


def requested_job_id() -> int | None:
    """The ``?job=<id>`` of the URL, if it is a number."""
    raw = st.query_params.get("job")
    return int(raw) if raw and raw.isdigit() else None


def pick_job(ctx: PageContext) -> int | None:
    """The job to show: from the URL, else chosen from the project's recent jobs."""
    job_id = requested_job_id()
    if job_id is not None:
        return job_id
    st.title("Job Details")
    recent = ctx.service.list(ctx.user.username, ctx.project.slug, limit=RECENT)
    if not recent:
        st.info("This project has no jobs yet.")
        return None
    names = hub.titles(ctx)
    chosen = st.selectbox(
        "Job",
        [j.id for j in recent],
        format_func=lambda i: _job_label(next(j for j in recent if j.id == i), names, ctx.project.timezone),
    )
    return int(chosen)


def _job_label(job: JobView, names: dict[str, str], timezone: str) -> str:
    return (
        f"#{job.id} · {names.get(job.export_type, job.export_type)} · {jobs_view.status_label(job)} · "
        f"{fmt.local_time(job.created_at, timezone)}"
    )


def show(ctx: PageContext, job_id: int) -> None:
    """The details of one job; refreshes itself while the job is active."""
    try:
        job = ctx.service.get(ctx.user.username, job_id)
    except ExporthubError as exc:
        st.title("Job Details")
        st.error(md_escape(exc.message))
        st.page_link("pages/exports.py", label="Back to Reports & Exports", icon=":material/arrow_back:")
        return
    if job.project != ctx.project.slug:
        st.info(f"Job #{job.id} belongs to another project ({md_escape(job.project)}).")
    active = job.status in ACTIVE_STATUSES
    st.fragment(_body, run_every=hub.REFRESH_SECONDS if active else None)(job_id)


def _body(job_id: int) -> None:
    if not session.still_active():
        st.rerun()  # the whole app then shows the login form
    ctx = page_context()
    try:
        job = ctx.service.get(ctx.user.username, job_id)
    except ExporthubError as exc:  # removed meanwhile
        st.error(md_escape(exc.message))
        return
    jobs_view.show_flash()
    names = hub.titles(ctx)
    tz = ctx.project.timezone
    st.page_link("pages/exports.py", label="Reports & Exports", icon=":material/arrow_back:")
    st.title(f"{md_escape(names.get(job.export_type, job.export_type))} · job #{job.id}")
    st.markdown(jobs_view.status_badge(job))
    if job.status is JobStatus.RUNNING:
        st.progress(max(0, min(100, job.progress)) / 100)
    _timings(job, tz)
    if job.error:
        st.error(f"**Error:** {md_escape(_for(job.error, admin=ctx.user.is_admin))}", icon=":material/error:")
    for warning in job.warnings:
        st.warning(md_escape(warning), icon=":material/warning:")
    jobs_view.render_actions(job, hub.list_context(ctx), key_prefix="details", with_details=False)
    left, right = st.columns(2)
    with left:
        st.subheader("Variables")
        _variables(ctx, job)
    with right:
        st.subheader("Files")
        block = file_links.files_html(ctx.settings, job, ctx.user.id, show_downloads=True)
        if block:
            st.markdown(block, unsafe_allow_html=True)
        else:
            st.caption(
                "No files." if job.status not in ACTIVE_STATUSES else "Files appear when the job completes."
            )
        if job.lake_snapshot:
            st.caption(f"Data cut-off: lake snapshot {snapshot_label(job.lake_snapshot)}.")
        if job.export_session_count or job.export_sessions_reset:
            reset = " (reset)" if job.export_sessions_reset else ""
            st.caption(f"Export sessions recorded for {job.export_session_count} zones{reset}.")
    if job.children:
        st.subheader("Child jobs")
        for child in job.children:
            st.page_link(JOB_PAGE, label=md_escape(_job_label(child, names, tz)), query_params={"job": str(child.id)})
    retried = retried_job(job)
    if retried is not None:
        st.page_link(
            JOB_PAGE, label=f"Retry of job #{retried}", icon=":material/replay:", query_params={"job": str(retried)}
        )
    if job.parent_id is not None:
        st.page_link(
            JOB_PAGE,
            label=f"Part of job #{job.parent_id}",
            icon=":material/account_tree:",
            query_params={"job": str(job.parent_id)},
        )
    st.subheader("Log")
    _log(job, tz, admin=ctx.user.is_admin)


def _timings(job: JobView, tz: str) -> None:
    cells = [
        ("Requested by", md_escape(job.user_display or job.user)),
        ("Created", fmt.local_time(job.created_at, tz)),
        ("Started", fmt.local_time(job.started_at, tz)),
        ("Finished", fmt.local_time(job.finished_at, tz)),
        ("Duration", fmt.duration(job.started_at, job.finished_at)),
    ]
    if job.run_at is not None:
        cells.insert(2, ("Scheduled for", fmt.local_time(job.run_at, tz)))
    with st.container(horizontal=True, gap="large", key="job-timings"):
        for label, value in cells:
            with st.container(width="content"):
                st.caption(label)
                st.markdown(f"**{value}**")


def _variables(ctx: PageContext, job: JobView) -> None:
    if not job.variables:
        st.caption("This export type has no variables.")
        return
    definition = ctx.service.config.get(job.export_type)
    rows = []
    for key, value in job.variables.items():
        var = definition.variable(key) if definition is not None else None
        if definition is not None and var is not None and not forms.applies(var, job.variables, definition):
            continue  # e.g. From/To of a preset range, the CSV dialect of an Excel file
        rows.append({"Variable": var.title if var else key, "Value": fmt.variable_value(key, value)})
    st.dataframe(rows, hide_index=True, width="stretch")


def _for(text: str, *, admin: bool) -> str:
    """An error as this viewer may see it: its plain first line, and the technical detail for admins."""
    return text if admin else text.strip().split("\n", 1)[0]


def retried_job(job: JobView) -> int | None:
    """The job this one retried (its log says so), if any."""
    for entry in job.log:
        match = _RETRY.fullmatch(entry.message)
        if match:
            return int(match.group(1))
    return None


def _shown_log_message(message: str) -> str:
    # "Started on host:pid:nonce (attempt 1)": the worker's id is for admins and the server log.
    return _WORKER.sub("Started", message)


def _log(job: JobView, tz: str, *, admin: bool) -> None:
    if not job.log:
        st.caption("Nothing logged yet.")
        return
    icons = {"info": "Info", "warning": "Warning", "error": "Error"}
    frame = [
        {
            "Time": fmt.local_time(e.time, tz),
            "Level": icons.get(str(e.level), str(e.level)),
            "Message": _for(_shown_log_message(e.message), admin=admin),
        }
        for e in job.log
    ]
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={"Message": st.column_config.TextColumn(width="large")},
    )
