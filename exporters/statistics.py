"""Statistics report: the statistics page's charts and their tables, for the chosen filters.

The numbers come from :mod:`exporthub.stats.queries` and the charts from :mod:`exporthub.charts`,
exactly what the statistics page previews, so a report generated "from this view" shows the same
data, titles, axes and colours. PDF: charts (reportlab, no display needed) each followed by its table.
XLSX: one sheet per table plus a Summary of the headline figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from exporters._result import WriteResult
from exporters._stats_tables import ReportTable, label, totals
from exporters._tabular import about
from exporters._xlsx import Sheet, write_xlsx_tables
from exporters.registry import BaseExporter
from exporthub import charts
from exporthub.context import JobContext
from exporthub.stats import PREVIEW_QUERIES, QUERIES, StatsFilter, cubes
from exporthub.stats.queries import cube_name, query_params

# The order and wording of the headline figures, in the report and on the page alike.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("scans", "Total scans", ",d"),
    ("items", "Items", ",d"),
    ("active_users", "Active users", ",d"),
    ("sessions", "Sessions", ",d"),
    ("hours", "Hours worked", ",.1f"),
    ("cost", "Cost", ",.2f"),
    ("cost_per_scan", "Cost per scan", ",.3f"),
)
# Above this many rows a chart's table stays in the XLSX only: the PDF is for reading.
PDF_TABLE_ROWS = 100


def compute_tables(ctx: JobContext) -> dict[str, pa.Table]:
    """Every preview query for the job's variables, reporting progress between them."""
    scope = StatsFilter.from_variables(ctx.variables).resolve(ctx.project.timezone, ctx.started_at)
    granularity = ctx.variables.get("granularity") or "day"
    tables: dict[str, pa.Table] = {}
    if ctx.snapshot is not None:  # the scan cube from the lake's kept file cubes, as the preview does
        cubes.provide(ctx.sql(), ctx.settings, ctx.snapshot, scope, cube_name(scope))
    for i, name in enumerate(PREVIEW_QUERIES, start=1):
        tables[name] = QUERIES[name](ctx.sql(), scope, **query_params(name, granularity))
        ctx.progress(5 + 55 * i / len(PREVIEW_QUERIES))
    return tables


def report_tables(tables: Mapping[str, pa.Table]) -> dict[str, ReportTable]:
    """The table shown under each chart (keyed like the charts), with totals where they add up."""
    zones = tables["zone_completion"].drop_columns(["deleted"])
    by_category = tables["cost_by_category"]
    return {
        "scans_over_time": ReportTable("Scans over time", tables["scans_over_time"],
                                       totals(tables["scans_over_time"])),
        "daily_productivity": ReportTable("Scans per hour", tables["daily_productivity"]),
        "productivity": ReportTable("Productivity", tables["productivity"]),
        "zone_completion": ReportTable("Zone completion", zones, pdf_omits=("last_scan", "sessions")),
        "session_durations": ReportTable("Session durations", tables["session_durations"],
                                         totals(tables["session_durations"], columns=("sessions", "share"))),
        "cost_by_category": ReportTable("Cost by category", by_category, totals(by_category)),
        "cost_over_time": ReportTable("Cost over time", tables["cost_over_time"],
                                      totals(tables["cost_over_time"])),
        "cost_per_scan": ReportTable("Cost per scan", tables["cost_per_scan"]),
    }


def headline_rows(headline: Mapping[str, Any]) -> list[list[object]]:
    return [[text, "—" if headline.get(key) is None else format(headline[key], fmt)]
            for key, text, fmt in HEADLINE]


class StatisticsExporter(BaseExporter):
    export_type = "statistics"
    formats = ("pdf", "xlsx")

    def run(self, ctx: JobContext) -> None:
        tables = compute_tables(ctx)
        fmt = ctx.variables.get("format") or "pdf"
        shown = report_tables(tables)
        headline = tables["headline"].to_pylist()[0]
        if fmt == "xlsx":
            values = [None if headline[k] is None else float(headline[k]) for k, _, _ in HEADLINE]
            summary = pa.table({"Figure": [t for _, t, _ in HEADLINE], "Value": values})
            sheets = [Sheet("Summary", summary, number_formats={"Value": "#,##0.###"})]
            sheets += [t.xlsx() for t in shown.values()]
            result = write_xlsx_tables(ctx.output_path("xlsx"), sheets, about=about(ctx))
        else:
            granularity = ctx.variables.get("granularity") or "day"
            specs = charts.preview_charts(tables, granularity=granularity, timezone=ctx.project.timezone)
            result = _write_pdf(ctx, headline, specs, shown)
        for warning in result.warnings:
            ctx.warn(warning)
        ctx.info(f"Statistics report ({fmt}) for {headline['scans']:,} scans, cost {headline['cost']:,.2f}")
        ctx.progress(100)


def _write_pdf(ctx: JobContext, headline: Mapping[str, Any], specs: list[charts.ChartSpec],
               shown: Mapping[str, ReportTable]) -> WriteResult:
    # reportlab is imported here, not at the top: the registry imports every exporter in every
    # process, and most never draw a PDF.
    from exporters._charts import drawing
    from exporters._pdf import Block, Chart, DataTable, Heading, NewPage, Text, write_pdf

    blocks: list[Block] = [
        Heading("Headline figures"),
        DataTable(headline_rows(headline), header=["Figure", "Value"]),
        NewPage(),
    ]
    for spec in specs:
        ctx.check_cancelled()
        table = shown[spec.key]
        blocks.append(Chart(drawing(spec)))  # the drawing carries the chart's title
        if table.table.num_rows <= PDF_TABLE_ROWS:
            blocks.append(table.pdf())
        else:
            note = f"{table.table.num_rows:,} rows: the full table is in the XLSX report."
            blocks.append(Text(note))
    return write_pdf(ctx.output_path("pdf"), about=about(ctx), blocks=blocks)


EXPORTER = StatisticsExporter()

__all__ = ["EXPORTER", "HEADLINE", "compute_tables", "headline_rows", "label", "report_tables"]
