"""How a job looks in the hub and on the details page: status labels, actions, file links, rows.

Status labels (icon and word) are the same everywhere:

schedule Waiting · inbox Queued · hourglass_top Running (45%) · check_circle Completed · warning Completed
with warnings · error Failed · block Cancelled (Streamlit's Material icons, so no emoji font is needed)

Each action button appears only where the permission and the job's state allow it; the domain
checks again and refuses anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import streamlit as st

from exporthub.errors import ExporthubError
from exporthub.jobs import JobService
from exporthub.permissions import Permission
from exporthub.settings import Settings
from exporthub.states import CANCELLABLE_STATUSES, REMOVABLE_STATUSES, RETRYABLE_STATUSES, JobStatus
from exporthub.views import JobView
from ui import format as fmt
from ui.file_links import download_path, file_link_html, files_html
from ui.format import md_escape

_STATUS: dict[JobStatus, tuple[str, str, str]] = {
    # status: (icon, label, badge colour); Material icons, drawn by Streamlit's own font (no emoji font)
    JobStatus.WAITING: (":material/schedule:", "Waiting", "gray"),
    JobStatus.READY: (":material/inbox:", "Queued", "violet"),
    JobStatus.RUNNING: (":material/hourglass_top:", "Running", "blue"),
    JobStatus.COMPLETED: (":material/check_circle:", "Completed", "green"),
    JobStatus.FAILED: (":material/error:", "Failed", "red"),
    JobStatus.CANCELLED: (":material/block:", "Cancelled", "gray"),
}
WARNINGS_LABEL = (":material/warning:", "Completed with warnings", "orange")

# The status filter of the job list: label -> job states.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "All statuses": (),
    "Waiting": (JobStatus.WAITING,),
    "Queued": (JobStatus.READY,),
    "Running": (JobStatus.RUNNING,),
    "Completed": (JobStatus.COMPLETED,),
    "Failed": (JobStatus.FAILED,),
    "Cancelled": (JobStatus.CANCELLED,),
}


def status_parts(job: JobView) -> tuple[str, str, str]:
    """(icon, label, colour) for a job, e.g. ``(":material/hourglass_top:", "Running (45%)", "blue")``."""
    if job.status is JobStatus.COMPLETED and job.has_warnings:
        return WARNINGS_LABEL
    icon, label, colour = _STATUS[job.status]
    if job.status in CANCELLABLE_STATUSES and job.cancel_requested:
        return ":material/hourglass_bottom:", "Cancelling…", "gray"  # until the worker has stopped it; then "Cancelled"
    if job.status is JobStatus.RUNNING:
        label = f"Running ({job.progress}%)"
    return icon, label, colour


def status_label(job: JobView) -> str:
    """``"Running (45%)"``, ``"Completed"`` … (plain text, for places that draw no icons)."""
    return status_parts(job)[1]


def status_badge(job: JobView) -> str:
    """The status as a coloured Markdown badge."""
    icon, label, colour = status_parts(job)
    return f":{colour}-badge[{icon} {label}]"


# ---------------------------------------------------------------------------- actions


class Action(StrEnum):
    CANCEL = "Cancel"
    REMOVE = "Remove"
    RESET_EXPORT_SESSIONS = "Reset Sessions"
    RETRY = "Retry"


def allowed_actions(job: JobView, permissions: frozenset[Permission]) -> list[Action]:
    """The action buttons to show for ``job`` to a user holding ``permissions`` (Details is always there)."""
    actions: list[Action] = []
    if Permission.CANCEL in permissions and job.status in CANCELLABLE_STATUSES and not job.cancel_requested:
        actions.append(Action.CANCEL)
    if Permission.START in permissions and job.status in RETRYABLE_STATUSES and job.parent_id is None:
        actions.append(Action.RETRY)
    if (
        Permission.RESET_EXPORT_SESSIONS in permissions
        and job.export_session_count > 0
        and not job.export_sessions_reset
    ):
        actions.append(Action.RESET_EXPORT_SESSIONS)
    if Permission.REMOVE in permissions and job.status in REMOVABLE_STATUSES and job.parent_id is None:
        actions.append(Action.REMOVE)
    return actions


_DONE = {
    Action.CANCEL: "Cancelled job #{id}",
    Action.REMOVE: "Removed job #{id} and its files",
    Action.RESET_EXPORT_SESSIONS: "Reset the export sessions of job #{id}",
    Action.RETRY: "Started job #{new} again as a retry of #{id}",
}
_CALLS = {
    Action.CANCEL: "cancel",
    Action.REMOVE: "remove",
    Action.RESET_EXPORT_SESSIONS: "reset_export_sessions",
    Action.RETRY: "retry",
}
FLASH_KEY = "_flash"


def perform(service: JobService, actor: str, action: Action, job_id: int) -> tuple[bool, str]:
    """Run an action through the domain: ``(True, what happened)`` or ``(False, the refusal)``."""
    try:
        result = getattr(service, _CALLS[action])(actor, job_id)
    except ExporthubError as exc:
        return False, exc.message
    if action is Action.CANCEL and getattr(result, "status", None) is not JobStatus.CANCELLED:
        return True, f"Cancelling job #{job_id}…"  # a running job: the worker has yet to stop it
    return True, _DONE[action].format(id=job_id, new=getattr(result, "id", job_id))


def _on_action(service: JobService, actor: str, action: Action, job_id: int) -> None:
    from ui import session

    session.touch()
    ok, message = perform(service, actor, action, job_id)
    st.session_state[FLASH_KEY] = (":material/check_circle:" if ok else ":material/block:", message)
    st.session_state.pop(_confirm_key(job_id), None)


def show_flash() -> None:
    """Show (once) the result of the last action as a toast."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        icon, message = flash
        st.toast(md_escape(message), icon=icon)


