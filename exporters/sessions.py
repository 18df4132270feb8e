"""Zone sessions: one row per session with zone and user names, duration and scan rate, plus flags.

- ``started_at`` / ``ended_at`` in project-local time; ``duration_minutes`` and ``scans_per_hour`` are
  empty for an unclosed session (no end time), which is flagged ``unclosed``.
- ``scans`` / ``quantity`` count the session's live scans.
- ``overlapping``: the same user has another live session whose time overlaps this one. An unclosed
  session is taken to last until its last scan (or only its start instant when it has none): treating
  it as open-ended would flag every later session of that user.
- Sessions started in the date window, in the chosen zones; deleted sessions only with
  ``includeDeleted`` (flagged ``deleted``; they never count as overlapping, and their scans were
  deleted with them).

Each kind of flag found among the exported live sessions adds a warning to the job log, so the job
shows "Completed with warnings".
"""

from __future__ import annotations

from exporters._activity import zone_filter
from exporters._filters import Where, tz_literal
from exporters._tabular import FORMATS, write_table
from exporters._xlsx import INTEGER
from exporters.registry import BaseExporter, Estimate
from exporthub import figures
from exporthub.context import JobContext

# Overlaps are decided over every live session of the project, so a session just outside the window
# still flags its partner inside it. Sorted per user by start: a session overlaps an earlier one when
# an earlier end lies after its start, and a later one when the next start lies before its end.
_WITH = """
    WITH sc AS (
        SELECT session_id, count(*) AS scans, sum(quantity) AS quantity, max(scanned_at) AS last_scan
        FROM scans WHERE NOT deleted GROUP BY session_id
    ), live AS (
        SELECT zs.session_id, zs.user_id, zs.started_at,
               coalesce(zs.ended_at, greatest(sc.last_scan, zs.started_at)) AS effective_end
        FROM zone_sessions zs LEFT JOIN sc ON sc.session_id = zs.session_id
        WHERE NOT zs.deleted
    ), flags AS (
        SELECT session_id,
               coalesce(max(effective_end) OVER earlier > started_at, FALSE)
               OR coalesce(lead(started_at) OVER by_start < effective_end, FALSE) AS overlapping
        FROM live
        WINDOW by_start AS (PARTITION BY user_id ORDER BY started_at, session_id),
               earlier AS (by_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
"""


def _where(ctx: JobContext) -> Where:
    where = zone_filter(ctx, zone_alias="z")
    if ctx.window is not None:
        where.add("zs.started_at >= ? AND zs.started_at < ?", ctx.window.start_utc, ctx.window.end_utc)
    if not ctx.variables.get("includeDeleted"):
        where.add("NOT zs.deleted")
    return where


def _from(where: Where) -> str:
    return f"""
        FROM zone_sessions zs
        LEFT JOIN zones z ON z.zone_id = zs.zone_id
        LEFT JOIN users u ON u.user_id = zs.user_id
        LEFT JOIN sc ON sc.session_id = zs.session_id
        LEFT JOIN flags f ON f.session_id = zs.session_id
        WHERE {where.sql()}
    """


def _select(ctx: JobContext, where: Where) -> str:
    tz = tz_literal(ctx)
    deleted = ", zs.deleted" if ctx.variables.get("includeDeleted") else ""
    return f"""{_WITH}
        SELECT zs.session_id, z.code AS zone_code, z.name AS zone_name, z.area,
               u.username, u.display_name AS user_name, zs.kind,
               timezone({tz}, zs.started_at) AS started_at, timezone({tz}, zs.ended_at) AS ended_at,
               round({figures.session_minutes("zs")}, 2) AS duration_minutes,
               coalesce(sc.scans, 0)::BIGINT AS scans, coalesce(sc.quantity, 0)::BIGINT AS quantity,
               round({figures.scans_per_hour("coalesce(sc.scans, 0)", figures.session_hours("zs"))}, 2)
                   AS scans_per_hour,
               zs.ended_at IS NULL AS unclosed, coalesce(f.overlapping, FALSE) AS overlapping{deleted}
        {_from(where)}
        ORDER BY zs.started_at, zs.session_id
    """


def _counts(ctx: JobContext, where: Where) -> tuple[int, int, int]:
    """Rows to export, and how many live ones among them overlap or are unclosed."""
    sql = f"""{_WITH}
        SELECT count(*),
               count(*) FILTER (WHERE f.overlapping AND NOT zs.deleted),
               count(*) FILTER (WHERE zs.ended_at IS NULL AND NOT zs.deleted)
        {_from(where)}
    """
    rows, overlapping, unclosed = ctx.sql().execute(sql, where.params).fetchall()[0]
    return int(rows), int(overlapping), int(unclosed)


class SessionsExporter(BaseExporter):
    export_type = "sessions"
    formats = FORMATS

    def estimate(self, ctx: JobContext) -> Estimate:
        rows, _, _ = _counts(ctx, _where(ctx))
        return Estimate(rows=rows, approx_bytes=rows * 150)

    def run(self, ctx: JobContext) -> None:
        where = _where(ctx)
        total, overlapping, unclosed = _counts(ctx, where)
        ctx.info(f"{total:,} zone sessions match the filters")
        if overlapping:
            ctx.warn(f"{overlapping:,} sessions overlap another session of the same user "
                     "(flagged 'overlapping')")
        if unclosed:
            ctx.warn(f"{unclosed:,} sessions were never closed: no end time or duration (flagged 'unclosed')")
        ctx.progress(5)
        reader = ctx.sql().sql(_select(ctx, where), params=where.params).to_arrow_reader(100_000)
        result = write_table(ctx, reader, sheet_name="Sessions", total_rows=total,
                             number_formats={"duration_minutes": "0.0", "scans": INTEGER,
                                             "quantity": INTEGER, "scans_per_hour": "0.0"})
        ctx.info(f"Wrote {result.rows:,} sessions")
        ctx.progress(100)


EXPORTER = SessionsExporter()
