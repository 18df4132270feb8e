"""The statistics report: the preview's numbers and charts, in a PDF and an XLSX read back for real."""

from __future__ import annotations

import duckdb
import openpyxl
import pytest
from pypdf import PdfReader

from exporthub import charts
from exporthub.errors import PermissionDenied
from exporthub.stats import ResultCache, StatsFilter, StatsService
from tests._lake import lake_sql
from tests.exporters._support import completed_job


def lake(hub, table: str, slug: str = "demo-open") -> str:
    return lake_sql(hub.settings, slug, table)


def run(hub, variables: dict, user: str = "analyst", slug: str = "demo-open"):
    job = completed_job(hub, "statistics", variables, user=user, slug=slug)
    (path,) = [f.path for f in job.files]
    return job, path


def pdf_text(path) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(path).pages)


def test_pdf_has_every_chart_and_the_headline(demo_hub):
    job, path = run(demo_hub, {"format": "pdf"})
    text = pdf_text(path)
    con = duckdb.connect()
    scans, cost = con.execute(
        f"SELECT (SELECT count(*) FROM {lake(demo_hub, 'scans')} WHERE NOT deleted), "
        f"(SELECT sum(amount) FROM {lake(demo_hub, 'costs')})"
    ).fetchone()
    assert f"Total scans\n{scans:,}" in text or f"Total scans {scans:,}" in text
    assert f"{cost:,.2f}" in text
    for title in (
        "Statistics Report",
        "Headline figures",
        "Scans per day",
        "Scans per hour over time",
        "Productivity per user",
        "Zone completion against expected items",
        "Session duration distribution",
        "Cost by category",
        "Cost over time by category",
        "Cost per scan",
        "Data cut-off",
    ):
        assert title in text, title
    assert len(PdfReader(path).pages) >= 5
    assert not job.warnings


def test_xlsx_tables_match_the_lake(demo_hub):
    _, path = run(demo_hub, {"format": "xlsx"})
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == [
        "Summary",
        "Scans over time",
        "Scans per hour",
        "Productivity",
        "Zone completion",
        "Session durations",
        "Cost by category",
        "Cost over time",
        "Cost per scan",
        "About",
    ]
    con = duckdb.connect()
    scans, items, sessions = con.execute(
        f"SELECT count(*), sum(quantity), count(DISTINCT session_id) FROM {lake(demo_hub, 'scans')} "
        "WHERE NOT deleted"
    ).fetchone()
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert summary["Total scans"] == scans and summary["Items"] == items

    def table(name):
        rows = [r for r in wb[name].iter_rows(values_only=True) if any(v is not None for v in r)]
        return rows[0], rows[1:]

    header, body = table("Productivity")
    assert sum(r[header.index("Scans")] for r in body) == scans
    header, body = table("Scans over time")
    assert body[-1][0] == "Total" and body[-1][header.index("Scans")] == scans
    header, body = table("Zone completion")
    live = con.execute(f"SELECT count(*) FROM {lake(demo_hub, 'zones')} WHERE NOT deleted").fetchone()[0]
    assert len(body) == live
    assert sum(r[header.index("Items")] for r in body) <= items  # deleted zones' items are not listed
    assert any(r[header.index("Never scanned")] is True for r in body)
    header, body = table("Session durations")
    closed = con.execute(
        f"SELECT count(*) FROM {lake(demo_hub, 'zone_sessions')} WHERE NOT deleted AND ended_at IS NOT NULL"
    ).fetchone()[0]
    assert body[-1][header.index("Sessions")] == closed
    header, body = table("Cost by category")
    assert body[-1][header.index("Amount")] == pytest.approx(
        con.execute(f"SELECT sum(amount) FROM {lake(demo_hub, 'costs')}").fetchone()[0], abs=1e-6
    )
    assert sessions > 0


def test_report_from_the_view_has_the_previews_numbers(demo_hub):
    """The page's filters as variables: the report's tables equal the preview's, chart by chart."""
    svc = StatsService(demo_hub.db, demo_hub.settings, cache=ResultCache())
    options = svc.filter_options("analyst", "demo-open")
    view = StatsFilter(
        date_range="custom",
        date_from=__import__("datetime").date(2026, 10, 20),
        date_to=__import__("datetime").date(2026, 11, 20),
        areas=options.areas[:3],
        users=tuple(list(options.users)[:10]),
        include_deleted=True,
    )
    preview = svc.preview("analyst", "demo-open", view, granularity="hour")
    _, path = run(demo_hub, {**view.to_variables(), "granularity": "hour", "format": "xlsx"})
    wb = openpyxl.load_workbook(path, read_only=True)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=2, values_only=True) if r[0]}
    h = preview.headline
    assert (summary["Total scans"], summary["Items"], summary["Sessions"]) == (
        h["scans"],
        h["items"],
        h["sessions"],
    )
    assert summary["Cost"] == pytest.approx(h["cost"], abs=1e-6)
    hourly = [
        r for r in wb["Scans over time"].iter_rows(min_row=2, values_only=True) if r[0] not in (None, "Total")
    ]
    assert len(hourly) == preview.tables["scans_over_time"].num_rows
    assert [r[1] for r in hourly] == preview.tables["scans_over_time"].column("scans").to_pylist()
    # …and the PDF of the same view carries the same chart titles the page draws.
    _, pdf = run(demo_hub, {**view.to_variables(), "granularity": "hour", "format": "pdf"})
    text = pdf_text(pdf)
    for spec in charts.preview_charts(preview.tables, granularity="hour", timezone="Europe/Berlin"):
        assert spec.title in text


def test_unknown_user_or_area_is_refused_by_name(demo_hub):
    from exporthub.errors import InvalidVariable

    service = demo_hub.service()
    for key, value in (("users", ["nobody"]), ("areas", ["Atlantis"]), ("granularity", "minute")):
        with pytest.raises(InvalidVariable) as err:
            service.start("analyst", "demo-open", "statistics", {key: value})
        assert err.value.key == key


def test_only_members_who_may_start(demo_hub):
    service = demo_hub.service()
    for user, slug in (("viewer", "demo-open"), ("outsider", "demo-open"), ("analyst", "demo-closed")):
        with pytest.raises(PermissionDenied):
            service.start(user, slug, "statistics", {"format": "pdf"})
