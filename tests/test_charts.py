"""Plotly (page) and reportlab (PDF) draw each chart exactly as its shared ChartSpec says."""

from __future__ import annotations

import datetime as dt
import html
import io
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pypdf import PdfReader
from reportlab.graphics import renderPDF

from exporters._charts import drawing, heat_colour
from exporthub import charts
from exporthub.stats import ExploreSpec, ResultCache, StatsFilter, StatsService
from ui.charts_plotly import figure

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def hexval(colour) -> str:
    return "#" + colour.hexval()[2:].upper()


@pytest.fixture
def specs(demo_hub) -> list[charts.ChartSpec]:
    svc = StatsService(demo_hub.db, demo_hub.settings, cache=ResultCache(), clock=lambda: NOW)
    out = []
    for granularity in ("day", "hour"):
        preview = svc.preview("analyst", "demo-open", StatsFilter(), granularity=granularity)
        out += charts.preview_charts(preview.tables, granularity=granularity, timezone="Europe/Berlin")
    for spec in (
        ExploreSpec("scans", "day"),
        ExploreSpec("hours", "user"),
        ExploreSpec("scans", "weekday", "hour"),
    ):
        out.append(charts.explore_chart(svc.explore("analyst", "demo-open", StatsFilter(), spec).table, spec))
    return out


def test_every_kind_is_covered(specs):
    assert {s.kind for s in specs} == {"bar", "line", "heatmap", "histogram", "pie"}
    assert all(not s.is_empty for s in specs)


def _shown(values) -> list:  # type: ignore[no-untyped-def]
    """Labels as Plotly shows them: it decodes the entities the figure escapes its text with."""
    return [html.unescape(v) if isinstance(v, str) else v for v in values]


def test_plotly_matches_the_spec(specs):
    for spec in specs:
        fig = figure(spec)
        assert fig.layout.title.text == spec.title
        if spec.kind == "pie":
            (trace,) = fig.data
            assert _shown(trace.labels) == spec.x_labels()
            assert list(trace.values) == spec.values(spec.series[0])
            assert list(trace.marker.colors) == list(spec.slice_colours)
            assert trace.texttemplate == "%{label}<br>%{percent:.1%}"  # one precision for every slice
            continue
        if spec.horizontal:  # zones, users: names down the side, the value along (zones: a 100 % line)
            assert (fig.layout.yaxis.title.text, fig.layout.xaxis.title.text) == (spec.x_label, spec.y_label)
            (trace,) = fig.data
            assert trace.orientation == "h" and _shown(trace.y) == spec.x_labels()
            assert list(trace.x) == spec.values(spec.series[0])
            targets = [] if spec.target is None else [("line", spec.target)]
            assert [(s.type, s.x0) for s in fig.layout.shapes] == targets
            continue
        assert fig.layout.xaxis.title.text == spec.x_label
        assert fig.layout.yaxis.title.text == spec.y_label
        if spec.kind == "heatmap":
            (trace,) = fig.data
            xs, ys, grid = spec.matrix()
            assert (_shown(trace.x), _shown(trace.y)) == (xs, ys)
            assert [list(r) for r in trace.z] == grid
            assert [c for _, c in trace.colorscale] == list(spec.colour_scale)
            continue
        assert [t.name for t in fig.data] == [s.name for s in spec.series]
        assert fig.layout.yaxis.rangemode == "tozero"
        for trace, series in zip(fig.data, spec.series, strict=True):
            assert _shown(trace.x) == spec.x_labels()
            assert list(trace.y) == spec.values(series)
            as_line = spec.kind == "line" or trace.type == "scatter"  # long bar series draw as an area
            colour = trace.line.color if as_line else trace.marker.color
            assert colour == series.colour
        assert fig.layout.barmode == ("stack" if spec.stacked else "group")


def test_a_long_daily_series_is_an_area_not_a_comb_of_bars():
    days = pa.table({"period": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(400)]),
                     "scans": pa.array(range(400))})
    spec = charts.scans_over_time(days, "day", "UTC")
    (trace,) = figure(spec).data
    assert (trace.type, trace.fill) == ("scatter", "tozeroy")
    (trace,) = figure(charts.scans_over_time(days.slice(0, 30), "day", "UTC")).data
    assert trace.type == "bar"


