"""The statistics page in Streamlit's AppTest: who sees which numbers and buttons, and what they start."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

import ui.session
from exporthub.errors import PermissionDenied
from exporthub.stats import FilterOptions, StatsFilter, StatsService
from tests._lake import lake_sql
from tests.pages.conftest import shown
from ui import stats_view

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "statistics.py")


def open_page(hub, user: str, project: str = "demo-open", *, charts_at_once: bool = True) -> AppTest:
    """The page as ``user`` sees it. AppTest has no browser to ask for the charts after the first paint,
    so by default they are drawn in the full run (the deferral is tested below, and in Chromium)."""
    ui.session.use_services(hub.service())
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["user"] = user
    at.session_state["project"] = project
    if charts_at_once:
        at.session_state[stats_view.CHARTS_AT_ONCE] = True
    at.run()
    assert not at.exception, at.exception
    return at


def lake_scans(hub, where: str = "NOT deleted") -> int:
    source = lake_sql(hub.settings, "demo-open", "scans")
    return int(duckdb.connect().execute(f"SELECT count(*) FROM {source} WHERE {where}").fetchone()[0])


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def chart_titles(at: AppTest) -> list[str]:
    import json

    titles = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        titles.append(spec["layout"]["title"]["text"])
    return titles


def titles_in_every_tab(at: AppTest) -> dict[str, list[str]]:
    """The chart titles drawn with each chart tab open (only the open tab's charts are drawn)."""
    drawn = {}
    for tab in ("Activity", "People and zones", "Cost"):
        at.session_state["stats-chart-tab"] = tab
        at.run()
        assert not at.exception, at.exception
        drawn[tab] = [t for t in chart_titles(at) if not t.startswith("Scan count by")]
    return drawn


def test_only_the_open_tab_draws_its_charts(demo_hub):
    at = open_page(demo_hub, "analyst")
    drawn = titles_in_every_tab(at)
    assert drawn["Activity"] == ["Scans per day", "Scans per hour over time", "Session duration distribution"]
    assert drawn["People and zones"] == ["Productivity per user", "Zone completion against expected items"]
    assert drawn["Cost"] == ["Cost by category", "Cost over time by category", "Cost per scan"]


def test_a_full_run_sends_the_figures_first_and_the_rest_on_the_browsers_request(demo_hub):
    """With deferral on, a run draws the figures, holds the place of everything below them and mounts
    the component that asks (once painted) for the run that draws the rest; that run mounts no
    component, so it asks no more."""
    at = open_page(demo_hub, "analyst", charts_at_once=False)
    assert metric(at, "Total scans") == f"{lake_scans(demo_hub):,}"
    # Neither the report button, nor the tabs' charts, nor Explore: one held place.
    assert not at.get("plotly_chart") and not at.dataframe and not at.tabs
    assert "stats-generate" not in {b.key for b in at.button}
    assert {b.key for b in at.selectbox} == {"stats-date-range"}  # the filters' only (in their popover)
    assert shown(at.caption).count("Drawing the charts…") == 1
    assert at.main.children[len(at.main.children) - 1].key == "stats-after-paint"  # the page's last element
    at.session_state["stats-charts-released"] = True  # what the component's request does, before its run
    at.run()
    assert not at.exception, at.exception
    assert chart_titles(at)[:3] == ["Scans per day", "Scans per hour over time", "Session duration distribution"]
    assert at.dataframe and "Drawing the charts…" not in shown(at.caption)
    assert "stats-generate" in {b.key for b in at.button}
    assert "stats-after-paint" not in [e.key for e in at.main.children.values()]
    at.session_state["stats-granularity"] = "hour"  # the next run shows the figures first again
    at.run()
    assert not at.get("plotly_chart") and shown(at.caption).count("Drawing the charts…") == 1


def test_a_run_that_holds_the_rest_keeps_its_widgets_values(demo_hub):
    at = open_page(demo_hub, "analyst", charts_at_once=False)
    at.session_state["stats-charts-released"] = True
    at.run()
    at.selectbox(key="stats-report-format").set_value("xlsx").run()  # a control that keeps the charts
    # Explore's widgets rerun their fragment in a browser; AppTest runs the page, so it asks as a browser would.
    at.session_state["stats-charts-released"] = True
    at.selectbox(key="explore-measure").set_value("quantity").run()
    at.session_state["stats-charts-released"] = True
    at.selectbox(key="explore-dim1").set_value("zone").run()
    # A filter changes: the run that follows holds the widgets' place and does not draw them…
    at.session_state["stats-granularity"] = "hour"
    at.run()
    assert {b.key for b in at.selectbox} == {"stats-date-range"}
    assert shown(at.caption).count("Drawing the charts…") == 1
    # …and the run the browser then asks for draws them with the values chosen before.
    at.session_state["stats-charts-released"] = True
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="stats-report-format").value == "xlsx"
    assert (at.selectbox(key="explore-measure").value, at.selectbox(key="explore-dim1").value) == (
        "quantity", "zone")
    assert any(t.startswith("Quantity by zone") for t in chart_titles(at))


