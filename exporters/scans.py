"""Scans: every scan record with its zone, user and session, filtered by the common variables.

One pass over the scans: DuckDB streams Arrow batches of a plain filtered scan (no join, so rows keep
their stored order, which is scan id order); the names of zones, sessions and users are looked up in
Arrow and the batches go to the writer, so memory does not grow with the row count. The export
sessions (per zone: rows and highest scan id) are tallied from the same stream, and the progress total
comes from the snapshot's metadata (its files' row counts), not from a count.
"Only new since last export" reads the incremental append scan of :mod:`exporthub.lake.incremental`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from exporters._filters import Where, scan_filters, tz_literal
from exporters._tabular import write_table
from exporters.registry import BaseExporter, Estimate
from exporthub.context import ExportSessionRecord, JobContext
from exporthub.excel import split_warning
from exporthub.lake.incremental import register_new_scans

BATCH_ROWS = 100_000
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


def _scan_query(ctx: JobContext, where: Where, source: str) -> str:
    deleted = ", s.deleted" if ctx.variables.get("includeDeleted") else ""
    # No join and no ORDER BY: a sort would hold every row before the first one is written, and
    # DuckDB may reorder a join's output. A plain filtered scan keeps the order the rows are stored in
    # (the snapshot lists its files in id order), so rows come in scan id order; names are looked up
    # in Arrow on the way (see _Names).
    return f"""
        SELECT s.scan_id, timezone({tz_literal(ctx)}, s.scanned_at) AS scanned_at, s.zone_id,
               s.session_id, s.user_id, s.barcode, s.quantity, s.device{deleted}
        FROM {source} s WHERE {where.sql()}
    """


class _Names:
    """The small tables the scans refer to, for order-preserving lookups (``index_in`` + ``take``)."""

    def __init__(self, ctx: JobContext) -> None:
        con = ctx.sql()
        self.zones = con.sql("SELECT zone_id, code, name, area FROM zones").to_arrow_table()
        self.sessions = con.sql("SELECT session_id, kind FROM zone_sessions").to_arrow_table()
        self.users = con.sql("SELECT user_id, username, display_name FROM users").to_arrow_table()

    @staticmethod
    def _lookup(keys: pa.Array, table: pa.Table, key: str, columns: tuple[str, ...]) -> list[pa.Array]:
        index = pc.index_in(keys, value_set=table.column(key).combine_chunks())
        return [table.column(c).combine_chunks().take(index) for c in columns]

    def named(self, batch: pa.RecordBatch, out: pa.Schema) -> pa.RecordBatch:
        """The export's columns for one batch of scans (the zone id rides along at the end)."""
        code, name, area = self._lookup(batch.column("zone_id"), self.zones, "zone_id", ("code", "name", "area"))
        (kind,) = self._lookup(batch.column("session_id"), self.sessions, "session_id", ("kind",))
        username, display = self._lookup(batch.column("user_id"), self.users, "user_id", ("username", "display_name"))
        columns = [batch.column("scan_id"), batch.column("scanned_at"), code, name, area,
                   batch.column("session_id"), kind, username, display, batch.column("barcode"),
                   batch.column("quantity"), batch.column("device")]
        if "deleted" in batch.schema.names:
            columns.append(batch.column("deleted"))
        columns.append(batch.column("zone_id"))
        return pa.RecordBatch.from_arrays(columns, schema=out)


def _output_schema(scans: pa.Schema, with_deleted: bool) -> pa.Schema:
    fields = [
        scans.field("scan_id"), scans.field("scanned_at"), pa.field("zone_code", pa.string()),
        pa.field("zone_name", pa.string()), pa.field("area", pa.string()), scans.field("session_id"),
        pa.field("session_kind", pa.string()), pa.field("username", pa.string()),
        pa.field("user_name", pa.string()), scans.field("barcode"), scans.field("quantity"), scans.field("device"),
    ]
    if with_deleted:
        fields.append(scans.field("deleted"))
    return pa.schema([*fields, pa.field(_ZONE, pa.int32())])


def _named_reader(names: _Names, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    out = _output_schema(reader.schema, "deleted" in reader.schema.names)
    return pa.RecordBatchReader.from_batches(out, (names.named(b, out) for b in reader))


class _ZoneTally:
    """Rows and highest scan id per zone, counted from the batches on their way to the writer."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.highest: dict[int, int] = {}

    def wrap(self, reader: pa.RecordBatchReader, *, record: bool) -> pa.RecordBatchReader:
        """The batches without the zone id column, counted when ``record``."""
        out = pa.schema([f for f in reader.schema if f.name != _ZONE], metadata=reader.schema.metadata)
        return pa.RecordBatchReader.from_batches(out, self._batches(reader, out, record))

    def _batches(self, reader: pa.RecordBatchReader, out: pa.Schema, record: bool) -> Iterator[pa.RecordBatch]:
        zone_index = reader.schema.get_field_index(_ZONE)
        for batch in reader:
            if record and batch.num_rows:
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
        source = _source(ctx)
        count_sql = f"SELECT count(*) FROM {source} s WHERE {where.sql()}"
        rows = int(ctx.sql().execute(count_sql, where.params).fetchall()[0][0])
        fmt = ctx.variables.get("format", "csv")
        split = split_warning(rows) if fmt == "xlsx" else None
        return Estimate(rows=rows, approx_bytes=rows * BYTES_PER_ROW.get(fmt, 100), warnings=(split,) if split else ())

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
        names = _Names(ctx)  # before the stream opens: the connection runs one query at a time
        scanned = con.sql(_scan_query(ctx, where, source), params=where.params).to_arrow_reader(BATCH_ROWS)
        tally = _ZoneTally()
        reader = tally.wrap(_named_reader(names, scanned), record=record)
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
