"""Scans: every scan record with its zone, user and session, filtered by the common variables.

One pass over the scans: DuckDB streams Arrow batches to the writer, so memory does not grow with the
row count; the export sessions (per zone: rows and highest scan id) are tallied from the same stream,
and the progress total comes from the snapshot's metadata (its files' row counts), not from a count.
"Only new since last export" reads the incremental append scan of :mod:`exporthub.lake.incremental`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from exporters._filters import Where, scan_filters, tz_literal
from exporters._tabular import write_table
from exporters.registry import BaseExporter, Estimate
from exporthub.context import ExportSessionRecord, JobContext
from exporthub.lake.incremental import register_new_scans

BATCH_ROWS = 100_000
EXCEL_MAX_DATA_ROWS = 1_048_575
# Rough bytes per row by format, measured on the demo data; only used for the estimate.
BYTES_PER_ROW = {"csv": 120, "xlsx": 70, "parquet": 25}
_ZONE = "__zone_id"  # rides along the stream for the export sessions, dropped before the writer


def _source(ctx: JobContext) -> str:
    """The relation to read: the snapshot's scans, or for "only new" the new scans of each zone."""
    if not (ctx.variables.get("onlyNewSinceLastExport") and ctx.previous_watermarks):
        return "scans"
    assert ctx.snapshot is not None
    new = register_new_scans(ctx.sql(), ctx.snapshot, ctx.previous_watermarks)
    if new.by_scan_id:
        ctx.info(f"{len(new.by_scan_id)} zones were last exported before this lake's history "
                 "(recorded earlier, or restored): their new scans are those above the highest scan id exported")
    return new.view


def _from(where: Where, source: str) -> str:
    return f"""
        FROM {source} s
        LEFT JOIN zones z ON z.zone_id = s.zone_id
        LEFT JOIN zone_sessions zs ON zs.session_id = s.session_id
        LEFT JOIN users u ON u.user_id = s.user_id
        WHERE {where.sql()}
    """


def _select(ctx: JobContext, where: Where, source: str, *, with_zone: bool) -> str:
    deleted = ", s.deleted AS deleted" if ctx.variables.get("includeDeleted") else ""
    zone = f", s.zone_id AS {_ZONE}" if with_zone else ""
    return f"""
        SELECT s.scan_id,
               timezone({tz_literal(ctx)}, s.scanned_at) AS scanned_at,
               z.code AS zone_code, z.name AS zone_name, z.area AS area,
               s.session_id, zs.kind AS session_kind,
               u.username AS username, u.display_name AS user_name,
               s.barcode, s.quantity, s.device{deleted}{zone}
        {_from(where, source)}
    """
    # No ORDER BY: a sort would hold every row before the first one is written. The snapshot's files
    # are listed in id order and DuckDB keeps insertion order, so rows come in scan id order.


class _ZoneTally:
    """Rows and highest scan id per zone, counted from the batches on their way to the writer."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.highest: dict[int, int] = {}

    def wrap(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        out = pa.schema([f for f in reader.schema if f.name != _ZONE], metadata=reader.schema.metadata)
        return pa.RecordBatchReader.from_batches(out, self._batches(reader, out))

    def _batches(self, reader: pa.RecordBatchReader, out: pa.Schema) -> Iterator[pa.RecordBatch]:
        zone_index = reader.schema.get_field_index(_ZONE)
        for batch in reader:
            if batch.num_rows:
                self._add(batch)
            yield pa.RecordBatch.from_arrays(
                [c for i, c in enumerate(batch.columns) if i != zone_index], schema=out
            )

    def _add(self, batch: pa.RecordBatch) -> None:
        groups = pa.table({"zone": batch.column(_ZONE), "scan_id": batch.column("scan_id")}).group_by("zone")
        for row in groups.aggregate([("scan_id", "count"), ("scan_id", "max")]).to_pylist():
            zone = row["zone"]
            if zone is None:
                continue
            self.counts[zone] = self.counts.get(zone, 0) + row["scan_id_count"]
            self.highest[zone] = max(self.highest.get(zone, 0), row["scan_id_max"])

    def records(self, snapshot_id: int | None) -> list[ExportSessionRecord]:
        return [ExportSessionRecord(z, self.highest[z], self.counts[z], snapshot_id) for z in sorted(self.counts)]


class ScansExporter(BaseExporter):
    export_type = "scans"
    formats = ("csv", "xlsx", "parquet")

    def estimate(self, ctx: JobContext) -> Estimate:
        where = scan_filters(ctx)
        # fetchall, not fetchone: DuckDB refuses new work on a connection with an unfinished result.
        rows = int(ctx.sql().execute(f"SELECT count(*) {_from(where, _source(ctx))}", where.params).fetchall()[0][0])
        fmt = ctx.variables.get("format", "csv")
        warnings = []
        if fmt == "xlsx" and rows > EXCEL_MAX_DATA_ROWS:
            warnings.append(
                f"{rows:,} rows pass Excel's limit of {EXCEL_MAX_DATA_ROWS:,}: the file will be split across "
                "sheets. CSV or Parquet keep one table."
            )
        return Estimate(rows=rows, approx_bytes=rows * BYTES_PER_ROW.get(fmt, 100), warnings=tuple(warnings))

    def run(self, ctx: JobContext) -> None:
        assert ctx.snapshot is not None
        con = ctx.sql()
        where = scan_filters(ctx)
        source = _source(ctx)
        scans = ctx.snapshot.tables["scans"]
        ctx.progress(5)
        # A session says "everything of this zone up to this snapshot was exported". After a date-limited
        # export that is false for older scans of the zone, which "only new" would then skip for ever;
        # so only exports over all time record sessions.
        record = ctx.window is None
        reader = con.sql(_select(ctx, where, source, with_zone=record), params=where.params).to_arrow_reader(BATCH_ROWS)
        tally = _ZoneTally()
        if record:
            reader = tally.wrap(reader)
        # The progress total is the rows in the snapshot's files: an upper bound known without a pass.
        result = write_table(ctx, reader, sheet_name="Scans", total_rows=scans.rows)
        ctx.check_cancelled()
        if not record:
            ctx.info(f"Wrote {result.rows:,} rows. A date-limited export records no export sessions, so "
                     "'only new since last export' still sees every scan outside this range.")
        else:
            ctx.record_export_sessions(tally.records(scans.snapshot_id))
            ctx.info(f"Wrote {result.rows:,} rows; export sessions recorded for {len(tally.counts)} zones "
                     f"(scans snapshot {scans.snapshot_id})")
        ctx.progress(100)


EXPORTER = ScansExporter()