def test_cost_figures_carry_the_project_currency(demo_hub):
    at = open_page(demo_hub, "analyst")
    labels = [m.label for m in at.metric]
    assert "Cost (EUR)" in labels and "Cost per scan (EUR)" in labels  # the default
    from sqlalchemy import update

    from exporthub.models import Project

    with demo_hub.db.write() as s:
        s.execute(update(Project).where(Project.slug == "demo-open").values(currency="CHF"))
    at = open_page(demo_hub, "analyst")
    assert "Cost (CHF)" in [m.label for m in at.metric]
    at.session_state["stats-chart-tab"] = "Cost"
    at.run()
    import json

    axes = [
        json.loads(c.proto.spec)["layout"].get("yaxis", {}).get("title", {}).get("text")
        for c in at.get("plotly_chart")
    ]
    assert "Cost per scan (CHF)" in axes


def test_analyst_sees_charts_and_starts_the_report_with_the_view(demo_hub):
    at = open_page(demo_hub, "analyst")
    assert metric(at, "Total scans") == f"{lake_scans(demo_hub):,}"
    titles = [t for tab in titles_in_every_tab(at).values() for t in tab]
    at.session_state["stats-chart-tab"] = "Activity"
    at.run()
    for title in (
        "Scans per day",
        "Productivity per user",
        "Zone completion against expected items",
        "Session duration distribution",
        "Cost by category",
        "Cost per scan",
    ):
        assert title in titles
    assert any("Data cut-off" in c.value for c in at.caption)

    # Narrow the view: two zones, per hour. Every figure follows the filter.
    zones = at.multiselect(key="stats-zones").options[:2]
    at.multiselect(key="stats-zones").set_value(zones).run()
    at.segmented_control(key="stats-granularity").set_value("hour").run()
    assert not at.exception, at.exception
    ids = (
        duckdb.connect()
        .execute(
            f"SELECT list(zone_id) FROM "
            f"{lake_sql(demo_hub.settings, 'demo-open', 'zones')} "
            "WHERE code IN (SELECT unnest(?))",
            [zones],
        )
        .fetchone()[0]
    )
    expected = lake_scans(demo_hub, f"NOT deleted AND zone_id IN ({','.join(map(str, ids))})")
    assert metric(at, "Total scans") == f"{expected:,}"
    assert "Scans per hour" in chart_titles(at)
    # Beside the Filters button, what they are set to now.
    assert f"All time · per hour · zones {zones[0]}, {zones[1]} · all users" in shown(at.caption)

    at.button(key="stats-generate").click().run()
    assert not at.exception, at.exception
    assert any("job #" in s for s in shown(at.success)), shown(at.error)
    job = demo_hub.service().list("analyst", "demo-open", types=["statistics"])[0]
    assert job.variables["zones"] == sorted(zones)
    assert job.variables["granularity"] == "hour"
    assert job.variables["format"] == "pdf"
    assert job.variables["dateRange"] == "all" and job.variables["includeDeleted"] is False


def test_generate_twice_shows_the_refusal(demo_hub):
    at = open_page(demo_hub, "analyst")
    at.button(key="stats-generate").click().run()
    at.button(key="stats-generate").click().run()
    assert any("already running" in e for e in shown(at.error))


def test_the_report_button_keeps_the_charts_and_its_message_stays_until_the_view_changes(demo_hub):
    at = open_page(demo_hub, "analyst", charts_at_once=False)
    at.session_state["stats-charts-released"] = True  # the browser's request: the button is drawn
    at.run()
    # The button leaves the view as it is: its run draws the charts at once, with no after-paint request.
    at.button(key="stats-generate").click().run()
    said = [s for s in shown(at.success) if "started as job #" in s]
    assert len(said) == 1, shown(at.error)
    assert chart_titles(at)[:1] == ["Scans per day"] and "Drawing the charts…" not in shown(at.caption)
    assert "stats-after-paint" not in [e.key for e in at.main.children.values()]
    # The same view later (a run that holds the place, then the one that draws): still said.
    at.run()
    assert shown(at.caption).count("Drawing the charts…") == 1
    at.session_state["stats-charts-released"] = True
    at.run()
    assert [s for s in shown(at.success) if "started as job #" in s] == said
    # Another format is another view: the message was not about it. Changing it keeps the charts too.
    at.selectbox(key="stats-report-format").set_value("xlsx").run()
    assert not any("started as job #" in s for s in shown(at.success))
    assert "Drawing the charts…" not in shown(at.caption)


def test_explore_shows_table_and_exports_the_view(demo_hub):
    at = open_page(demo_hub, "analyst")
    at.selectbox(key="explore-measure").set_value("quantity").run()
    at.selectbox(key="explore-dim1").set_value("zone").run()
    at.selectbox(key="explore-dim2").set_value("kind").run()
    assert not at.exception, at.exception
    assert any(t.startswith("Quantity by zone and session kind") for t in chart_titles(at))
    table = at.dataframe[0].value
    qty = (
        duckdb.connect()
        .execute(
            f"SELECT sum(quantity) FROM {lake_sql(demo_hub.settings, 'demo-open', 'scans')} WHERE NOT deleted"
        )
        .fetchone()[0]
    )
    assert int(table["quantity"].sum()) == qty
    assert list(table.columns) == ["zone", "kind", "quantity"]

    at.selectbox(key="explore-format").set_value("xlsx").run()
    at.button(key="explore-export").click().run()
    assert any("job #" in s for s in shown(at.success)), shown(at.error)
    job = demo_hub.service().list("analyst", "demo-open", types=["explore"])[0]
    assert (job.variables["measure"], job.variables["dim1"], job.variables["dim2"]) == (
        "quantity",
        "zone",
        "kind",
    )
    assert job.variables["format"] == "xlsx"


