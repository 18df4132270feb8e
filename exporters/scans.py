"""Scans: every scan record with its zone, user and session, filtered by the common variables.

Streams in Arrow batches from DuckDB to the writer, so memory does not grow with the row count, and
records per-zone export sessions (the highest scan id exported) for incremental exports.
"""

from __future__ import annotations

from exporters._filters import Where, scan_filters, tz_literal
from exporters._query import Query
from exporters._tabular import write_table
from exporters.registry import BaseExporter, Estimate
from exporthub.context import ExportSessionRecord, JobContext

BATCH_ROWS = 100_000
EXCEL_MAX_DATA_ROWS = 1_048_575
# Rough bytes per row by format, measured on the demo data; only used for the estimate.
BYTES_PER_ROW = {"csv": 120, "xlsx": 70, "parquet": 25}


def _from(ctx: JobContext, where: Where) -> str:
    return f"""
        FROM scans s
        LEFT JOIN zones z ON z.zone_id = s.zone_id
        LEFT JOIN zone_sessions zs ON zs.session_id = s.session_id
        LEFT JOIN users u ON u.user_id = s.user_id
        WHERE {where.sql()}
    """


def _select(ctx: JobContext, where: Where) -> str:
    deleted = ", s.deleted AS deleted" if ctx.variables.get("includeDeleted") else ""
    return f"""
        SELECT s.scan_id,
               timezone({tz_literal(ctx)}, s.scanned_at) AS scanned_at,
               z.code AS zone_code, z.name AS zone_name, z.area AS area,
               s.session_id, zs.kind AS session_kind,
               u.username AS username, u.display_name AS user_name,
               s.barcode, s.quantity, s.device{deleted}
        {_from(ctx, where)}
    """
    # No ORDER BY: a sort would hold every row before the first one is written. Part files are read in
    # name (= ingestion) order with DuckDB's insertion order preserved, which is scan id order.


def _count(ctx: JobContext, where: Where) -> int:
    # fetchall, not fetchone: DuckDB refuses new work on a connection with an unfinished result.
    return int(ctx.sql().execute(f"SELECT count(*) {_from(ctx, where)}", where.params).fetchall()[0][0])


class ScansExporter(BaseExporter):
    export_type = "scans"
    formats = ("csv", "xlsx", "parquet")

    def estimate(self, ctx: JobContext) -> Estimate:
        where = scan_filters(ctx)
        rows = _count(ctx, where)
        fmt = ctx.variables.get("format", "csv")
        warnings = []
        if fmt == "xlsx" and rows > EXCEL_MAX_DATA_ROWS:
            warnings.append(
                f"{rows:,} rows pass Excel's limit of {EXCEL_MAX_DATA_ROWS:,}: the file will be split across "
                "sheets. CSV or Parquet keep one table."
            )
        return Estimate(rows=int(rows), approx_bytes=int(rows) * BYTES_PER_ROW.get(fmt, 100), warnings=tuple(warnings))

    def run(self, ctx: JobContext) -> None:
        con = ctx.sql()
        where = scan_filters(ctx)
        total = _count(ctx, where)
        ctx.info(f"{total:,} scans match the filters")
        ctx.progress(5)
        # DuckDB writes CSV and Parquet itself; XLSX streams Arrow batches (writer warnings go to the log).
        result = write_table(ctx, Query(con, _select(ctx, where), where.params), sheet_name="Scans",
                             total_rows=total)
        ctx.check_cancelled()
        if ctx.window is not None:
            # A watermark says "everything up to this scan id was exported". After a date-limited
            # export that is false for older scans of the same zone, which "only new" would then skip
            # for ever; so only exports over all time move it.
            ctx.info(f"Wrote {result.rows:,} rows. A date-limited export records no export sessions, so "
                     "'only new since last export' still sees every scan outside this range.")
            ctx.progress(100)
            return
        marks = con.execute(
            f"SELECT s.zone_id, max(s.scan_id), count(*) {_from(ctx, where)} GROUP BY s.zone_id ORDER BY 1",
            where.params,
        ).fetchall()
        ctx.record_export_sessions([ExportSessionRecord(int(z), int(m), int(c)) for z, m, c in marks if z is not None])
        ctx.info(f"Wrote {result.rows:,} rows; export sessions recorded for {len(marks)} zones")
        ctx.progress(100)


EXPORTER = ScansExporter()