def test_cost_charts_name_the_currency():
    table = pa.table({"day": pa.array([dt.date(2026, 1, 1)]), "cost_per_scan": pa.array([1.5])})
    fig = figure(charts.cost_per_scan(table), currency="CHF")
    assert fig.layout.yaxis.title.text == "Cost per scan (CHF)"


def _strings(node) -> list[str]:
    from reportlab.graphics.shapes import Group, String

    if isinstance(node, String):
        return [node.text]
    if isinstance(node, Group):
        return [t for child in node.contents for t in _strings(child)]
    return []


def test_reportlab_matches_the_spec(specs):
    for spec in specs:
        d = drawing(spec)
        assert d.title.text == spec.title
        if spec.kind == "pie":
            assert list(d.chart.data) == [v or 0.0 for v in spec.values(spec.series[0])]
            assert [hexval(d.chart.slices[i].fillColor) for i in range(len(spec.slice_colours))] == [
                c.upper() for c in spec.slice_colours
            ]
            assert [name.split(":")[0] for _, name in d.legend.colorNamePairs] == spec.x_labels()
            continue
        assert d.x_label.text == spec.x_label
        assert _strings(d.y_label) == [spec.y_label]
        if spec.kind == "heatmap":
            xs, ys, grid = spec.matrix()
            cells = d.heatmap.contents
            assert len(cells) == len(xs) * len(ys)
            values = [v for row in grid for v in row]
            present = [v for v in values if v is not None]
            low, high = min(present), max(present)
            for cell, value in zip(cells, values, strict=True):
                if value is not None:
                    assert hexval(cell.fillColor) == hexval(heat_colour(spec.colour_scale, value, low, high))
            assert hexval(cells[values.index(low)].fillColor) == spec.colour_scale[0].upper()
            assert hexval(cells[values.index(high)].fillColor) == spec.colour_scale[-1].upper()
            continue
        if spec.kind == "line":
            for i, series in enumerate(spec.series):
                expected = [(x, v) for x, v in enumerate(spec.values(series)) if v is not None]
                assert list(d.chart.data[i]) == expected
                assert hexval(d.chart.lines[i].strokeColor) == series.colour.upper()
            shown = [d.chart.xValueAxis.labelTextFormat(v) for v in d.chart.xValueAxis.valueSteps]
        else:
            assert [list(row) for row in d.chart.data] == [spec.values(s) for s in spec.series]
            for i, series in enumerate(spec.series):
                assert hexval(d.chart.bars[i].fillColor) == series.colour.upper()
            assert (d.chart.categoryAxis.style == "stacked") is spec.stacked
            shown = [n for n in d.chart.categoryAxis.categoryNames if n]
            assert len(d.chart.categoryAxis.categoryNames) == len(spec.x_labels())
        labels = spec.x_labels()
        assert shown and all(s in labels for s in shown)
        assert labels.index(shown[0]) == 0  # the first label is always printed
        if len(spec.series) > 1:
            assert [n for _, n in d.legend.colorNamePairs] == [s.name for s in spec.series]


def test_pdf_text_of_a_drawing_has_title_and_axis_labels(specs):
    for spec in specs[:8]:
        text = PdfReader(io.BytesIO(renderPDF.drawToString(drawing(spec)))).pages[0].extract_text()
        for expected in (spec.title, spec.x_label if spec.kind != "pie" else spec.x_labels()[0]):
            assert expected in text, (spec.key, expected, text[:200])


def test_empty_chart_says_so():
    empty = charts.productivity(
        pa.table({"display_name": pa.array([], pa.string()), "scans_per_hour": pa.array([], pa.float64())})
    )
    assert empty.is_empty
    assert drawing(empty).empty.text == "No data for these filters"
    assert any("No data" in a.text for a in figure(empty).layout.annotations)


def test_category_colours_are_shared_between_pie_and_stacked_bars(specs):
    pie = next(s for s in specs if s.key == "cost_by_category")
    bars = next(s for s in specs if s.key == "cost_over_time")
    by_name = {s.name.lower(): s.colour for s in bars.series}
    for label, colour in zip(pie.x_labels(), pie.slice_colours, strict=True):
        assert by_name[label.lower()] == colour == charts.CATEGORY_COLOURS[label.lower()]