def test_cost_offers_only_dimensions_that_fit(demo_hub):
    at = open_page(demo_hub, "analyst")
    at.selectbox(key="explore-measure").set_value("cost").run()
    assert "hour" not in at.selectbox(key="explore-dim1").options
    assert "kind" not in at.selectbox(key="explore-dim2").options


def test_viewer_sees_charts_but_cannot_generate(demo_hub):
    at = open_page(demo_hub, "viewer")
    assert metric(at, "Total scans") == f"{lake_scans(demo_hub):,}"
    assert "Cost by category" in titles_in_every_tab(at)["Cost"]
    keys = {b.key for b in at.button}
    assert "stats-generate" not in keys and "explore-export" not in keys


def test_outsider_cannot_reach_demo_open_numbers(demo_hub):
    at = open_page(demo_hub, "outsider")
    assert not at.metric and not at.get("plotly_chart")
    # The domain itself refuses, whatever a page does.
    with pytest.raises(PermissionDenied):
        StatsService(demo_hub.db, demo_hub.settings).preview("outsider", "demo-open", StatsFilter())


def test_figures_are_built_once_per_chart_and_data(demo_hub, monkeypatch):
    """A rerun or a return to a tab sends the built figures again; new data builds them anew."""
    import ui.charts_plotly

    ui.charts_plotly.FIGURES.clear()
    built: list[str] = []
    real = ui.charts_plotly.figure

    def counting(spec, **kwargs):
        built.append(spec.key)
        return real(spec, **kwargs)

    monkeypatch.setattr(ui.charts_plotly, "figure", counting)
    at = open_page(demo_hub, "analyst")
    # The explore chart is cached too, by its own table's key: built once here, not on the reruns below.
    assert built.count("explore") == 1
    built.remove("explore")
    assert built == ["scans_over_time", "daily_productivity", "session_durations"]
    first = chart_titles(at)
    at.run()
    at.session_state["stats-chart-tab"] = "Cost"
    at.run()
    at.session_state["stats-chart-tab"] = "Activity"
    at.run()
    assert not at.exception, at.exception
    assert chart_titles(at) == first
    assert built == ["scans_over_time", "daily_productivity", "session_durations",
                     "cost_by_category", "cost_over_time", "cost_per_scan"]
    at.session_state["stats-granularity"] = "hour"  # other numbers: the open tab's figures are built
    at.run()
    assert built[6:] == ["scans_over_time", "daily_productivity", "session_durations"]
    at.selectbox(key="explore-measure").set_value("quantity").run()  # another explore table: built anew
    assert built[9:] == ["explore"]


def test_the_filters_line_names_what_is_chosen_and_counts_long_lists():
    options = FilterOptions(zones=("Z-1", "Z-2"), areas=("North",),
                            users={"mia": "Mia Meyer", "tom": "Tom"})

    def line(granularity: str = "day", **filters: object) -> str:
        return stats_view.describe(stats_view.View(StatsFilter(**filters), granularity), options)

    assert line() == "All time · per day · all zones · all users"
    assert line("hour", date_range="last7days", users=("mia",)) == (
        "Last 7 days · per hour · all zones · users Mia Meyer")
    assert line(areas=("North",), include_deleted=True) == (
        "All time · per day · areas North · all users · deleted included")
    assert line(zones=("A", "B", "C", "D")) == "All time · per day · 4 zones · all users"
    custom = line(date_range="custom", date_from=date(2026, 11, 2), date_to=date(2026, 11, 30))
    assert custom.startswith("02 Nov 2026 – 30 Nov 2026 · ")



def test_a_custom_range_shows_its_refusal_on_the_page_and_draws_nothing_else(demo_hub):
    at = open_page(demo_hub, "analyst")
    at.selectbox(key="stats-date-range").set_value("custom").run()
    at.date_input(key="stats-dates").set_value((date(2026, 11, 20), date(2026, 11, 30))).run()
    assert not at.exception, at.exception
    assert "20 Nov 2026 – 30 Nov 2026 · per day · all zones · all users" in shown(at.caption)
    at.date_input(key="stats-dates").set_value((date(2026, 11, 20),)).run()  # the last day not picked yet
    assert "Pick the last day of the range under **Filters**." in [c.value for c in at.caption]
    assert not at.metric and not at.error
    at.date_input(key="stats-dates").set_value((date(2026, 11, 30), date(2026, 11, 20))).run()  # backwards
    assert not at.exception, at.exception
    assert "the end date is before the start date" in shown(at.error)[0] and not at.metric
