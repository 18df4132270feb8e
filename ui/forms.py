"""The export dialog's form, built from the export config, as plain functions.

:func:`variable_form` draws one widget per variable and returns the raw values; it does not care
whether it runs inside ``st.dialog`` (the hub) or a plain script (the tests). The widget for each
variable type:

- ``date`` → date input; a ``dateRange`` choice offers the presets and shows From/To only for a
  custom range;
- ``array`` → select box, or a multi-select for ``"multiple": true`` (zones and other project values);
- ``boolean`` → checkbox;
- ``number`` → number input with the config's bounds;
- ``string`` → text input.

:func:`schedule_input` adds "Run now" / "Run at", and :func:`submit_export` starts the job and turns
a refusal into a sentence for the dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from exporthub.errors import ExporthubError, InvalidVariable, JobAlreadyRunning
from exporthub.excel import split_warning
from exporthub.export_config import ExportDefinition, Variable, VarType
from exporthub.jobs import JobService
from exporthub.plugins import Estimate
from exporthub.views import JobView
from ui.format import OPTION_LABELS, md_escape, option_label, size

# Excel's sheet limit, less the header row (exporters split larger tables across sheets).
# Rough bytes per row when an exporter gives no size of its own (only for the estimate text).
_FALLBACK_BYTES_PER_ROW = 100

# A variable shown only while another one has a given value: (other key, value).
_SHOWN_WHEN: dict[str, tuple[str, str]] = {
    "dateFrom": ("dateRange", "custom"),
    "dateTo": ("dateRange", "custom"),
    "csvDialect": ("format", "csv"),
}


def applies(var: Variable, values: Mapping[str, Any], definition: ExportDefinition) -> bool:
    """Whether ``var`` means something with these ``values`` (From/To only for a custom range, …)."""
    rule = _SHOWN_WHEN.get(var.key)
    if rule is None or definition.variable(rule[0]) is None:
        return True
    return values.get(rule[0]) == rule[1]


def _default_dates(today: date, key: str) -> date:
    return today - timedelta(days=6) if key == "dateFrom" else today


def variable_form(
    definition: ExportDefinition,
    *,
    dynamic_options: Mapping[str, Sequence[str]] | None = None,
    key_prefix: str = "var",
    today: date | None = None,
    option_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Draw the widgets for ``definition``'s variables and return ``{key: value}``.

    Values are what :meth:`JobService.start` accepts (dates as ``date``); variables that do not
    apply (From/To outside a custom range, the CSV dialect for other formats) are left out so the
    domain fills in their defaults. ``today`` is the project's local date, for date defaults.
    ``option_labels`` adds display labels for choice values, by variable key (e.g. export titles).
    """
    dynamic_options = dynamic_options or {}
    today = today or date.today()
    values: dict[str, Any] = {}
    drawn: set[str] = set()
    for var in definition.variables:
        if var.key in drawn or not applies(var, values, definition):
            continue
        if var.key in ("dateFrom", "dateTo") and definition.variable("dateRange") is not None:
            # From and To of a custom range sit side by side.
            pair = [
                v for v in (definition.variable("dateFrom"), definition.variable("dateTo")) if v is not None
            ]
            values.update(_date_pair(pair, key_prefix, today))
            drawn.update(v.key for v in pair)
            problem = date_problem(values)
            if problem is not None:
                st.error(problem, icon=":material/event_busy:")  # next to the fields, and only here
            continue
        values[var.key] = _widget(var, dynamic_options, key_prefix, today, option_labels or {})
    return values


DATE_KEYS = ("dateFrom", "dateTo")


def date_problem(values: Mapping[str, Any]) -> str | None:
    """What is wrong with a custom range's From/To, in words (``None`` when nothing is)."""
    start, end = values.get("dateFrom"), values.get("dateTo")
    if isinstance(start, date) and isinstance(end, date) and start > end:
        return "The range ends before it starts: pick a To date on or after the From date."
    return None