def test_hourly_labels_carry_the_time_daily_ones_do_not(specs):
    daily = next(s for s in specs if s.key == "scans_over_time" and s.kind == "bar")
    hourly = next(s for s in specs if s.key == "scans_over_time" and s.kind == "line")
    assert all(len(x) == 10 for x in daily.x_labels())
    assert all(len(x) == 16 for x in hourly.x_labels())


def test_heatmap_axes_follow_the_dimensions_natural_order():
    # Rows as they come from the query (by the first dimension): the first zone lacks "Mon" and hour 7.
    table = pa.table(
        {
            "zone": ["Z-1", "Z-1", "Z-2", "Z-2", "Z-2"],
            "weekday": ["Wed", "Sun", "Mon", "Wed", "Sun"],
            "scans": [1, 2, 3, 4, 5],
        }
    )
    spec = charts.explore_chart(table, ExploreSpec("scans", "zone", "weekday"))
    xs, ys, grid = spec.matrix()
    assert (xs, ys) == (["Z-1", "Z-2"], ["Mon", "Wed", "Sun"])
    assert grid == [[None, 3.0], [1.0, 4.0], [2.0, 5.0]]
    hours = pa.table({"hour": [9, 7, 8], "kind": ["count", "audit", "count"], "scans": [1, 2, 3]})
    xs, ys, _ = charts.explore_chart(hours, ExploreSpec("scans", "hour", "kind")).matrix()
    assert (xs, ys) == (["7", "8", "9"], ["audit", "count"])


