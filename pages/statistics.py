"""Statistics: the picked project's numbers as charts before anything is downloaded, ad-hoc
exploration, and reports generated from exactly the view on screen."""

from __future__ import annotations

import streamlit as st

from exporthub import charts
from exporthub.errors import ExporthubError
from exporthub.permissions import Permission
from ui import stats_view
from ui.charts_plotly import figure
from ui.format import md_escape
from ui.session import page_context
from ui.stats_services import stats_service

ctx = page_context(Permission.VIEW)
user, project, timezone = ctx.user.username, ctx.project.slug, ctx.project.timezone
stats = stats_service()

st.title("Statistics")
st.caption(f"{md_escape(ctx.project.name)} · times in {md_escape(timezone)}")
try:
    options = stats.filter_options(user, project)  # the domain checks exports.view again
except ExporthubError as exc:
    st.error(md_escape(exc.message))
    st.stop()

view = stats_view.filter_bar(options, timezone)
if view is None:
    st.stop()
preview = stats.preview(user, project, view.filters, granularity=view.granularity)
stats_view.cutoff_note(preview)
stats_view.headline(preview)
if ctx.can(Permission.START):
    stats_view.report_controls(ctx.service, user, project, view)
stats_view.chart_grid(charts.preview_charts(preview.tables, granularity=view.granularity, timezone=timezone))

st.header("Explore")
st.caption("Pick a measure and one or two dimensions; the filters above apply.")
spec = stats_view.explore_controls()
if spec is not None:
    result = stats.explore(user, project, view.filters, spec)
    st.plotly_chart(figure(charts.explore_chart(result.table, spec)), key="chart-explore", width="stretch")
    st.dataframe(result.table, key="explore-table", hide_index=True)
    if ctx.can(Permission.START):
        stats_view.explore_export(ctx.service, user, project, view, spec)
