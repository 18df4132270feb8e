"""One definition of each statistics chart, as data.

A :class:`ChartSpec` says everything a renderer needs: kind, title, axis labels, series with their
colours from one palette, and the (small) data table. The statistics page renders specs with Plotly
(``ui/charts_plotly.py``) and the reports with reportlab (``exporters/_charts.py``); both read titles,
labels, colours and values from here, so the preview and the PDF agree. No renderer is imported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from exporthub.stats.explore import DIMENSIONS, MEASURES, ExploreSpec

Kind = Literal["bar", "line", "heatmap", "histogram", "pie"]

# Tableau 10: distinguishable, print-safe, and colour-blind-friendlier than most defaults.
PALETTE: tuple[str, ...] = (
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
)
# Each cost category keeps its colour in every chart (pie and stacked bars alike).
CATEGORY_COLOURS: dict[str, str] = {"labor": PALETTE[0], "travel": PALETTE[1], "equipment": PALETTE[2],
                                    "other": PALETTE[3]}
HEAT_SCALE: tuple[str, ...] = ("#F7FBFF", "#6BAED6", "#08306B")  # low, middle, high
EMPTY_LABEL = "(none)"


@dataclass(frozen=True)
class Series:
    """One plotted column: ``column`` of the data, its legend ``name`` and its ``colour`` (#RRGGBB)."""

    column: str
    name: str
    colour: str


@dataclass(frozen=True, eq=False)
class ChartSpec:
    """A chart as data. ``x`` names the category/time column (the slice labels of a pie, the columns of
    a heatmap); ``y`` names a heatmap's row column; ``series[0]`` is a heatmap's or pie's values.

    ``value_format`` is a Python format spec for values (axis ticks, labels), e.g. ``",.0f"``.
    """

    key: str
    kind: Kind
    title: str
    x_label: str
    y_label: str
    x: str
    series: tuple[Series, ...]
    data: pa.Table
    y: str | None = None
    stacked: bool = False
    value_format: str = ",.0f"
    colour_scale: tuple[str, ...] = HEAT_SCALE
    slice_colours: tuple[str, ...] = field(default_factory=tuple)  # a pie's colour per slice
    x_order: tuple[str, ...] = ()  # a heatmap's column labels in order (default: as they first appear)
    y_order: tuple[str, ...] = ()  # a heatmap's row labels in order
    horizontal: bool = False  # bars along the y axis (long category names, e.g. zones)
    target: float | None = None  # a reference value drawn as a line (e.g. 100 % completion)

    @property
    def is_empty(self) -> bool:
        return bool(self.data.num_rows == 0)

    @property
    def x_is_time(self) -> bool:
        t = self.data.schema.field(self.x).type
        return bool(pa.types.is_date(t) or pa.types.is_timestamp(t))

    def x_labels(self) -> list[str]:
        """The x values as the text both renderers show (days ``YYYY-MM-DD``, hours ``YYYY-MM-DD HH:00``)."""
        return _labels(self.data.column(self.x).to_pylist())

    def values(self, series: Series) -> list[float | None]:
        """A series' values as floats (``None`` where the data has no value)."""
        return [None if v is None else float(v) for v in self.data.column(series.column).to_pylist()]

    def matrix(self) -> tuple[list[str], list[str], list[list[float | None]]]:
        """A heatmap's columns (x labels), rows (y labels) and values, row by row (``None`` = no data)."""
        if self.y is None:
            raise ValueError(f"chart {self.key!r} is not a heatmap")
        xs = _unique(self.x_labels())
        y_labels = _labels(self.data.column(self.y).to_pylist())
        xs = list(self.x_order) or xs
        ys = list(self.y_order) or _unique(y_labels)
        grid: list[list[float | None]] = [[None] * len(xs) for _ in ys]
        col, row = {x: i for i, x in enumerate(xs)}, {y: i for i, y in enumerate(ys)}
        values = self.values(self.series[0])
        for x, y, v in zip(self.x_labels(), y_labels, values, strict=True):
            grid[row[y]][col[x]] = v
        return xs, ys, grid

    def format_value(self, value: float | None) -> str:
        return "" if value is None else format(value, self.value_format)


def _labels(values: list[Any]) -> list[str]:
    # A timestamp column shows its time only when some value has one (hourly series); then all do.
    with_time = any(isinstance(v, dt.datetime) and (v.hour or v.minute) for v in values)
    return [_label(v, with_time) for v in values]


def _label(value: Any, with_time: bool = False) -> str:
    if value is None:
        return EMPTY_LABEL
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------- the preview's charts


# A line of up to this many points shows a marker on each (page and PDF alike); a longer one shows its
# shape better without them, and a lone point is no line at all without its marker.
LINE_MARKERS_UP_TO = 60


# A per-hour view of a long range would be a comb of more than a thousand points, slow to draw and
# unreadable: above this many hours, hours are summed into the fewest wider buckets that fit, and the
# title says so.
MAX_HOURLY_POINTS = 240
_HOUR_BUCKETS = (2, 3, 6, 12, 24)  # hours; each divides a day, so buckets start at local midnight


def hourly_bucket(points: int) -> int:
    """Hours per bucket for a per-hour view of ``points`` hours: 1 up to :data:`MAX_HOURLY_POINTS`, else
    the smallest of 2, 3, 6, 12, 24 that brings it under the cap (a day, whatever the range)."""
    if points <= MAX_HOURLY_POINTS:
        return 1
    return next((h for h in _HOUR_BUCKETS if -(-points // h) <= MAX_HOURLY_POINTS), 24)


def _sum_hours(table: pa.Table, hours: int) -> pa.Table:
    """Scans and items of each ``hours``-wide bucket (``period`` its first hour, local)."""
    rows: dict[Any, list[int]] = {}
    for period, scans, items in zip(*(table.column(c).to_pylist() for c in ("period", "scans", "items")),
                                    strict=True):
        start = period.replace(hour=period.hour - period.hour % hours, minute=0, second=0, microsecond=0)
        total = rows.setdefault(start, [0, 0])
        total[0] += scans or 0
        total[1] += items or 0
    return pa.table({"period": pa.array(list(rows), type=table.schema.field("period").type),
                     "scans": pa.array([v[0] for v in rows.values()], pa.int64()),
                     "items": pa.array([v[1] for v in rows.values()], pa.int64())})


def scans_over_time(table: pa.Table, granularity: str, timezone: str) -> ChartSpec:
    """Scans per day, or per hour; a per-hour view longer than :data:`MAX_HOURLY_POINTS` hours is summed
    into wider buckets (see :func:`hourly_bucket`), and the title and axis say so."""
    if granularity == "day":
        return ChartSpec(
            key="scans_over_time", kind="bar", title="Scans per day", x_label=f"Day ({timezone})",
            y_label="Scans", x="period", series=(Series("scans", "Scans", PALETTE[0]),), data=table,
        )
    hours = hourly_bucket(table.num_rows)
    title, x_label = "Scans per hour", f"Hour ({timezone})"
    if hours > 1:
        table = _sum_hours(table, hours)
        width = "day" if hours == 24 else f"{hours} hours"
        title = f"Scans per {width} (per-hour view of a long range, summed)"
        x_label = f"{width.capitalize() if hours == 24 else f'{hours}-hour bucket'} ({timezone})"
    return ChartSpec(
        key="scans_over_time", kind="line", title=title, x_label=x_label, y_label="Scans", x="period",
        series=(Series("scans", "Scans", PALETTE[0]),), data=table,
    )


def daily_productivity(table: pa.Table, timezone: str) -> ChartSpec:
    return ChartSpec(
        key="daily_productivity", kind="line", title="Scans per hour over time",
        x_label=f"Day ({timezone})", y_label="Scans per hour", x="day",
        series=(Series("scans_per_hour", "Scans per hour", PALETTE[4]),), data=table, value_format=",.0f",
    )


def productivity(table: pa.Table) -> ChartSpec:
    return ChartSpec(
        key="productivity", kind="bar", title="Productivity per user", x_label="User",
        y_label="Scans per hour", x="display_name",
        series=(Series("scans_per_hour", "Scans per hour", PALETTE[0]),), data=table, value_format=",.0f",
        horizontal=True,  # names down the side stay readable on a phone
    )


def zone_completion(table: pa.Table) -> ChartSpec:
    pct = pc.multiply(pc.fill_null(table.column("completion"), 0.0), 100.0)
    data = table.select(["code", "name", "never_scanned"]).append_column("completion_pct", pct)
    return ChartSpec(
        key="zone_completion", kind="bar", title="Zone completion against expected items", x_label="Zone",
        y_label="Completion (%)", x="code", series=(Series("completion_pct", "Completion (%)", PALETTE[2]),),
        data=data, value_format=",.0f", horizontal=True, target=100.0,
    )


def session_durations(table: pa.Table) -> ChartSpec:
    return ChartSpec(
        key="session_durations", kind="histogram", title="Session duration distribution",
        x_label="Session length", y_label="Sessions", x="bucket",
        series=(Series("sessions", "Sessions", PALETTE[6]),), data=table,
    )


def cost_by_category(table: pa.Table) -> ChartSpec:
    data = table.filter(pc.greater(table.column("amount"), 0.0))
    data = data.append_column("label", pc.utf8_capitalize(data.column("category")))
    cats = data.column("category").to_pylist()
    colours = tuple(CATEGORY_COLOURS.get(c, PALETTE[(4 + i) % len(PALETTE)]) for i, c in enumerate(cats))
    return ChartSpec(
        key="cost_by_category", kind="pie", title="Cost by category", x_label="Category", y_label="Cost",
        x="label", series=(Series("amount", "Cost", PALETTE[0]),), data=data, value_format=",.2f",
        slice_colours=colours,
    )


def cost_over_time(table: pa.Table) -> ChartSpec:
    series = tuple(Series(c, c.capitalize(), CATEGORY_COLOURS[c]) for c in CATEGORY_COLOURS
                   if c in table.column_names)
    return ChartSpec(
        key="cost_over_time", kind="bar", title="Cost over time by category", x_label="Day",
        y_label="Cost", x="day", series=series, data=table, stacked=True, value_format=",.0f",
    )


def cost_per_scan(table: pa.Table) -> ChartSpec:
    return ChartSpec(
        key="cost_per_scan", kind="line", title="Cost per scan", x_label="Day", y_label="Cost per scan",
        x="day", series=(Series("cost_per_scan", "Cost per scan", PALETTE[3]),), data=table,
        value_format=",.2f",
    )


def preview_charts(tables: Mapping[str, pa.Table], *, granularity: str, timezone: str) -> list[ChartSpec]:
    """Every chart of the statistics preview and report, in display order, from the query tables."""
    return [
        scans_over_time(tables["scans_over_time"], granularity, timezone),
        daily_productivity(tables["daily_productivity"], timezone),
        productivity(tables["productivity"]),
        zone_completion(tables["zone_completion"]),
        session_durations(tables["session_durations"]),
        cost_by_category(tables["cost_by_category"]),
        cost_over_time(tables["cost_over_time"]),
        cost_per_scan(tables["cost_per_scan"]),
    ]


# ---------------------------------------------------------------------- explore


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _axis_order(table: pa.Table, dimension: str) -> tuple[str, ...]:
    """A dimension's distinct values in its natural order (weekdays Monday first), as labels."""
    values = list(dict.fromkeys(table.column(dimension).to_pylist()))
    if dimension == "weekday":
        values.sort(key=lambda v: _WEEKDAYS.index(v) if v in _WEEKDAYS else len(_WEEKDAYS))
    else:
        values.sort(key=lambda v: (v is None, v))
    return tuple(_labels(values))


def explore_chart(table: pa.Table, spec: ExploreSpec) -> ChartSpec:
    """The chart that suits an explore view: a heat map for two dimensions, a line over days, else bars."""
    measure = MEASURES[spec.measure]
    first = DIMENSIONS[spec.dim1]
    value_format = {"hours": ",.1f", "cost": ",.2f"}.get(spec.measure, ",.0f")
    series = (Series(spec.measure, measure.label, PALETTE[0]),)
    if spec.dim2 is not None:
        second = DIMENSIONS[spec.dim2]
        return ChartSpec(
            key="explore", kind="heatmap", title=f"{measure.label} by {first.label.lower()} and "
            f"{second.label.lower()}", x_label=first.label, y_label=second.label, x=spec.dim1, y=spec.dim2,
            series=series, data=table, value_format=value_format,
            x_order=_axis_order(table, spec.dim1), y_order=_axis_order(table, spec.dim2),
        )
    return ChartSpec(
        key="explore", kind="line" if spec.dim1 == "day" else "bar",
        title=f"{measure.label} by {first.label.lower()}", x_label=first.label, y_label=measure.label,
        x=spec.dim1, series=series, data=table, value_format=value_format,
    )
