"""The Reports & Exports hub: header, export cards by group, the export dialog ("Export scans"), and
the live part of the page (cards' latest status and the job list) that refreshes itself.

The dialog is opened from the full script run, never from inside the refreshing fragment: a
fragment rerun would otherwise close it every few seconds. "Generate" (inside the fragment) only
notes which type to open and reruns the app.
"""

from __future__ import annotations

import html
from collections.abc import Container, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

import streamlit as st

from exporthub.errors import ExporthubError
from exporthub.export_config import ExportDefinition
from exporthub.permissions import Permission
from exporthub.states import ACTIVE_STATUSES, CLOSED_PROJECT_STATUSES, JobStatus
from exporthub.views import JobView
from ui import export_lookups, file_links, forms, jobs_view
from ui.format import local_time, md_escape
from ui.session import PageContext, page_context

GROUP_ORDER = ("System", "Data Exports", "Financial Reports")
PUBLISH_TYPE = "publish"
REFRESH_SECONDS = 2.0
OPEN_EXPORT_KEY = "_open_export"
_SHOWN_PROJECT = "_hub_shown_project"  # (slug, status) the header was drawn with
WATCHING_KEY = "_hub_watching"  # job id -> type of this user's jobs seen running (for the toast)

# Each type's icon (Streamlit's Material icons: no emoji font needed).
TYPE_ICONS: dict[str, str] = {
    "backup": ":material/backup:",
    "publish": ":material/publish:",
    "scans": ":material/barcode_scanner:",
    "users": ":material/group:",
    "zones": ":material/grid_view:",
    "sessions": ":material/timer:",
    "cost": ":material/payments:",
    "statistics": ":material/bar_chart:",
}
DEFAULT_ICON = ":material/description:"

# One line under each card's title, for the built-in types (a deployment's own types show none).
BLURBS: dict[str, str] = {
    "backup": "Zip of the project's lake and metadata with a checksummed manifest.",
    "publish": "Generates the configured reports and publishes their files.",
    "scans": "Every scan with its zone, user and session.",
    "users": "Accounts with their scans, sessions, hours and activity.",
    "zones": "Zone configuration with scans, sessions and completion.",
    "sessions": "Zone sessions with duration and scans per hour.",
    "cost": "Costs by category, user, zone and day, with totals.",
    "statistics": "Performance and efficiency metrics with charts.",
}


# ---------------------------------------------------------------------------- structure


def grouped_types(
    config: Mapping[str, ExportDefinition], registered: Container[str] | None = None
) -> dict[str, list[ExportDefinition]]:
    """Visible export types by group, the three standard groups first, in config order within a group.

    Hidden types are skipped, and so is the publish type (it has its own button in the header).
    """
    groups: dict[str, list[ExportDefinition]] = {g: [] for g in GROUP_ORDER}
    for definition in config.values():
        if definition.is_hidden or definition.type == PUBLISH_TYPE:
            continue
        if registered is not None and definition.type not in registered:
            continue
        groups.setdefault(definition.group, []).append(definition)
    return {group: items for group, items in groups.items() if items}


def can_publish(ctx: PageContext) -> bool:
    """The "Publish Project Files" button is for those who may start exports, when publish exists."""
    return (
        ctx.can(Permission.START)
        and PUBLISH_TYPE in ctx.service.config
        and PUBLISH_TYPE in ctx.service.registry
    )


def titles(ctx: PageContext) -> dict[str, str]:
    return {t: d.title for t, d in ctx.service.config.items()}


def list_context(ctx: PageContext) -> jobs_view.ListContext:
    return jobs_view.ListContext(
        service=ctx.service,
        settings=ctx.settings,
        actor=ctx.user.username,
        user_id=ctx.user.id,
        project=ctx.project.slug,
        permissions=ctx.permissions,
        timezone=ctx.project.timezone,
        titles=titles(ctx),
    )


# ---------------------------------------------------------------------------- header


def header(ctx: PageContext) -> None:
    """Page title, project line and, for those allowed, "Project Management" with the publish button."""
    main, side = st.columns([3, 1], vertical_alignment="bottom")
    with main:
        st.title("Reports & Exports")
        status = ctx.project.status.capitalize()
        st.session_state[_SHOWN_PROJECT] = (ctx.project.slug, ctx.project.status)
        st.caption(f"{md_escape(ctx.project.name)} · {status} · times in {md_escape(ctx.project.timezone)}")
    if can_publish(ctx):
        with side, st.container(key="project-management"):
            st.markdown("**Project Management**")
            if st.button("Publish Project Files", key="publish", icon=":material/publish:", width="stretch"):
                export_dialog(PUBLISH_TYPE)


def open_requested_dialog() -> None:
    """Open the dialog a "Generate" button asked for on the previous (fragment) run."""
    export_type = st.session_state.pop(OPEN_EXPORT_KEY, None)
    if export_type:
        export_dialog(export_type)


# ---------------------------------------------------------------------------- live part


