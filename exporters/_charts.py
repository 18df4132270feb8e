"""Render a :class:`~exporthub.charts.ChartSpec` as a reportlab ``Drawing`` for the PDF reports.

Pure vector drawing: no display, browser or image library is needed, so it runs on any worker. Titles,
axis labels, colours and values all come from the spec, the same one the statistics page hands to
Plotly, so the PDF shows what the preview showed. The drawing's parts are named (``title``,
``x_label``, ``y_label``, ``chart``, ``legend``, ``heatmap``) so tests can check them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, Group, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

from exporters._pdf import _fonts
from exporthub.charts import LINE_MARKERS_UP_TO, ChartSpec

WIDTH, HEIGHT = 500.0, 270.0
_LEFT, _RIGHT, _BOTTOM, _TOP = 62.0, 16.0, 62.0, 34.0
_MAX_TICKS = 14
_AXIS_FONT = 7
_GRID = colors.HexColor("#D9D9D9")


def drawing(spec: ChartSpec, width: float = WIDTH, height: float = HEIGHT) -> Drawing:
    """The chart as a ``Drawing`` of ``width`` × ``height`` points (the PDF scales it to fit)."""
    font, bold = _fonts()
    d = Drawing(width, height)
    title = String(width / 2, height - 16, spec.title, fontName=bold, fontSize=11, textAnchor="middle")
    d.add(title, name="title")
    top = height - _TOP
    if spec.is_empty:
        d.add(String(width / 2, height / 2, "No data for these filters", fontName=font, fontSize=9,
                     textAnchor="middle", fillColor=colors.grey), name="empty")
        return d
    if spec.kind == "pie":
        _pie(d, spec, font, width, top)
        return d
    legend = len(spec.series) > 1
    plot_top = top - (16 if legend else 0)
    box = (_LEFT, _BOTTOM, width - _LEFT - _RIGHT, plot_top - _BOTTOM)
    d.add(String(box[0] + box[2] / 2, 6, spec.x_label, fontName=font, fontSize=8, textAnchor="middle"),
          name="x_label")
    y_label = Group(String(0, 0, spec.y_label, fontName=font, fontSize=8, textAnchor="middle"))
    y_label.transform = (0, 1, -1, 0, 10, box[1] + box[3] / 2)  # rotated a quarter turn
    d.add(y_label, name="y_label")
    if spec.kind == "heatmap":
        _heatmap(d, spec, font, box)
    elif spec.kind == "line":
        _line(d, spec, font, box)
    else:
        _bars(d, spec, font, box)
    if legend:
        _legend(d, [(colors.HexColor(s.colour), s.name) for s in spec.series], font, width / 2, top - 2,
                horizontal=True)
    return d


def _label_step(labels: list[str]) -> int:
    """Print every n-th category label: fewer for long ones (hours), so rotated labels never touch."""
    longest = max((len(label) for label in labels), default=0)
    most = _MAX_TICKS if longest <= 10 else _MAX_TICKS * 2 // 3
    return max(1, -(-len(labels) // most))


def _thin(labels: list[str]) -> list[str]:
    """Every n-th label, so at most about :data:`_MAX_TICKS` are printed."""
    step = _label_step(labels)
    return [label if i % step == 0 else "" for i, label in enumerate(labels)]


def _fmt(spec: ChartSpec) -> Callable[[float], str]:
    return lambda v: format(v, spec.value_format)


def nice_scale(top: float, *, whole: bool, ticks: int = 5) -> tuple[float, float]:
    """An axis from zero: ``(maximum, step)`` with a 1-2-5 step, about ``ticks`` ticks, the maximum a
    multiple of the step at or above ``top``. ``whole`` values (counts shown without decimals) get a
    step of at least 1, so an axis never reads 0, 0, 0, 1, 1, 1."""
    top = max(top, 1.0 if whole else 1e-9)
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    return math.ceil(top / step - 1e-9) * step, step


def _value_axis(axis: object, spec: ChartSpec, font: str) -> None:
    """Ticks from zero at round values, formatted as the spec says."""
    values = [v for s in spec.series for v in spec.values(s) if v is not None]
    if spec.stacked and spec.series:
        columns = [spec.values(s) for s in spec.series]
        values = [sum(v or 0.0 for v in row) for row in zip(*columns, strict=True)]
    whole = spec.value_format.endswith(("0f", "d"))
    maximum, step = nice_scale(max(values, default=0.0), whole=whole)
    axis.valueMin, axis.valueMax, axis.valueStep = 0, maximum, step  # type: ignore[attr-defined]
    axis.labels.fontName, axis.labels.fontSize = font, _AXIS_FONT  # type: ignore[attr-defined]
    axis.labelTextFormat = _fmt(spec)  # type: ignore[attr-defined]
    axis.visibleGrid, axis.gridStrokeColor, axis.gridStrokeWidth = True, _GRID, 0.4  # type: ignore[attr-defined]


def _bars(d: Drawing, spec: ChartSpec, font: str, box: tuple[float, float, float, float]) -> None:
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = box
    chart.data = [tuple(spec.values(s)) for s in spec.series]
    labels = spec.x_labels()
    chart.categoryAxis.categoryNames = _thin(labels)
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = _AXIS_FONT
    if len(labels) > 6 or max((len(x) for x in labels), default=0) > 8:
        chart.categoryAxis.labels.angle = 40
        chart.categoryAxis.labels.boxAnchor = "ne"
        chart.categoryAxis.labels.dx, chart.categoryAxis.labels.dy = 2, -4
    if spec.stacked:
        chart.categoryAxis.style = "stacked"
    _value_axis(chart.valueAxis, spec, font)
    if spec.kind == "histogram":  # touching bars: the buckets are adjacent ranges
        chart.barSpacing, chart.groupSpacing = 0, 1
    else:
        chart.groupSpacing = max(1, min(6, 120 // max(1, len(labels))))
    for i, s in enumerate(spec.series):
        chart.bars[i].fillColor = colors.HexColor(s.colour)
        chart.bars[i].strokeColor = None
    d.add(chart, name="chart")


def _line(d: Drawing, spec: ChartSpec, font: str, box: tuple[float, float, float, float]) -> None:
    labels = spec.x_labels()
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = box
    # Positions 0..n-1 on the x axis, printed as the spec's labels; missing values leave no point.
    plot.data = [[(i, v) for i, v in enumerate(spec.values(s)) if v is not None] or [(0, 0)]
                 for s in spec.series]
    step = _label_step(labels)
    axis = plot.xValueAxis
    # One day alone stands in the middle (at the edge it would sit on the value axis).
    axis.valueMin, axis.valueMax = (-1, 1) if len(labels) == 1 else (0, max(1, len(labels) - 1))
    axis.valueSteps = list(range(0, len(labels), step))
    axis.labelTextFormat = lambda v: labels[int(v)] if 0 <= int(v) < len(labels) else ""
    axis.labels.fontName, axis.labels.fontSize = font, _AXIS_FONT
    axis.labels.angle, axis.labels.boxAnchor = 40, "ne"
    _value_axis(plot.yValueAxis, spec, font)
    for i, s in enumerate(spec.series):
        colour = colors.HexColor(s.colour)
        plot.lines[i].strokeColor = colour
        plot.lines[i].strokeWidth = 1.5 if len(labels) > 200 else 2
        if len(labels) <= LINE_MARKERS_UP_TO:
            plot.lines[i].symbol = makeMarker("FilledCircle", size=4, fillColor=colour, strokeColor=colour)
    d.add(plot, name="chart")


def _pie(d: Drawing, spec: ChartSpec, font: str, width: float, top: float) -> None:
    values = spec.values(spec.series[0])
    labels = spec.x_labels()
    size = min(top - 20, width / 2 - 40)
    pie = Pie()
    pie.x, pie.y, pie.width, pie.height = 40, (top - size) / 2 + 4, size, size
    pie.data = [v or 0.0 for v in values]
    pie.labels = None
    pie.sideLabels = False
    pie.strokeColor = colors.white
    for i, colour in enumerate(spec.slice_colours):
        pie.slices[i].fillColor = colors.HexColor(colour)
        pie.slices[i].strokeColor = colors.white
    d.add(pie, name="chart")
    total = sum(v or 0.0 for v in values)
    pairs = [
        (colors.HexColor(c), f"{label}: {spec.format_value(v)} ({(v or 0) / total:.0%})" if total else label)
        for c, label, v in zip(spec.slice_colours, labels, values, strict=True)
    ]
    _legend(d, pairs, font, 60 + size, top / 2 + 8 * len(pairs), horizontal=False)


def _legend(d: Drawing, pairs: list[tuple[colors.Color, str]], font: str, x: float, y: float, *,
            horizontal: bool) -> None:
    legend = Legend()
    legend.colorNamePairs = pairs
    legend.fontName, legend.fontSize = font, 8
    legend.x, legend.y = x, y
    legend.dx = legend.dy = 7
    legend.deltay = 12
    legend.strokeColor = None
    if horizontal:
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.deltax = 70
        legend.x = x - 35 * len(pairs)
    else:
        legend.alignment = "right"
        legend.columnMaximum = 12
    d.add(legend, name="legend")


def _heatmap(d: Drawing, spec: ChartSpec, font: str, box: tuple[float, float, float, float]) -> None:
    xs, ys, grid = spec.matrix()
    x0, y0, w, h = box
    w -= 50  # room for the colour key
    values = [v for row in grid for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    cell_w, cell_h = w / len(xs), h / len(ys)
    cells = Group()
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            fill = colors.white if value is None else heat_colour(spec.colour_scale, value, low, high)
            # Row 0 at the top, as Plotly draws categories read from top to bottom when reversed.
            cells.add(Rect(x0 + c * cell_w, y0 + h - (r + 1) * cell_h, cell_w, cell_h, fillColor=fill,
                           strokeColor=colors.white, strokeWidth=0.3))
    d.add(cells, name="heatmap")
    for c, label in enumerate(_thin(xs)):
        if label:
            s = Group(String(0, 0, label, fontName=font, fontSize=_AXIS_FONT, textAnchor="end"))
            s.transform = (0.766, 0.643, -0.643, 0.766, x0 + (c + 0.5) * cell_w, y0 - 4)  # 40°
            d.add(s)
    y_step = max(1, -(-len(ys) // 24))
    for r, label in enumerate(ys):
        if r % y_step == 0:
            d.add(String(x0 - 3, y0 + h - (r + 0.5) * cell_h - 2, label, fontName=font, fontSize=_AXIS_FONT,
                         textAnchor="end"))
    # Colour key: the scale from low (bottom) to high (top), with both ends labelled.
    key_x, steps = x0 + w + 14, 24
    for i in range(steps):
        value = low + (high - low) * i / (steps - 1) if high > low else low
        d.add(Rect(key_x, y0 + i * h / steps, 10, h / steps + 0.2,
                   fillColor=heat_colour(spec.colour_scale, value, low, high), strokeColor=None))
    d.add(String(key_x + 13, y0, spec.format_value(low), fontName=font, fontSize=_AXIS_FONT))
    d.add(String(key_x + 13, y0 + h - 6, spec.format_value(high), fontName=font, fontSize=_AXIS_FONT))


def heat_colour(scale: tuple[str, ...], value: float, low: float, high: float) -> colors.Color:
    """The colour for ``value`` on ``scale`` (evenly spaced stops from ``low`` to ``high``)."""
    t = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    stops = [colors.HexColor(c) for c in scale]
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    a, b = stops[i], stops[i + 1]
    return colors.Color(a.red + (b.red - a.red) * f, a.green + (b.green - a.green) * f,
                        a.blue + (b.blue - a.blue) * f)
