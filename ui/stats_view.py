"""The statistics page's widgets: the filters, the headline figures, the charts and the explore controls.

Widgets only collect input and draw results; the numbers come from :class:`exporthub.stats.StatsService`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from exporthub import charts
from exporthub.errors import InvalidVariable
from exporthub.jobs import JobService
from exporthub.permissions import Permission
from exporthub.stats import (
    DIMENSIONS,
    GRANULARITIES,
    MEASURES,
    NO_DIMENSION,
    ExploreSpec,
    FilterOptions,
    Preview,
    StatsFilter,
    StatsService,
    dimensions_for,
)
from ui.charts_plotly import cached_figure
from ui.format import local_time, md_escape, option_label
from ui.page_context import PageContext
from ui.start_outcome import show_outcome, start_job

DATE_PRESETS = ("all", "last7days", "last30days", "custom")
GRANULARITY_LABELS = {"day": "Per day", "hour": "Per hour"}
REPORT_FORMATS = {"pdf": "PDF with charts", "xlsx": "Excel tables"}
EXPLORE_FORMATS = {"csv": "CSV", "xlsx": "Excel (xlsx)"}
# Session keys of what the last "Generate report" and "Export this view" came to.
_REPORT_STARTED = "stats-report-started"
_EXPLORE_STARTED = "stats-explore-started"


@dataclass(frozen=True)
class View:
    """What the filter bar chose: the filters and the time resolution of "scans over time"."""

    filters: StatsFilter
    granularity: str


def filter_bar(options: FilterOptions, timezone: str) -> View | None:
    """The filters, applied to every chart: one button that opens them, and beside it what they are set
    to. ``None`` (with the reason shown) when they make no view, such as a range without its last day.

    The widgets sit in a popover, which the browser draws only when it is opened: a page opened from
    its address shows its figures without first loading the code of six kinds of widget."""
    button, summary = st.columns([1, 7], vertical_alignment="center")
    try:
        with button.popover("Filters", icon=":material/filter_list:", key="stats-filters", width="stretch"):
            view = _filter_widgets(options, timezone)
    except InvalidVariable as exc:  # shown on the page, not inside the closed popover
        st.error(md_escape(exc.message))
        return None
    if view is None:
        summary.caption("Pick the last day of the range under **Filters**.")
        return None
    summary.caption(describe(view, options))
    return view


# Choosing every entry is not the same as choosing none: what belongs to no entry falls out (filters.py).
_NARROWS = (
    "Only what belongs to the chosen entries counts. Costs booked to no {0} are left out as soon as one "
    "{0} is chosen, so choosing them all can show less than leaving the list empty."
)


def _filter_widgets(options: FilterOptions, timezone: str) -> View | None:
    """The filter widgets, one under the other, and the view they make; ``None`` for a range not yet
    picked. Raises ``InvalidVariable`` for filters that make no view (a range ending before it starts)."""
    today = datetime.now(ZoneInfo(timezone)).date()
    preset = st.selectbox(
        "Date range", DATE_PRESETS, key="stats-date-range", format_func=lambda v: option_label("dateRange", v)
    )
    start: date | None = None
    end: date | None = None
    if preset == "custom":
        picked = st.date_input(
            "From – to", value=(today - timedelta(days=29), today), key="stats-dates", format="YYYY-MM-DD"
        )
        if not (isinstance(picked, tuple | list) and len(picked) == 2):
            st.caption("Pick the last day of the range.")
            return None
        start, end = picked
    granularity = st.segmented_control(
        "Scans over time",
        GRANULARITIES,
        default="day",
        key="stats-granularity",
        required=True,
        format_func=lambda g: GRANULARITY_LABELS.get(g, g),
    ) or "day"
    by = st.radio("Filter by", ("Zones", "Areas"), key="stats-by", horizontal=True)
    zones: list[str] = []
    areas: list[str] = []
    if by == "Zones":
        zones = st.multiselect("Zones (empty = all)", options.zones, key="stats-zones", help=_NARROWS.format("zone"))
    else:
        areas = st.multiselect("Areas (empty = all)", options.areas, key="stats-areas", help=_NARROWS.format("area"))
    users = st.multiselect(
        "Users (empty = all)",
        list(options.users),
        key="stats-users",
        format_func=lambda u: f"{options.users.get(u, u)} ({u})",
        help=_NARROWS.format("user"),
    )
    include_deleted = st.checkbox(
        "Include deleted", key="stats-deleted", help="Count soft-deleted scans and sessions; list deleted zones."
    )
    filters = StatsFilter(date_range=preset, date_from=start, date_to=end, zones=tuple(zones),
                          areas=tuple(areas), users=tuple(users), include_deleted=include_deleted)
    return View(filters, granularity)


def describe(view: View, options: FilterOptions) -> str:
    """What the filters are set to, in a line: ``All time · per day · zones Z-01, Z-02 · all users``."""
    f = view.filters
    if f.date_range == "custom" and f.date_from and f.date_to:
        when = f"{f.date_from:%d %b %Y} – {f.date_to:%d %b %Y}"
    else:
        when = option_label("dateRange", f.date_range)
    parts = [when, GRANULARITY_LABELS.get(view.granularity, view.granularity).lower()]
    if f.areas:
        parts.append(_some("areas", f.areas))
    else:
        parts.append(_some("zones", f.zones) if f.zones else "all zones")
    names = tuple(options.users.get(u, u) for u in f.users)
    parts.append(_some("users", names) if names else "all users")
    if f.include_deleted:
        parts.append("deleted included")
    return md_escape(" · ".join(parts))


def _some(what: str, values: tuple[str, ...]) -> str:
    return f"{what} {', '.join(values)}" if len(values) <= 3 else f"{len(values)} {what}"


def cutoff_note(preview: Preview) -> None:
    st.caption(
        f"Data cut-off: **{local_time(preview.cutoff, preview.timezone)}** ({md_escape(preview.timezone)}). "
        "Scans, sessions and costs that arrived later are not in these numbers."
    )


def headline(preview: Preview, currency: str) -> None:
    h = preview.headline
    cols = st.columns(6)
    cols[0].metric("Total scans", f"{h['scans']:,}")
    cols[1].metric("Items", f"{h['items']:,}")
    cols[2].metric("Active users", f"{h['active_users']:,}")
    cols[3].metric("Hours", f"{h['hours']:,.1f}")
    # Six metrics share one row: from 10,000 on, cents would push the figure past its column.
    cost = h["cost"]
    shown_cost = f"{cost:,.0f}" if abs(cost) >= 10_000 else f"{cost:,.2f}"
    # The currency goes in the label: six figures share a row, and a suffix would cut the figure short.
    cols[4].metric(f"Cost ({currency})", shown_cost, help=f"{cost:,.2f} {currency}")
    per_scan = h["cost_per_scan"]
    cols[5].metric(f"Cost per scan ({currency})", "—" if per_scan is None else f"{per_scan:,.3f}")


# Plotly draws a chart in the same browser task that puts it on the page, so a chart sent with the figures
# keeps the figures from being painted until every chart is drawn (seconds on a busy machine); and the
# browser renders in one go whatever elements arrive together, so every element sent with the figures
# delays them a little. A full run therefore sends the figures, holds the place of everything below them
# and mounts a tiny browser component that, once the browser has painted the page (an animation frame,
# then a task), asks for one more run: that one sends the report button, the charts and Explore. One
# request for the whole page (not one per fragment), and no timer: nothing is redrawn afterwards.
_RELEASED = "stats-charts-released"
# A session that sets this key draws the charts in every run. AppTest has no browser to paint and ask,
# so its tests set it.
CHARTS_AT_ONCE = "stats-charts-at-once"
_AFTER_PAINT_JS = """
export default function (component) {
    requestAnimationFrame(() => setTimeout(() => component.setTriggerValue("painted", true), 0));
}
"""
_after_paint = st.components.v2.component("exporthub.after_paint", js=_AFTER_PAINT_JS)


def _release_charts() -> None:
    st.session_state[_RELEASED] = True


# Set by the page's own controls that leave the view as it is (the report's format and button): their run
# draws the charts at once, from the figures already built, rather than blanking them for one more run.
_KEPT = "stats-charts-kept"


def keep_charts() -> None:
    st.session_state[_KEPT] = True


def charts_now() -> bool:
    """Whether this run draws the charts: always in a session that set :data:`CHARTS_AT_ONCE`, else
    when the browser asked for it after painting the previous run (see :func:`hold_the_rest`) or a
    control that keeps the view asked for it (see :func:`keep_charts`). Both requests last one run."""
    released = st.session_state.pop(_RELEASED, False)
    kept = st.session_state.pop(_KEPT, False)
    return bool(st.session_state.get(CHARTS_AT_ONCE) or released or kept)


# The place held below the figures: about as tall as the open tab's charts and Explore will be.
_HELD_HEIGHT = 1600


def hold_the_rest() -> None:
    """In a run without the charts: their place below the figures, then the component that asks for the
    run with them once the browser has painted this one (the page's last element, so that the other
    elements keep their places in the next run)."""
    with st.container(height=_HELD_HEIGHT, border=False):
        st.caption("Drawing the charts…")
    _after_paint(key="stats-after-paint", on_painted_change=_release_charts, height=0)


# The widgets below the figures: a run that holds their place does not draw them, and Streamlit forgets
# the value of a widget that was not drawn in a run. Each run first claims their values (Streamlit's own
# way to keep a widget's value across runs that do not draw it), so a filter change keeps the open tab,
# the report's format and Explore's choices.
_HELD_WIDGETS = ("stats-report-format", "stats-chart-tab", "explore-measure", "explore-dim1", "explore-dim2",
                 "explore-format")


def keep_held_widgets() -> None:
    for key in _HELD_WIDGETS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


# The charts in three tabs: only the open tab's charts are drawn, so the page shows its figures at once
# and a tab's charts arrive together when it is opened.
CHART_TABS: dict[str, tuple[str, ...]] = {
    "Activity": ("scans_over_time", "daily_productivity", "session_durations"),
    "People and zones": ("productivity", "zone_completion"),
    "Cost": ("cost_by_category", "cost_over_time", "cost_per_scan"),
}


@st.fragment
def chart_tabs(preview: Preview, currency: str) -> None:
    """The preview's charts in tabs; switching tabs reruns only this fragment. Figures are built once
    per chart and data (the preview's key), so reruns and tab switches only send them."""
    specs = charts.preview_charts(preview.tables, granularity=preview.granularity, timezone=preview.timezone)
    by_key = {spec.key: spec for spec in specs}
    tabs = st.tabs(list(CHART_TABS), key="stats-chart-tab", on_change="rerun")
    for tab, keys in zip(tabs, CHART_TABS.values(), strict=True):
        if tab.open is False:
            continue
        with tab:
            chart_grid([by_key[k] for k in keys if k in by_key], preview.key, currency)


def chart_grid(specs: list[charts.ChartSpec], data_key: Hashable, currency: str = "") -> None:
    """The charts, two per row (each from the shared chart definitions, built once per ``data_key``)."""
    for i in range(0, len(specs), 2):
        cols = st.columns(2)
        for col, spec in zip(cols, specs[i : i + 2], strict=False):
            with col:
                fig = cached_figure(spec, data_key, currency=currency)
                st.plotly_chart(fig, key=f"chart-{spec.key}", width="stretch")


def report_controls(service: JobService, actor: str, project: str, view: View) -> None:
    """ "Generate report from this view": the statistics export with exactly these filters."""
    cols = st.columns([2, 3, 5])
    fmt = cols[0].selectbox(
        "Report format",
        list(REPORT_FORMATS),
        key="stats-report-format",
        format_func=lambda f: REPORT_FORMATS.get(f, f),
        label_visibility="collapsed",
        on_change=keep_charts,
    )
    values = {**view.filters.to_variables(), "granularity": view.granularity, "format": fmt}
    if cols[1].button(
        "Generate report from this view",
        key="stats-generate",
        type="primary",
        icon=":material/picture_as_pdf:",
        on_click=keep_charts,
    ):
        start_job(service, actor, project, "statistics", values, what="The statistics report", key=_REPORT_STARTED)
    show_outcome(_REPORT_STARTED, values)


@st.fragment
def explore_section(stats: StatsService, ctx: PageContext, view: View) -> None:
    """Ad-hoc exploration; its own fragment, so changing a measure does not redraw the charts above."""
    st.header("Explore")
    st.caption("Pick a measure and one or two dimensions; the filters above apply.")
    spec = explore_controls()
    if spec is None:
        return
    user, project = ctx.user.username, ctx.project.slug
    result = stats.explore(user, project, view.filters, spec)
    # Built once per explore table (its key: snapshot, users, filters, measure and dimensions), as the charts.
    fig = cached_figure(charts.explore_chart(result.table, spec), result.key)
    st.plotly_chart(fig, key="chart-explore", width="stretch")
    st.dataframe(result.table, key="explore-table", hide_index=True)
    if ctx.can(Permission.START):
        explore_export(ctx.service, user, project, view, spec)


def explore_controls() -> ExploreSpec | None:
    """Measure and one or two dimensions; only combinations that mean something are offered."""
    cols = st.columns(3)
    measure = cols[0].selectbox(
        "Measure", list(MEASURES), key="explore-measure", format_func=lambda m: MEASURES[m].label
    )
    dims = dimensions_for(measure)
    dim1 = cols[1].selectbox("Dimension", dims, key="explore-dim1", format_func=lambda d: DIMENSIONS[d].label)
    second = [NO_DIMENSION, *[d for d in dims if d != dim1]]
    dim2 = cols[2].selectbox(
        "Second dimension",
        second,
        key="explore-dim2",
        format_func=lambda d: "None" if d == NO_DIMENSION else DIMENSIONS[d].label,
    )
    try:
        return ExploreSpec(measure, dim1, dim2).check()
    except InvalidVariable as exc:  # e.g. a stale choice after the measure changed
        st.warning(md_escape(exc.message))
        return None


def explore_export(service: JobService, actor: str, project: str, view: View, spec: ExploreSpec) -> None:
    """ "Export this view": the hidden ``explore`` export with this measure, dimensions and filters."""
    cols = st.columns([2, 3, 5])
    fmt = cols[0].selectbox(
        "Export format",
        list(EXPLORE_FORMATS),
        key="explore-format",
        format_func=lambda f: EXPLORE_FORMATS.get(f, f),
        label_visibility="collapsed",
    )
    values = {
        **view.filters.to_variables(),
        "measure": spec.measure,
        "dim1": spec.dim1,
        "dim2": spec.dim2 or NO_DIMENSION,
        "format": fmt,
    }
    if cols[1].button("Export this view", key="explore-export", icon=":material/download:"):
        start_job(service, actor, project, "explore", values, what="The explore export", key=_EXPLORE_STARTED)
    show_outcome(_EXPLORE_STARTED, values)
