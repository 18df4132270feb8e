"""The export dialog's lookups that cost a query: the options that come from the project (zone codes,
areas, users) and the estimate box (rows and size for the chosen filters). The dialog reruns on
every widget change, so both are cached in the session for a short while."""

from __future__ import annotations

import json
import time
from typing import Any

import streamlit as st

from exporthub.errors import ExporthubError, InvalidVariable
from exporthub.export_config import ExportDefinition
from exporthub.plugins import Estimate
from ui import forms
from ui.format import md_escape
from ui.session import PageContext

_ESTIMATE_TTL = 30.0
_OPTIONS_TTL = 60.0


def dynamic_options(ctx: PageContext, export_type: str) -> dict[str, list[str]]:
    key = f"_options-{ctx.project.slug}-{export_type}"
    cached = st.session_state.get(key)
    if cached is None or time.monotonic() - cached[0] > _OPTIONS_TTL:
        cached = (time.monotonic(), ctx.service.dynamic_options(ctx.project.slug, export_type))
        st.session_state[key] = cached
    return cached[1]


def estimate_box(ctx: PageContext, definition: ExportDefinition, values: dict[str, Any]) -> None:
    """Rows and size for the chosen filters; nothing at all for types without an estimate."""
    problem: str | None = None
    text = None
    try:
        text = forms.describe_estimate(cached_estimate(ctx, definition.type, values), values)
    except InvalidVariable as exc:
        if exc.key in forms.DATE_KEYS and forms.date_problem(values) is not None:
            return  # said once, next to the date fields
        problem = forms.plain_refusal(exc, definition)
    except ExporthubError as exc:
        problem = exc.message
    if text is None and problem is None:
        return
    with st.container(border=True, key="estimate"):
        st.markdown("**Estimate**")
        if problem is not None:
            st.warning(md_escape(problem))
            return
        assert text is not None
        st.markdown(text.summary)
        for warning in text.warnings:
            st.warning(md_escape(warning), icon=":material/warning:")


def cached_estimate(ctx: PageContext, export_type: str, values: dict[str, Any]) -> Estimate | None:
    # The dialog reruns on every widget change; count again only when the filters changed.
    key = json.dumps([ctx.project.slug, export_type, values], default=str, sort_keys=True)
    cache: dict[str, tuple[float, Estimate | None]] = st.session_state.setdefault("_estimates", {})
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < _ESTIMATE_TTL:
        return hit[1]
    estimate = ctx.service.estimate(ctx.user.username, ctx.project.slug, export_type, values)
    if len(cache) > 50:
        cache.clear()
    cache[key] = (time.monotonic(), estimate)
    return estimate
