"""Starting an export from a page, and saying what came of it for as long as it is still about the view on
screen: the job's number with a link to follow it, or the refusal in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from exporthub.errors import ExporthubError
from exporthub.jobs import JobService
from ui.format import md_escape
from ui.forms import plain_refusal


def start_job(
    service: JobService,
    actor: str,
    project: str,
    export_type: str,
    values: Mapping[str, Any],
    *,
    what: str,
    key: str,
) -> None:
    """Start an export and keep what came of it under ``key`` for :func:`show_outcome`: the job's number,
    or the refusal in plain words."""
    try:
        job = service.start(actor, project, export_type, dict(values))
    except ExporthubError as exc:
        outcome = _Outcome(dict(values), False, md_escape(plain_refusal(exc, service.config.get(export_type))))
    else:
        text = f"{what} started as job #{job.id}. [Follow it in the job details](/job?job={job.id})."
        outcome = _Outcome(dict(values), True, text)
    st.session_state[key] = outcome


def show_outcome(key: str, values: Mapping[str, Any]) -> None:
    """What the last start under ``key`` came to, while the view is still the one it started from.

    Kept in the session, not only shown in the run of the click: any later run of the same view (one that
    holds the statistics page's charts' place, then draws them) would otherwise wipe it."""
    outcome = st.session_state.get(key)
    if not isinstance(outcome, _Outcome) or outcome.values != dict(values):
        return
    (st.success if outcome.started else st.error)(outcome.text)


@dataclass(frozen=True)
class _Outcome:
    values: dict[str, Any]  # the variables the job was asked for: the view, the format
    started: bool
    text: str
