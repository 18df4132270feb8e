"""Render a :class:`~exporthub.charts.ChartSpec` as a Plotly figure for the statistics page.

Everything visible (title, axis labels, series names, colours, values) is read from the spec, the same
one the PDF report draws with reportlab, so the preview and the file agree.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Hashable, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from exporthub.charts import LINE_MARKERS_UP_TO, PALETTE, ChartSpec
from exporthub.stats.cache import ResultCache

# Built figures, shared by the sessions of this process: building one costs 20-200 ms of Plotly's
# validation, sending a built one ~2 ms. Keys carry the data's identity (see ``cached_figure``).
FIGURES = ResultCache(maxsize=64)

# Every figure of the app uses Plotly's white template. As the default, a new figure takes it in ~3 ms;
# named in each figure's layout, Plotly copies and validates the whole template every time (~45 ms,
# four fifths of building a chart).
pio.templates.default = "plotly_white"


def _text(value: Any) -> Any:
    # Plotly reads <a href>, <b> and entities in labels: names (zones, users) must stay plain text.
    return html.escape(value, quote=False) if isinstance(value, str) else value


def _labels(values: Sequence[Any]) -> list[Any]:
    return [_text(v) for v in values]


# Axis ticks are round numbers: shown with the decimals they have (0.5, 1, 1.5), not rounded to the
# values' format, which would label 0.5 and 1 both "1" and put a value of 1.6 above the tick that says
# "2". Hovering still shows a value in its own format.
AXIS_TICKS = ",~f"

# Above this many time points bars become a filled line: a comb of hundreds of 1-px bars is slow to draw
# and unreadable.
MAX_BARS = 90


def figure(spec: ChartSpec, *, height: int = 380, currency: str = "") -> go.Figure:
    """The Plotly figure for ``spec`` (an annotation says so when there is no data).

    ``currency`` (e.g. "EUR") is added to the value axis and hover of cost charts.
    """
    fig = go.Figure()
    fig.update_layout(
        title={"text": spec.title},
        height=height,
        colorway=list(PALETTE),
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        # The legend goes under the plot: above it, a phone's narrow width puts it over the title.
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
    )
    unit = f" {currency}" if currency and spec.key.startswith("cost") else ""
    if spec.is_empty:
        fig.add_annotation(
            text="No data for these filters", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    if spec.kind == "pie":
        fig.add_trace(
            go.Pie(
                labels=_labels(spec.x_labels()),
                values=spec.values(spec.series[0]),
                marker={"colors": list(spec.slice_colours)},
                sort=False,
                name=_text(spec.series[0].name),
                texttemplate="%{label}<br>%{percent:.1%}",
                hovertemplate="%{label}: %{value:" + spec.value_format + "}" + unit + "<extra></extra>",
            )
        )
        return fig
    value_title = spec.y_label + (f" ({currency})" if unit else "")
    if spec.kind == "heatmap":
        xs, ys, grid = spec.matrix()
        stops = spec.colour_scale
        scale = [[i / (len(stops) - 1), c] for i, c in enumerate(stops)]
        fig.add_trace(
            go.Heatmap(
                x=_labels(xs),
                y=_labels(ys),
                z=grid,
                colorscale=scale,
                name=spec.series[0].name,
                colorbar={"title": {"text": spec.series[0].name}},
                xgap=1,
                ygap=1,
            )
        )
        # The first row on top, as the PDF draws it.
        fig.update_layout(xaxis_title={"text": spec.x_label}, yaxis_title={"text": spec.y_label})
        if not spec.x_is_time:
            fig.update_xaxes(type="category")
        fig.update_yaxes(type="category", autorange="reversed")
        return fig
    if spec.horizontal:
        return _horizontal_bars(fig, spec, value_title)
    fig.update_layout(xaxis_title={"text": spec.x_label}, yaxis_title={"text": value_title})
    if not spec.x_is_time:
        # Keep codes such as "7" or "Z-001" as categories, in the spec's order.
        fig.update_xaxes(type="category", automargin=True)
    # Rates and counts start at zero: a floating axis makes small differences look large.
    fig.update_yaxes(tickformat=AXIS_TICKS, hoverformat=spec.value_format, rangemode="tozero")
    x = _labels(spec.x_labels())
    as_area = spec.kind == "bar" and spec.x_is_time and not spec.stacked and len(x) > MAX_BARS
    for s in spec.series:
        if as_area:
            fig.add_trace(
                go.Scatter(x=x, y=spec.values(s), name=_text(s.name), mode="lines", fill="tozeroy",
                           line={"color": s.colour, "width": 1})
            )
        elif spec.kind == "line":
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=spec.values(s),
                    name=_text(s.name),
                    mode="lines+markers" if len(x) <= LINE_MARKERS_UP_TO else "lines",
                    line={"color": s.colour, "width": 2},
                )
            )
        else:
            fig.add_trace(go.Bar(x=x, y=spec.values(s), name=_text(s.name), marker={"color": s.colour}))
    # traceorder "normal": Plotly would list stacked series top-down, the reverse of the spec (and the PDF).
    fig.update_layout(
        barmode="stack" if spec.stacked else "group",
        showlegend=len(spec.series) > 1,
        legend_traceorder="normal",
    )
    if spec.kind == "histogram":
        fig.update_layout(bargap=0.02)
    if spec.x_is_time:
        _widen_a_lone_time(fig, spec.x_labels())
    return fig


def _widen_a_lone_time(fig: go.Figure, x: list[str]) -> None:
    """One day (or hour) alone: Plotly would zoom the date axis to a millisecond around it and draw its
    bar across the whole chart. Show a day (an hour) either side, and the bar one bucket wide."""
    if len(set(x)) != 1:
        return
    at = dt.datetime.fromisoformat(x[0])
    step = dt.timedelta(hours=1) if len(x[0]) > len("2026-01-01") else dt.timedelta(days=1)
    millis = step.total_seconds() * 1000
    fig.update_xaxes(range=[at - step, at + step], dtick=millis)
    fig.update_traces(width=0.8 * millis, selector={"type": "bar"})


def cached_figure(spec: ChartSpec, data_key: Hashable, *, currency: str = "") -> go.Figure:
    """``figure(spec)``, built once per chart and ``data_key``, which must identify the data the spec
    was made from (e.g. :attr:`exporthub.stats.Preview.key`: snapshot ids, users, filters). Streamlit
    copies a figure before sending it, so a cached one is never changed by a page."""
    key = (spec.key, data_key, currency)
    fig = FIGURES.get(key)
    if fig is None:
        fig = figure(spec, currency=currency)
        FIGURES.put(key, fig)
    return fig


def _horizontal_bars(fig: go.Figure, spec: ChartSpec, value_title: str) -> go.Figure:
    """Bars along the y axis (names stay readable on a phone), first category on top, and the target
    (e.g. 100 %) as a dashed line."""
    y = _labels(spec.x_labels())
    for s in spec.series:
        fig.add_trace(go.Bar(x=spec.values(s), y=y, orientation="h", name=_text(s.name),
                             marker={"color": s.colour}))
    fig.update_layout(xaxis_title={"text": value_title}, yaxis_title={"text": spec.x_label}, showlegend=False,
                      height=max(300, 60 + 22 * len(y)))
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    fig.update_xaxes(tickformat=AXIS_TICKS, hoverformat=spec.value_format, rangemode="tozero")
    if spec.target is not None:
        fig.add_vline(x=spec.target, line={"color": "#1B2333", "dash": "dash", "width": 1})
    return fig
