"""Scans: every scan record with its zone, user and session, filtered by the common variables.

Streams in Arrow batches from DuckDB to the writer, so memory does not grow with the row count, and
records per-zone export sessions (the highest scan id exported) for incremental exports.
"""

from __future__ import annotations

from exporters._about import About
from exporters._csv import write_csv
from exporters._filters import Where, scan_filters, tz_literal
from exporters._parquet import write_parquet
from exporters._xlsx import write_xlsx
from exporters._zip import zip_if_large
from exporters.registry import BaseExporter, Estimate
from exporthub import __version__
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


def about(ctx: JobContext) -> About:
    return About(
        project_slug=ctx.project.slug, project_name=ctx.project.name, export_type=ctx.export_type,
        title=ctx.definition.title, variables=dict(ctx.variables), data_cutoff=ctx.started_at,
        generated_at=ctx.started_at, timezone=ctx.project.timezone, generator_version=__version__,
    )


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
        reader = con.sql(_select(ctx, where), params=where.params).to_arrow_reader(BATCH_ROWS)
        fmt = ctx.variables.get("format", "csv")
        meta = about(ctx)
        batches = iter(reader)  # Arrow record batches, one at a time
        if fmt == "xlsx":
            result = write_xlsx(ctx.output_path("xlsx"), reader.schema, batches, about=meta,
                                sheet_name="Scans", on_rows=ctx.on_rows(total))
        elif fmt == "parquet":
            result = write_parquet(ctx.output_path("parquet"), reader.schema, batches, about=meta,
                                   on_rows=ctx.on_rows(total))
        else:
            result = write_csv(ctx.output_path("csv"), reader.schema, batches, about=meta,
                               dialect=ctx.variables.get("csvDialect", "standard"), on_rows=ctx.on_rows(total))
            zip_if_large(result.paths[0], ctx.settings.zip_threshold_bytes)
        for warning in result.warnings:
            ctx.warn(warning)
        ctx.check_cancelled()
        marks = con.execute(
            f"SELECT s.zone_id, max(s.scan_id), count(*) {_from(ctx, where)} GROUP BY s.zone_id ORDER BY 1",
            where.params,
        ).fetchall()
        ctx.record_export_sessions([ExportSessionRecord(int(z), int(m), int(c)) for z, m, c in marks if z is not None])
        ctx.info(f"Wrote {result.rows:,} rows; export sessions recorded for {len(marks)} zones")
        ctx.progress(100)


EXPORTER = ScansExporter()