def _value_ticks(spec, tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    """The numbers printed on the chart, read back from a PDF of it (the only numbers are the ticks)."""
    from pypdf import PdfReader
    from reportlab.graphics import renderPDF

    path = tmp_path / "chart.pdf"
    renderPDF.drawToFile(drawing(spec), str(path))
    words = PdfReader(path).pages[0].extract_text().split()
    return [w for w in words if w.replace(",", "").replace(".", "").isdigit()]


@pytest.mark.parametrize("kind", ["bar", "line"])
def test_small_counts_get_whole_distinct_ticks(kind, tmp_path):
    import pyarrow as pa

    spec = charts.ChartSpec(
        key="t", kind=kind, title="t", x_label="x", y_label="y", x="day",
        series=(charts.Series("n", "n", "#336699"),),
        data=pa.table({"day": ["a", "b", "c"], "n": [0, 1, 1]}), value_format=",.0f",
    )
    ticks = _value_ticks(spec, tmp_path)
    assert ticks and len(ticks) == len(set(ticks)), ticks
    assert ticks[0] == "0" and ticks[-1] == "1"


def test_nice_scale_rounds_up_to_a_1_2_5_step():
    from exporters._charts import nice_scale

    assert nice_scale(1, whole=True) == (1, 1)
    assert nice_scale(7, whole=True) == (8, 2)
    assert nice_scale(2_480, whole=True) == (2_500, 500)
    assert nice_scale(0.37, whole=False) == pytest.approx((0.4, 0.1))
    assert nice_scale(0, whole=True) == (1, 1)


def test_people_and_zones_are_bars_along_the_side(specs):
    # Long names (users, zones) read on a phone when they run down the side, not under the axis.
    assert {s.key for s in specs if s.horizontal} == {"productivity", "zone_completion"}
    assert next(s for s in specs if s.key == "zone_completion").target == 100.0


def _hours(n: int) -> pa.Table:
    start = dt.datetime(2026, 1, 1)
    return pa.table({"period": [start + dt.timedelta(hours=i) for i in range(n)],
                     "scans": list(range(n)), "items": [2 * i for i in range(n)]})


def test_a_short_per_hour_view_keeps_every_hour():
    spec = charts.scans_over_time(_hours(charts.MAX_HOURLY_POINTS), "hour", "UTC")
    assert spec.title == "Scans per hour" and spec.data.num_rows == charts.MAX_HOURLY_POINTS


def test_a_long_per_hour_view_is_summed_into_fewer_buckets_and_says_so():
    table = _hours(1_400)  # about two months of hours: the comb the issue saw
    spec = charts.scans_over_time(table, "hour", "Europe/Berlin")
    assert spec.data.num_rows <= charts.MAX_HOURLY_POINTS
    assert spec.title == "Scans per 6 hours (per-hour view of a long range, summed)"
    assert spec.x_label == "6-hour bucket (Europe/Berlin)"
    # Nothing is lost: the buckets add up to the hours, each starts at 00, 06, 12 or 18 o'clock.
    assert sum(spec.data.column("scans").to_pylist()) == sum(table.column("scans").to_pylist())
    assert sum(spec.data.column("items").to_pylist()) == sum(table.column("items").to_pylist())
    assert {p.hour for p in spec.data.column("period").to_pylist()} == {0, 6, 12, 18}
    assert spec.data.column("scans").to_pylist()[0] == sum(range(6))


def test_a_very_long_per_hour_view_is_summed_per_day():
    spec = charts.scans_over_time(_hours(24 * 200), "hour", "UTC")
    assert spec.data.num_rows == 200 and spec.title.startswith("Scans per day")
    assert all(len(x) == 10 for x in spec.x_labels())  # days, without a time


def test_a_lone_day_is_shown_with_a_day_either_side_and_a_bar_a_day_wide():
    # Plotly alone zooms the date axis to a millisecond around one point and stretches its bar across.
    one_day = pa.table({"period": pa.array([dt.date(2026, 11, 30)]), "scans": pa.array([4])})
    fig = figure(charts.scans_over_time(one_day, "day", "UTC"))
    day_ms = 86_400_000
    assert [str(v)[:10] for v in fig.layout.xaxis.range] == ["2026-11-29", "2026-12-01"]
    assert fig.layout.xaxis.dtick == day_ms and fig.data[0].width == 0.8 * day_ms
    hour = pa.table({"period": pa.array([dt.datetime(2026, 11, 30, 8)]), "scans": pa.array([4])})
    fig = figure(charts.scans_over_time(hour, "hour", "UTC"))
    assert [str(v)[11:16] for v in fig.layout.xaxis.range] == ["07:00", "09:00"]
    two_days = pa.table({"period": pa.array([dt.date(2026, 11, 29), dt.date(2026, 11, 30)]),
                         "scans": pa.array([4, 5])})
    fig = figure(charts.scans_over_time(two_days, "day", "UTC"))
    assert fig.layout.xaxis.range is None and fig.data[0].width is None  # Plotly spaces them itself


def test_value_axes_tick_with_the_decimals_they_have_and_hover_in_the_values_format():
    days = pa.table({"day": pa.array([dt.date(2026, 11, 29), dt.date(2026, 11, 30)]),
                     "scans_per_hour": pa.array([1.6, 0.4])})
    spec = charts.daily_productivity(days, "UTC")
    fig = figure(spec)
    # ",.0f" on the ticks would label 0.5 and 1 both "1", and put 1.6 above the tick saying "2".
    assert fig.layout.yaxis.tickformat == ",~f" and fig.layout.yaxis.hoverformat == spec.value_format


def test_the_pdf_draws_a_lone_day_of_a_line_as_a_marker_in_the_middle(tmp_path):
    from reportlab.graphics.widgets.markers import Marker

    one_day = pa.table({"day": pa.array([dt.date(2026, 11, 30)]), "scans_per_hour": pa.array([1.6])})
    d = drawing(charts.daily_productivity(one_day, "UTC"))
    axis = d.chart.xValueAxis
    assert (axis.valueMin, axis.valueMax) == (-1, 1)  # the day between two empty ones, not on the edge
    chart = d.chart
    markers = [n for n in _flatten(chart.draw()) if isinstance(n, Marker)]
    assert len(markers) == 1  # without a marker a one-point line draws nothing at all
    (dot,) = markers
    assert abs(dot.x - (chart.x + chart.width / 2)) < 1
    renderPDF.drawToFile(d, str(tmp_path / "lone.pdf"))  # and reportlab renders it
    assert (tmp_path / "lone.pdf").stat().st_size > 0


def _flatten(node):  # type: ignore[no-untyped-def]
    from reportlab.graphics.shapes import Group

    if isinstance(node, Group):
        return [leaf for child in node.contents for leaf in _flatten(child)]
    return [node]
