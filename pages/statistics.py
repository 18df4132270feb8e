"""Statistics: the picked project's numbers as charts before anything is downloaded, ad-hoc
exploration, and reports generated from exactly the view on screen."""

from __future__ import annotations

import streamlit as st

from exporthub.errors import ExporthubError
from exporthub.permissions import Permission
from ui import stats_view
from ui.format import md_escape
from ui.session import page_context
from ui.stats_services import stats_service

ctx = page_context(Permission.VIEW)
user, project, timezone = ctx.user.username, ctx.project.slug, ctx.project.timezone
currency = ctx.project.currency  # a project setting (EUR unless set), never empty
stats = stats_service()

st.title("Statistics")
st.caption(f"{md_escape(ctx.project.name)} · times in {md_escape(timezone)}")
try:
    options = stats.filter_options(user, project)  # the domain checks exports.view again
except ExporthubError as exc:
    st.error(md_escape(exc.message))
    st.stop()

stats_view.keep_held_widgets()  # before any widget: see the function
view = stats_view.filter_bar(options, timezone)
if view is None:
    st.stop()
preview = stats.preview(user, project, view.filters, granularity=view.granularity)
stats_view.headline(preview, currency)
stats_view.cutoff_note(preview)
# The figures alone first; the rest in the run the browser asks for once it has painted them.
if stats_view.charts_now():
    if ctx.can(Permission.START):
        stats_view.report_controls(ctx.service, user, project, view)
    stats_view.chart_tabs(preview, currency)
    stats_view.explore_section(stats, ctx, view)
else:
    stats_view.hold_the_rest()