def _date_pair(variables: list[Variable], key_prefix: str, today: date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, var in zip(st.columns(len(variables)), variables, strict=True):
        with column:
            default = _as_date(var.default) or _default_dates(today, var.key)
            out[var.key] = st.date_input(
                var.title, value=default, key=f"{key_prefix}_{var.key}", format="YYYY-MM-DD"
            )
    return out


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _labeller(key: str, extra: Mapping[str, Mapping[str, str]]) -> Callable[[Any], str]:
    labels = extra.get(key, {})
    return lambda value: labels.get(str(value)) or option_label(key, value)


def _widget(
    var: Variable,
    dynamic_options: Mapping[str, Sequence[str]],
    key_prefix: str,
    today: date,
    extra_labels: Mapping[str, Mapping[str, str]],
) -> Any:
    key = f"{key_prefix}_{var.key}"
    if var.type is VarType.BOOLEAN:
        return st.checkbox(var.title, value=bool(var.default), key=key)
    if var.type is VarType.NUMBER:
        is_int = all(isinstance(x, int) for x in (var.default, var.minimum, var.maximum) if x is not None)
        cast: Callable[[Any], Any] = int if is_int else float
        return st.number_input(
            var.title,
            key=key,
            value=None if var.default is None else cast(var.default),
            min_value=None if var.minimum is None else cast(var.minimum),
            max_value=None if var.maximum is None else cast(var.maximum),
            step=1 if is_int else None,
        )
    if var.type is VarType.DATE:
        return st.date_input(var.title, value=_as_date(var.default), key=key, format="YYYY-MM-DD")
    if var.type is VarType.ARRAY:
        options = list(dynamic_options.get(var.key, var.options))
        if var.multiple:
            placeholder = "All" if var.key in dynamic_options or var.dynamic_options else "Choose options"
            preselected = [v for v in (var.default or []) if v in options]
            return st.multiselect(
                var.title,
                options,
                default=preselected,
                key=key,
                placeholder=placeholder,
                format_func=_labeller(var.key, extra_labels),
            )
        if var.key == "dateRange":
            return st.selectbox(var.title, options, key=key, format_func=_labeller(var.key, extra_labels))
        index = options.index(var.default) if var.default in options else 0
        return st.selectbox(
            var.title, options, index=index, key=key, format_func=_labeller(var.key, extra_labels)
        )
    return st.text_input(var.title, value=str(var.default or ""), key=key, max_chars=500)


# ---------------------------------------------------------------------------- scheduling


@dataclass(frozen=True)
class Schedule:
    """``run_at`` is ``None`` for "Run now"; ``error`` says why a chosen time cannot be used."""

    run_at: datetime | None
    error: str | None = None


RUN_NOW, RUN_AT = "Run now", "Run at"


def schedule_input(timezone: str, *, key_prefix: str = "schedule", now: datetime | None = None) -> Schedule:
    """ "Run now" or "Run at" a date and time in the project's timezone (returned as aware UTC)."""
    tz = ZoneInfo(timezone)
    local_now = (now or datetime.now(tz)).astimezone(tz)
    choice = st.radio("When", [RUN_NOW, RUN_AT], horizontal=True, key=f"{key_prefix}_when")
    if choice == RUN_NOW:
        return Schedule(None)
    suggestion = (local_now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    left, right = st.columns(2)
    with left:
        day = st.date_input("Date", value=suggestion.date(), key=f"{key_prefix}_date", format="YYYY-MM-DD")
    with right:
        at = st.time_input(
            "Time", value=suggestion.time(), key=f"{key_prefix}_time", step=timedelta(minutes=15)
        )
    st.caption(f"Times are in the project's timezone, {md_escape(timezone)}.")
    return resolve_schedule(day, at, timezone, now=local_now)


def resolve_schedule(day: date | None, at: time | None, timezone: str, *, now: datetime) -> Schedule:
    """The UTC time for a local date and time, refused when missing or not in the future."""
    if day is None or at is None:
        return Schedule(None, "Pick a date and a time to run the export at.")
    local = datetime.combine(day, at, tzinfo=ZoneInfo(timezone))
    if local <= now:
        return Schedule(None, "Pick a time in the future, or choose “Run now”.")
    return Schedule(local.astimezone(ZoneInfo("UTC")))


# ---------------------------------------------------------------------------- submit


@dataclass(frozen=True)
class SubmitResult:
    job: JobView | None
    error: str | None = None


def plain_refusal(exc: ExporthubError, definition: ExportDefinition | None = None) -> str:
    """The refusal in plain words, naming a variable by its title rather than its key."""
    if isinstance(exc, InvalidVariable) and definition is not None:
        var = definition.variable(exc.key)
        problem = exc.message.split(": ", 1)[-1]
        return f"{var.title if var else exc.key}: {problem}"
    if isinstance(exc, JobAlreadyRunning):
        title = definition.title if definition is not None else exc.export_type
        return f"Export job already running: {title}. Wait for it to finish or cancel it first."
    return exc.message


def submit_export(
    service: JobService,
    username: str,
    project: str,
    export_type: str,
    values: Mapping[str, Any],
    *,
    run_at: datetime | None = None,
) -> SubmitResult:
    """Start the export; a refusal comes back as ``error`` (the domain has audited it)."""
    definition = service.config.get(export_type)
    try:
        job = service.start(username, project, export_type, dict(values), run_at=run_at)
    except ExporthubError as exc:
        return SubmitResult(None, plain_refusal(exc, definition))
    return SubmitResult(job)


# ---------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class EstimateText:
    summary: str
    warnings: tuple[str, ...]


def describe_estimate(estimate: Estimate | None, values: Mapping[str, Any]) -> EstimateText | None:
    """The estimate as a sentence plus warnings; adds the Excel row-limit warning when the
    exporter did not give one itself."""
    if estimate is None:
        return None
    rows = int(estimate.rows)
    approx = int(estimate.approx_bytes or rows * _FALLBACK_BYTES_PER_ROW)
    fmt = values.get("format")
    label = option_label("format", fmt) if fmt else "file"
    summary = f"About **{rows:,} rows**, roughly **{size(approx)}** as {label}."
    warnings = list(estimate.warnings)
    split = split_warning(rows) if fmt == "xlsx" else None
    if split is not None and split not in warnings:  # the exporter may have said it already, in the same words
        warnings.append(split)
    return EstimateText(summary, tuple(warnings))


__all__ = [
    "OPTION_LABELS",
    "RUN_AT",
    "RUN_NOW",
    "Schedule",
    "SubmitResult",
    "describe_estimate",
    "plain_refusal",
    "resolve_schedule",
    "schedule_input",
    "submit_export",
    "variable_form",
]