def live_section(ctx: PageContext) -> None:
    """Cards and job list, refreshed every :data:`REFRESH_SECONDS` as one fragment."""
    st.fragment(_live, run_every=REFRESH_SECONDS)()


def _live() -> None:
    from ui import session

    if not session.still_active():
        st.rerun()  # the whole app then shows the login form
    session.housekeeping()  # this refresh may be the only thing running while a worker is down
    ctx = page_context()
    if st.session_state.get(_SHOWN_PROJECT, (ctx.project.slug, ctx.project.status)) != (
        ctx.project.slug,
        ctx.project.status,
    ):
        st.rerun()  # a job changed the project (publish): the header outside this fragment must show it
    jobs_view.show_flash()
    latest = ctx.service.latest_by_type(ctx.user.username, ctx.project.slug)
    notify_finished(ctx, latest)
    # The jobs and their downloads first: they are why people come. Then the catalogue to start one.
    st.subheader("Jobs", anchor="jobs")
    jobs_view.render_job_list(list_context(ctx))
    if ctx.can(Permission.START):
        st.subheader("New export", anchor="new-export")
        cards(ctx, latest)
    elif any(latest_file(ctx, job) for job in latest.values()):
        # Those who cannot start exports see only the types with a file to download.
        st.subheader("Latest files", anchor="latest-files")
        cards(ctx, {t: job for t, job in latest.items() if latest_file(ctx, job)}, only_latest=True)


def notify_finished(ctx: PageContext, latest: Mapping[str, JobView]) -> None:
    """A toast, with the download link, when a job this user started (and saw running) has finished."""
    watching: dict[int, str] = st.session_state.setdefault(WATCHING_KEY, {})
    for job in latest.values():
        mine = job.user == ctx.user.username
        if mine and job.status in ACTIVE_STATUSES:
            watching[job.id] = job.export_type
        elif job.id in watching:
            del watching[job.id]
            if job.status is JobStatus.CANCELLED:
                continue  # the user's own Cancel already said so
            title = md_escape(titles(ctx).get(job.export_type, job.export_type))
            files = [f for f in job.files if ".about." not in f.name]
            href = file_links.download_path(ctx.settings, files[0].id, ctx.user.id) if files else None
            link = f" [Download {md_escape(files[0].name)}]({href})" if href else ""
            icon = ":material/check_circle:" if job.status is JobStatus.COMPLETED else ":material/error:"
            st.toast(f"{title} #{job.id}: {jobs_view.status_parts(job)[1].lower()}.{link}", icon=icon)


def start_refusal(ctx: PageContext, definition: ExportDefinition, job: JobView | None) -> str | None:
    """Why "Generate" cannot start this type now (``None`` when it can)."""
    if job is not None and job.status in ACTIVE_STATUSES:
        return f"A {definition.title} job is already running (#{job.id}); another can start when it has finished."
    if not definition.allow_when_project_not_closed and ctx.project.status not in CLOSED_PROJECT_STATUSES:
        return "The project must be closed first; a global admin can close it."
    return None


def cards(ctx: PageContext, latest: Mapping[str, JobView], *, only_latest: bool = False) -> None:
    """One compact card per visible export type (``only_latest``: per type in ``latest``), grouped, with
    the latest job's status, "Generate" and its latest file."""
    groups = grouped_types(ctx.service.config, ctx.service.registry)
    if only_latest:
        groups = {g: [d for d in ds if d.type in latest] for g, ds in groups.items()}
        groups = {g: ds for g, ds in groups.items() if ds}
    if not groups:
        st.info("No export types are configured for this hub.")
    for group, definitions in groups.items():
        st.markdown(f"**{md_escape(group)}**")
        for start in range(0, len(definitions), 4):
            row = definitions[start : start + 4]
            columns = st.columns(4)
            for column, definition in zip(columns, row, strict=False):
                with column:
                    card(ctx, definition, latest.get(definition.type))


def latest_file(ctx: PageContext, job: JobView | None) -> tuple[str, str] | None:
    """(name, link) of the latest completed job's first data file, if it has one."""
    if job is None or job.status is not JobStatus.COMPLETED:
        return None
    files = [f for f in job.files if ".about." not in f.name]
    href = file_links.download_path(ctx.settings, files[0].id, ctx.user.id) if files else None
    return None if href is None else (files[0].name, href)