def _confirm_key(job_id: int) -> str:
    return f"_confirm_remove_{job_id}"


# ---------------------------------------------------------------------------- one job


@dataclass(frozen=True)
class ListContext:
    """What every job row needs to know about the viewer and the project."""

    service: JobService
    settings: Settings
    actor: str
    user_id: int
    project: str
    permissions: frozenset[Permission]
    timezone: str
    titles: Mapping[str, str]  # export type -> title
    details_page: str | None = "pages/job.py"


def when_text(job: JobView, timezone: str) -> str:
    """Started/finished in project-local time, or when a waiting job is due."""
    if job.started_at is None:
        if job.run_at is not None and job.status is JobStatus.WAITING:
            return f"Scheduled for {fmt.local_time(job.run_at, timezone)}"
        return f"Created {fmt.local_time(job.created_at, timezone)}"
    text = f"Started {fmt.local_time(job.started_at, timezone)}"
    if job.finished_at is not None:
        text += f" · Finished {fmt.local_time(job.finished_at, timezone, with_date=False)}"
        text += f" ({fmt.duration(job.started_at, job.finished_at)})"
    return text


def render_actions(job: JobView, ctx: ListContext, *, key_prefix: str, with_details: bool = True) -> None:
    """The Details link and the allowed action buttons, in one wrapping row.

    Every action has its own place, filled with its button or left empty: Streamlit keeps a block's old
    children when it redraws it, so a job's row must overwrite each one (no "Remove" from before stays
    under "Confirm remove", no other job's button stays in a row the list shifted)."""
    actions = allowed_actions(job, ctx.permissions)
    confirm = st.session_state.get(_confirm_key(job.id))
    with st.container(horizontal=True, gap="small", key=f"{key_prefix}-actions-{job.id}"):
        if with_details and ctx.details_page:
            st.page_link(
                ctx.details_page, label="Details", icon=":material/info:", query_params={"job": str(job.id)}
            )
        asking = next((a for a in actions if a in CONFIRM and confirm == a.value), None)
        for action in (Action.CANCEL, Action.RETRY, Action.RESET_EXPORT_SESSIONS, Action.REMOVE):
            key = f"{key_prefix}-{action.name.lower()}-{job.id}"
            slot = st.empty()  # one place per action: its button, its confirming button, or nothing
            if action not in actions:
                continue
            if action is asking:
                slot.button(
                    CONFIRM[action][0],
                    key=key + "-confirm",
                    type="primary",  # red: the theme's danger style for confirmations (ui/style.py)
                    icon=_ICONS[action],
                    on_click=_on_action,
                    args=(ctx.service, ctx.actor, action, job.id),
                )
                continue
            slot.button(
                action.value,
                key=key,
                icon=_ICONS[action],
                on_click=_ask_confirm if action in CONFIRM else _on_action,
                args=(job.id, action) if action in CONFIRM else (ctx.service, ctx.actor, action, job.id),
            )
        # Then one place for "Keep" and one for what the confirmed action does, filled only while asking.
        keep, said = st.empty(), st.empty()
        if asking is not None:
            keep.button("Keep", key=f"{key_prefix}-{asking.name.lower()}-{job.id}-keep",
                        on_click=st.session_state.pop, args=(_confirm_key(job.id), None))
            if CONFIRM[asking][1]:
                said.caption(CONFIRM[asking][1])


_RESET_SAYS = (
    'Forgets which scans this job exported, so the next "only new since last export" export of these '
    "zones includes them again."
)
# Actions that cannot be undone ask first: (the confirming button, what it does in a sentence).
CONFIRM: dict[Action, tuple[str, str | None]] = {
    Action.CANCEL: ("Confirm cancel", "Stops the job; files it has not finished are not kept."),
    Action.RESET_EXPORT_SESSIONS: ("Confirm reset", _RESET_SAYS),
    Action.REMOVE: ("Confirm remove", None),
}
_ICONS = {
    Action.CANCEL: ":material/stop_circle:",
    Action.RETRY: ":material/replay:",
    Action.RESET_EXPORT_SESSIONS: ":material/restart_alt:",
    Action.REMOVE: ":material/delete:",
}


