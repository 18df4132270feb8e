"""Cost report: the project's costs by category, user, zone and day, with subtotals and a grand total.

The ``costs`` table is the one source of cost. Labor entries were derived from session hours when the
data was made or imported; this report never adds computed labor on top, so nothing counts twice.
Each breakdown by user, zone and day shows one column per category (the category subtotals in its
totals row) and a ``Total`` per row; every grand total equals the sum of ``amount`` in the filter.
"""

from __future__ import annotations

import pyarrow as pa

from exporters._result import WriteResult
from exporters._stats_tables import ReportTable, totals
from exporters._tabular import about
from exporters._xlsx import CURRENCY, INTEGER, Sheet, write_xlsx_tables
from exporters.registry import BaseExporter
from exporthub import charts
from exporthub.context import JobContext
from exporthub.stats import COST_CATEGORIES, QUERIES, StatsFilter

BREAKDOWNS: tuple[tuple[str, str], ...] = (
    ("cost_by_category", "By category"),
    ("cost_by_user", "By user"),
    ("cost_by_zone", "By zone"),
    ("cost_over_time", "By day"),
)


def breakdowns(ctx: JobContext) -> dict[str, ReportTable]:
    """Each breakdown with its totals row, for the job's date range and zones."""
    scope = StatsFilter.from_variables(ctx.variables).resolve(ctx.project.timezone, ctx.started_at)
    result: dict[str, ReportTable] = {}
    for i, (name, title) in enumerate(BREAKDOWNS, start=1):
        table = QUERIES[name](ctx.sql(), scope)
        result[name] = ReportTable(title, table, totals(table))
        ctx.progress(5 + 50 * i / len(BREAKDOWNS))
    scans = QUERIES["headline"](ctx.sql(), scope).column("scans")[0].as_py()
    result["_scans"] = ReportTable("Scans", pa.table({"scans": [scans]}))
    return result


def summary(parts: dict[str, ReportTable]) -> pa.Table:
    """Figure rows: the grand total and each category (``amount``), entries and scans (``count``),
    and cost per scan; each cell typed, the other column empty."""
    by_category = parts["cost_by_category"].table
    amounts = dict(zip(by_category.column("category").to_pylist(), by_category.column("amount").to_pylist(),
                       strict=True))
    grand = float(sum(amounts.values()))
    entries = int(sum(by_category.column("entries").to_pylist()))
    scans = int(parts["_scans"].table.column("scans")[0].as_py())
    rows: list[tuple[str, float | None, int | None]] = [("Total cost", grand, None)]
    rows += [(f"{c.capitalize()} cost", float(amounts.get(c) or 0.0), None) for c in COST_CATEGORIES]
    rows += [(f"{c} cost", float(v), None) for c, v in amounts.items() if c not in COST_CATEGORIES]
    rows += [("Cost entries", None, entries), ("Scans", None, scans),
             ("Cost per scan", grand / scans if scans else None, None)]
    return pa.table(
        {"figure": [r[0] for r in rows], "amount": [r[1] for r in rows], "count": [r[2] for r in rows]},
        schema=pa.schema([("figure", pa.string()), ("amount", pa.float64()), ("count", pa.int64())]),
    )


class CostExporter(BaseExporter):
    export_type = "cost"
    formats = ("xlsx", "pdf")

    def run(self, ctx: JobContext) -> None:
        parts = breakdowns(ctx)
        overview = summary(parts)
        grand = overview.column("amount")[0].as_py()
        fmt = ctx.variables.get("format") or "xlsx"
        if fmt == "pdf":
            result = _write_pdf(ctx, parts, overview)
        else:
            sheets = [Sheet("Summary", overview.rename_columns(["Figure", "Amount", "Count"]),
                            number_formats={"Amount": CURRENCY, "Count": INTEGER})]
            sheets += [parts[name].xlsx(title) for name, title in BREAKDOWNS]
            result = write_xlsx_tables(ctx.output_path("xlsx"), sheets, about=about(ctx))
        for warning in result.warnings:
            ctx.warn(warning)
        ctx.info(f"Cost report ({fmt}): grand total {grand:,.2f}")
        ctx.progress(100)


def _write_pdf(ctx: JobContext, parts: dict[str, ReportTable], overview: pa.Table) -> WriteResult:
    # reportlab is imported here, not at the top: the registry imports every exporter in every
    # process, and most never draw a PDF.
    from exporters._charts import drawing
    from exporters._pdf import Block, Chart, DataTable, Heading, write_pdf

    blocks: list[Block] = [
        Heading("Summary"),
        DataTable(overview, header=["Figure", "Amount", "Count"], formats={"Amount": ",.2f"}),
    ]
    blocks += [Chart(drawing(charts.cost_by_category(parts["cost_by_category"].table))),
               Chart(drawing(charts.cost_over_time(parts["cost_over_time"].table)))]
    for name, title in BREAKDOWNS:
        blocks += [Heading(f"Cost {title.lower()}"), parts[name].pdf()]
    return write_pdf(ctx.output_path("pdf"), about=about(ctx), blocks=blocks)


EXPORTER = CostExporter()