def card(ctx: PageContext, definition: ExportDefinition, job: JobView | None) -> None:
    with st.container(border=True, key=f"card-{definition.type}"):
        icon = TYPE_ICONS.get(definition.type, DEFAULT_ICON)
        st.markdown(f"##### {icon} {md_escape(definition.title)}")
        if definition.type in BLURBS:
            st.caption(BLURBS[definition.type])
        if job is None:
            st.markdown(":gray-badge[Not run yet]")
        else:
            when = job.finished_at or job.started_at or job.created_at
            moment = local_time(when, ctx.project.timezone)
            if job.status is JobStatus.WAITING and job.run_at is not None:
                moment = f"runs {local_time(job.run_at, ctx.project.timezone)}"  # what a scheduled job waits for
            st.markdown(
                f"{jobs_view.status_badge(job)} &nbsp; "
                f"<span class='eh-muted'>#{job.id} · {moment}</span>",
                unsafe_allow_html=True,
            )
            if job.status is JobStatus.RUNNING:
                st.progress(max(0, min(100, job.progress)) / 100)
        refusal = start_refusal(ctx, definition, job) if ctx.can(Permission.START) else None
        newest = latest_file(ctx, job)
        # Side by side when they fit, wrapped when the card is narrow (never a cut-off "Gen…").
        with st.container(horizontal=True, gap="small"):
            if ctx.can(Permission.START) and st.button(
                "Generate",
                key=f"generate-{definition.type}",
                icon=":material/play_arrow:",
                disabled=refusal is not None,
                help=refusal,
            ):
                st.session_state[OPEN_EXPORT_KEY] = definition.type
                st.rerun()
            if newest is not None:
                st.link_button("Latest", newest[1], icon=":material/download:", help=f"Download {newest[0]}")
        if refusal is not None:
            st.caption(md_escape(refusal))


# ---------------------------------------------------------------------------- the dialog


def dialog_title(definition: ExportDefinition) -> str:
    """What the dialog does, in words: "Export scans", "Publish project", "Back up project"."""
    if definition.type == PUBLISH_TYPE:
        return "Publish project"
    if definition.type == "backup":
        return "Back up project"
    return f"Export {definition.title.lower()}"  # "Export zone sessions", not "Export zone Sessions"


def export_dialog(export_type: str) -> None:
    definition = page_context().service.config.get(export_type)
    title = dialog_title(definition) if definition is not None else "Export"
    st.dialog(title, width="medium")(dialog_body)(export_type)


def dialog_body(export_type: str) -> None:
    """The dialog's content as a plain function (the tests run it without ``st.dialog``)."""
    ctx = page_context()
    try:
        definition = ctx.service.definition(export_type)
    except ExporthubError as exc:
        st.error(md_escape(exc.message))
        return
    tz = ZoneInfo(ctx.project.timezone)
    st.markdown(f"<div class='eh-dialog-title'>{html.escape(definition.title)}</div>", unsafe_allow_html=True)
    st.caption(md_escape(" · ".join(filter(None, (definition.group, ctx.project.name, BLURBS.get(definition.type))))))
    _warn_up_front(ctx, definition)
    prefix = f"export-{export_type}"
    try:
        options = export_lookups.dynamic_options(ctx, export_type)
    except ExporthubError as exc:  # e.g. a damaged data file: a refusal, not a traceback
        st.error(md_escape(exc.message))
        return
    values = forms.variable_form(
        definition,
        dynamic_options=options,
        key_prefix=prefix,
        today=datetime.now(tz).date(),
        option_labels={"reports": titles(ctx)},
    )
    if definition.variables:
        export_lookups.estimate_box(ctx, definition, values)
    schedule = forms.schedule_input(ctx.project.timezone, key_prefix=f"{prefix}-schedule")
    if schedule.error:
        st.warning(md_escape(schedule.error))
    problem = st.empty()
    cancel, generate = st.columns(2)
    with cancel:
        if st.button("Cancel", key=f"{prefix}-cancel", width="stretch"):
            st.rerun()
    with generate:
        clicked = st.button(
            "Generate Export",
            key=f"{prefix}-generate",
            type="primary",
            width="stretch",
            disabled=schedule.error is not None or forms.date_problem(values) is not None,
        )
    if clicked:
        result = forms.submit_export(
            ctx.service, ctx.user.username, ctx.project.slug, export_type, values, run_at=schedule.run_at
        )
        if result.error:
            problem.error(md_escape(result.error), icon=":material/block:")
            return
        job = result.job
        assert job is not None
        when = (
            f"scheduled for {local_time(schedule.run_at, ctx.project.timezone)}"
            if schedule.run_at
            else "queued"
        )
        st.session_state[jobs_view.FLASH_KEY] = (":material/check_circle:", f"{definition.title}: job #{job.id} {when}")
        st.rerun()


def _warn_up_front(ctx: PageContext, definition: ExportDefinition) -> None:
    if not definition.allow_when_project_not_closed and ctx.project.status not in CLOSED_PROJECT_STATUSES:
        st.warning("Project must be closed before this export can run. A global admin can close it.")
    if definition.type == PUBLISH_TYPE:
        already = " It was published before; this adds a new publication." if ctx.project.status == "published" else ""
        st.warning("Publishing copies the chosen reports to the publish folder and marks the project "
                   f"published. This cannot be undone from here.{already}")
    latest = ctx.service.latest_by_type(ctx.user.username, ctx.project.slug).get(definition.type)
    if latest is not None and latest.status in ACTIVE_STATUSES:
        st.info(
            f"A {md_escape(definition.title)} job is already {jobs_view.status_label(latest).lower()} "
            f"(#{latest.id}). Another one can start when it has finished."
        )