def _ask_confirm(job_id: int, action: Action = Action.REMOVE) -> None:
    st.session_state[_confirm_key(job_id)] = action.value


def render_job_row(job: JobView, ctx: ListContext, *, key_prefix: str = "jobs") -> None:
    """One job of the list: status (and progress), type, user, times, files and actions."""
    with st.container(border=True, key=f"{key_prefix}-job-{job.id}"):
        head, files, actions = st.columns([4, 5, 3], vertical_alignment="center")
        with head:  # each element in its place, drawn or emptied (see render_actions)
            title = ctx.titles.get(job.export_type, job.export_type)
            st.markdown(f"{status_badge(job)} &nbsp; **{md_escape(title)}** · #{job.id}")
            progress = st.empty()
            if job.status is JobStatus.RUNNING:
                progress.progress(max(0, min(100, job.progress)) / 100)
            st.caption(f"{when_text(job, ctx.timezone)} · by {md_escape(job.user_display or job.user)}")
            error = st.empty()
            if job.error and job.status is JobStatus.FAILED:
                error.caption(f":material/error: {md_escape(_first_line(job.error))}")
        with files:
            block, slot = files_html(ctx.settings, job, ctx.user_id), st.empty()
            if block:
                slot.markdown(block, unsafe_allow_html=True)
            elif job.status is JobStatus.COMPLETED:
                slot.caption("No files")
        with actions:
            render_actions(job, ctx, key_prefix=key_prefix)


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---------------------------------------------------------------------------- the list


PAGE_SIZE = 10


def render_job_list(ctx: ListContext, *, key_prefix: str = "jobs", page_size: int = PAGE_SIZE) -> None:
    """The project's jobs with filters by type and status, newest first, a page at a time."""
    filters = st.columns([1, 1, 2], vertical_alignment="bottom")
    type_options = ["All types", *sorted(ctx.titles, key=lambda t: ctx.titles[t])]
    with filters[0]:
        chosen_type = st.selectbox(
            "Type", type_options, key=f"{key_prefix}-type", format_func=lambda t: ctx.titles.get(t, t)
        )
    with filters[1]:
        chosen_status = st.selectbox("Status", list(STATUS_FILTERS), key=f"{key_prefix}-status")
    types = None if chosen_type == "All types" else [chosen_type]
    statuses = [str(s) for s in STATUS_FILTERS[chosen_status]] or None
    total = ctx.service.count(ctx.actor, ctx.project, types=types, statuses=statuses, top_level_only=True)
    pages = max(1, -(-total // page_size))
    page_key = f"{key_prefix}-page"
    filter_key = f"{key_prefix}-filter"
    if st.session_state.get(filter_key) != (chosen_type, chosen_status):
        st.session_state[filter_key] = (chosen_type, chosen_status)
        st.session_state[page_key] = 1  # a new filter starts on the first page
    page = min(max(1, int(st.session_state.get(page_key, 1))), pages)
    jobs = ctx.service.list(
        ctx.actor,
        ctx.project,
        types=types,
        statuses=statuses,
        limit=page_size,
        offset=(page - 1) * page_size,
        top_level_only=True,
    )
    if not jobs:
        st.info(
            "No jobs yet. Start one with **Generate** under New export below."
            if total == 0 and not types and not statuses
            else "No jobs match these filters."
        )
    for job in jobs:
        render_job_row(job, ctx, key_prefix=key_prefix)
    if total > page_size:
        _pager(page, pages, total, page_size, page_key)


def _pager(page: int, pages: int, total: int, page_size: int, page_key: str) -> None:
    first, last = (page - 1) * page_size + 1, min(total, page * page_size)
    with st.container(horizontal=True, vertical_alignment="center", key=f"{page_key}-pager"):
        st.button(
            "Newer",
            key=f"{page_key}-prev",
            icon=":material/chevron_left:",
            disabled=page <= 1,
            on_click=_set_page,
            args=(page_key, page - 1),
        )
        st.caption(f"Jobs {first}–{last} of {total} · page {page} of {pages}")
        st.button(
            "Older",
            key=f"{page_key}-next",
            icon=":material/chevron_right:",
            icon_position="right",
            disabled=page >= pages,
            on_click=_set_page,
            args=(page_key, page + 1),
        )


def _set_page(page_key: str, page: int) -> None:
    st.session_state[page_key] = page


__all__ = [
    "FLASH_KEY",
    "STATUS_FILTERS",
    "Action",
    "ListContext",
    "allowed_actions",
    "download_path",
    "file_link_html",
    "files_html",
    "md_escape",
    "perform",
    "render_actions",
    "render_job_list",
    "render_job_row",
    "show_flash",
    "status_badge",
    "status_label",
    "status_parts",
    "when_text",
]
