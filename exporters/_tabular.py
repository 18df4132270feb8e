"""Write one table in the format the job's ``format`` variable chose (csv, xlsx or parquet).

The data exports (users, zones, sessions) share this: they build one DuckDB query, hand its Arrow
stream here, and get the same About provenance, progress, csv dialect, zipping and warnings as scans.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from exporters._about import About
from exporters._csv import write_csv
from exporters._parquet import write_parquet
from exporters._result import WriteResult
from exporters._xlsx import write_xlsx
from exporters._zip import zip_if_large
from exporthub import __version__
from exporthub.context import JobContext

BATCH_ROWS = 100_000
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
    source: pa.Table | pa.RecordBatchReader,
    *,
    sheet_name: str,
    total_rows: int | None = None,
    number_formats: Mapping[str, str] | None = None,
) -> WriteResult:
    """Write ``source`` to ``ctx.output_path(<format>)`` and log the writer's warnings on the job.

    ``total_rows`` (known up front, e.g. from a count) turns rows written into progress 5-95 %.
    ``number_formats`` (column -> Excel format) only applies to xlsx. CSV above the configured
    threshold is zipped; the returned result still names the paths as written.
    """
    fmt = ctx.variables.get("format", "csv")
    if fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r} for {ctx.export_type}")
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
