"""Zones: the zone configuration plus what happened in each zone.

One row per zone (deleted zones only with ``includeDeleted``, flagged; only the chosen ``zones``):

- configuration: code, name, area, the parent zone's code, expected items;
- ``scans``, ``items`` (sum of quantities), ``distinct_barcodes``: live scans in the date window;
- ``sessions``: live zone sessions started in the window;
- ``completion``: ``items / expected_items`` (empty when nothing is expected), so with a date range it
  is that range's share of the count;
- ``never_scanned``: the zone has no live scan at all, whatever the window;
- the zone's last export session (from any export type that records them, e.g. scans): its type,
  job id, time (project-local) and watermark scan id; empty when the zone was never exported or
  its export sessions were reset.
"""

from __future__ import annotations

import pyarrow as pa

from exporters._activity import activity_filters, zone_filter
from exporters._filters import tz_literal
from exporters._tabular import FORMATS, write_table
from exporters._xlsx import INTEGER, PERCENT
from exporters.registry import BaseExporter
from exporthub import figures
from exporthub.context import JobContext, PastExportSession


def last_exports(history: list[PastExportSession]) -> pa.Table:
    """The newest export session per zone, whatever its export type (ties: the higher job id)."""
    newest: dict[int, PastExportSession] = {}
    for record in history:
        current = newest.get(record.zone_id)
        if current is None or (record.created_at, record.job_id) > (current.created_at, current.job_id):
            newest[record.zone_id] = record
    rows = sorted(newest.values(), key=lambda r: r.zone_id)
    return pa.table({
        "zone_id": pa.array([r.zone_id for r in rows], pa.int32()),
        "export_type": pa.array([r.export_type for r in rows], pa.string()),
        "job_id": pa.array([r.job_id for r in rows], pa.int64()),
        "created_at": pa.array([r.created_at for r in rows], pa.timestamp("us", tz="UTC")),
        "watermark_scan_id": pa.array([r.watermark_scan_id for r in rows], pa.int64()),
    })


def _query(ctx: JobContext) -> tuple[str, list[object]]:
    scans = activity_filters(ctx, alias="s", time_column="scanned_at")
    sessions = activity_filters(ctx, alias="zs", time_column="started_at")
    chosen = zone_filter(ctx, zone_alias="z")
    tz = tz_literal(ctx)
    include_deleted = bool(ctx.variables.get("includeDeleted"))
    deleted_column = ", z.deleted" if include_deleted else ""
    if not include_deleted:
        chosen.add("NOT z.deleted")
    sql = f"""
        WITH sc AS (
            SELECT s.zone_id, count(*) AS scans, sum(s.quantity) AS items,
                   count(DISTINCT s.barcode) AS distinct_barcodes
            FROM scans s WHERE {scans.sql()} GROUP BY s.zone_id
        ), se AS (
            SELECT zs.zone_id, count(*) AS sessions
            FROM zone_sessions zs WHERE {sessions.sql()} GROUP BY zs.zone_id
        ), ever AS (
            SELECT DISTINCT zone_id FROM scans WHERE NOT deleted
        )
        SELECT z.zone_id, z.code, z.name, z.area, p.code AS parent_code, z.expected_items,
               coalesce(sc.scans, 0)::BIGINT AS scans, coalesce(sc.items, 0)::BIGINT AS items,
               coalesce(sc.distinct_barcodes, 0)::BIGINT AS distinct_barcodes,
               coalesce(se.sessions, 0)::BIGINT AS sessions,
               round({figures.completion("coalesce(sc.items, 0)", "z.expected_items")}, 4) AS completion,
               ever.zone_id IS NULL AS never_scanned,
               x.export_type AS last_export_type, x.job_id AS last_export_job_id,
               timezone({tz}, x.created_at) AS last_export_at, x.watermark_scan_id AS last_export_watermark
               {deleted_column}
        FROM zones z
        LEFT JOIN zones p ON p.zone_id = z.parent_zone_id
        LEFT JOIN sc ON sc.zone_id = z.zone_id
        LEFT JOIN se ON se.zone_id = z.zone_id
        LEFT JOIN ever ON ever.zone_id = z.zone_id
        LEFT JOIN _last_exports x ON x.zone_id = z.zone_id
        WHERE {chosen.sql()}
        ORDER BY z.code
    """
    return sql, [*scans.params, *sessions.params, *chosen.params]


class ZonesExporter(BaseExporter):
    export_type = "zones"
    formats = FORMATS

    def run(self, ctx: JobContext) -> None:
        con = ctx.sql()
        con.register("_last_exports", last_exports(ctx.export_session_history))
        sql, params = _query(ctx)
        table = con.sql(sql, params=params).to_arrow_table()
        ctx.check_cancelled()
        never = sum(1 for flag in table["never_scanned"].to_pylist() if flag)
        ctx.info(f"{table.num_rows:,} zones; {never:,} never scanned")
        ctx.progress(5)
        result = write_table(
            ctx, table, sheet_name="Zones",
            number_formats={"expected_items": INTEGER, "scans": INTEGER, "items": INTEGER,
                            "distinct_barcodes": INTEGER, "completion": PERCENT},
        )
        ctx.info(f"Wrote {result.rows:,} zones")
        ctx.progress(100)


EXPORTER = ZonesExporter()
