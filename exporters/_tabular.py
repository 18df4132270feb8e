"""Write one table in the format the job's ``format`` variable chose (csv, xlsx or parquet).

The data exports (users, zones, sessions) share this: they build one DuckDB query, hand its Arrow
stream here, and get the same About provenance, progress, csv dialect, zipping and warnings as scans.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from exporters._about import About
from exporters._csv import copy_csv, write_csv
from exporters._parquet import copy_parquet, write_parquet
from exporters._query import Query
from exporters._result import WriteResult
from exporters._xlsx import write_xlsx
from exporters._zip import zip_if_large
from exporthub import __version__
from exporthub.context import JobContext

BATCH_ROWS = 100_000
# XLSX turns each batch into XML in memory; smaller batches keep a 1M-row export under 300 MiB
# (100k-row batches peaked at 390 MiB, 10k-row ones at 280 MiB, for ~10 % more CPU).
XLSX_BATCH_ROWS = 10_000
FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet")


def about(ctx: JobContext) -> About:
    """The provenance of this job's files: project, type, every variable, cut-off and version."""
    return About(
        project_slug=ctx.project.slug, project_name=ctx.project.name, export_type=ctx.export_type,
        title=ctx.definition.title, variables=dict(ctx.variables), data_cutoff=ctx.started_at,
        generated_at=ctx.started_at, timezone=ctx.project.timezone, generator_version=__version__,
        lake_snapshot=ctx.snapshot.ids if ctx.snapshot is not None else None,
    )


def write_table(
    ctx: JobContext,
    source: pa.Table | pa.RecordBatchReader | Query,
    *,
    sheet_name: str,
    total_rows: int | None = None,
    number_formats: Mapping[str, str] | None = None,
) -> WriteResult:
    """Write ``source`` to ``ctx.output_path(<format>)`` and log the writer's warnings on the job.

    A :class:`Query` is the fastest source: DuckDB then writes CSV and Parquet itself (``COPY``) with
    progress from the query, and only XLSX streams its rows through Python. ``total_rows`` (known up
    front, e.g. from a count) turns rows written into progress 5-95 % for the other sources.
    ``number_formats`` (column -> Excel format) only applies to xlsx. CSV above the configured
    threshold is zipped; the returned result still names the paths as written.
    """
    fmt = ctx.variables.get("format", "csv")
    if fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r} for {ctx.export_type}")
    if isinstance(source, Query) and fmt != "xlsx":
        return _copy(ctx, source, fmt)
    if isinstance(source, Query):
        source = source.reader(XLSX_BATCH_ROWS)
    if isinstance(source, pa.Table):
        total_rows = source.num_rows if total_rows is None else total_rows
        schema, batches = source.schema, iter(source.to_batches(BATCH_ROWS))
    else:
        schema, batches = source.schema, iter(source)
    on_rows = ctx.on_rows(total_rows or 0)
    meta = about(ctx)
    if fmt == "xlsx":
        result = write_xlsx(ctx.output_path("xlsx"), schema, batches, about=meta, sheet_name=sheet_name,
                            on_rows=on_rows, number_formats=number_formats)
    elif fmt == "parquet":
        result = write_parquet(ctx.output_path("parquet"), schema, batches, about=meta, on_rows=on_rows)
    else:
        result = write_csv(ctx.output_path("csv"), schema, batches, about=meta,
                           dialect=ctx.variables.get("csvDialect", "standard"), on_rows=on_rows)
        zip_if_large(result.paths[0], ctx.settings.zip_threshold_bytes)
    for warning in result.warnings:
        ctx.warn(warning)
    return result


def _copy(ctx: JobContext, query: Query, fmt: str) -> WriteResult:
    def on_progress(fraction: float) -> None:
        ctx.progress(5 + 90 * fraction)

    if fmt == "parquet":
        result = copy_parquet(query, ctx.output_path("parquet"), about=about(ctx), on_progress=on_progress)
    else:
        result = copy_csv(query, ctx.output_path("csv"), about=about(ctx),
                          dialect=ctx.variables.get("csvDialect", "standard"), on_progress=on_progress)
        zip_if_large(result.paths[0], ctx.settings.zip_threshold_bytes)
    for warning in result.warnings:
        ctx.warn(warning)
    return result
