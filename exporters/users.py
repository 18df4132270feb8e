"""Users: the project's people, their accounts, and their activity in the chosen window and zones.

Who is listed: every user who appears in the project's lake (a scan or a zone session, at any time,
deleted rows included) or is a member of the project. Members who never scanned and staff idle in
the window appear with zeros; field staff who never worked on this project do not, so one project's
export never names another project's crew. Deleted accounts (``deleted_at`` set) are listed only with
``includeDeleted``, which also adds the ``deleted_at`` column.

Figures count live (non-deleted) rows only (see :mod:`exporters._activity`):

- ``scans`` / ``quantity``: the user's scans in the window;
- ``sessions``: zone sessions started in the window, closed or not;
- ``hours_worked``: the summed length of those sessions that are closed;
- ``first_activity`` / ``last_activity``: earliest scan or session start, latest scan or session end
  (an unclosed session counts with its start), in project-local time;
- ``scans_per_hour``: scans in those closed sessions ÷ ``hours_worked`` (:mod:`exporthub.figures`, the
  statistics' definition), empty when no hours were worked.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from exporters._activity import activity_filters
from exporters._filters import tz_literal
from exporters._tabular import FORMATS, write_table
from exporters._xlsx import CURRENCY, INTEGER
from exporters.registry import BaseExporter
from exporthub import figures
from exporthub.context import JobContext
from exporthub.db import get_database
from exporthub.models import Membership, User


def project_roles(ctx: JobContext) -> pa.Table:
    """``(user_id, role)`` of the project's members, from the metadata DB, for a DuckDB join."""
    with get_database(ctx.settings).read() as s:
        rows = s.execute(
            select(Membership.user_id, Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(Membership.project_id == ctx.project.id)
        ).all()
    return pa.table({"user_id": pa.array([r[0] for r in rows], pa.int32()),
                     "role": pa.array([r[1] for r in rows], pa.string())})


def _query(ctx: JobContext) -> tuple[str, list[object]]:
    scans = activity_filters(ctx, alias="s", time_column="scanned_at", zone_alias="z")
    sessions = activity_filters(ctx, alias="zs", time_column="started_at", zone_alias="z")
    tz = tz_literal(ctx)
    include_deleted = bool(ctx.variables.get("includeDeleted"))
    hours = figures.session_hours("zs")
    deleted_column = f", timezone({tz}, u.deleted_at) AS deleted_at" if include_deleted else ""
    deleted_filter = "TRUE" if include_deleted else "u.deleted_at IS NULL"
    sql = f"""
        WITH sc AS (
            SELECT s.user_id, count(*) AS scans, sum(s.quantity) AS quantity,
                   min(s.scanned_at) AS first_scan, max(s.scanned_at) AS last_scan
            FROM scans s LEFT JOIN zones z ON z.zone_id = s.zone_id
            WHERE {scans.sql()} GROUP BY s.user_id
        ), se AS (
            SELECT zs.user_id, count(*) AS sessions, coalesce(sum({hours}), 0) AS hours,
                   min(zs.started_at) AS first_start, max(coalesce(zs.ended_at, zs.started_at)) AS last_end
            FROM zone_sessions zs LEFT JOIN zones z ON z.zone_id = zs.zone_id
            WHERE {sessions.sql()} GROUP BY zs.user_id
        ), closed AS (  -- scans in the closed sessions counted above, for scans per hour
            SELECT zs.user_id, count(*) AS scans
            FROM scans s JOIN zone_sessions zs ON zs.session_id = s.session_id
            LEFT JOIN zones z ON z.zone_id = zs.zone_id
            WHERE {scans.sql()} AND {sessions.sql()} AND zs.ended_at IS NOT NULL GROUP BY zs.user_id
        ), listed AS (
            SELECT user_id FROM scans UNION SELECT user_id FROM zone_sessions UNION SELECT user_id FROM _roles
        )
        SELECT u.user_id, u.username, u.display_name, u.email, r.role AS project_role, u.can_log_in, u.active,
               u.hourly_rate,
               coalesce(sc.scans, 0)::BIGINT AS scans, coalesce(sc.quantity, 0)::BIGINT AS quantity,
               coalesce(se.sessions, 0)::BIGINT AS sessions,
               round(coalesce(se.hours, 0), 4)::DOUBLE AS hours_worked,
               timezone({tz}, least(sc.first_scan, se.first_start)) AS first_activity,
               timezone({tz}, greatest(sc.last_scan, se.last_end)) AS last_activity,
               round({figures.scans_per_hour("coalesce(cl.scans, 0)", "se.hours")}, 2)
                   AS scans_per_hour{deleted_column}
        FROM users u
        JOIN listed l ON l.user_id = u.user_id
        LEFT JOIN _roles r ON r.user_id = u.user_id
        LEFT JOIN sc ON sc.user_id = u.user_id
        LEFT JOIN se ON se.user_id = u.user_id
        LEFT JOIN closed cl ON cl.user_id = u.user_id
        WHERE {deleted_filter}
        ORDER BY u.username
    """
    return sql, [*scans.params, *sessions.params, *scans.params, *sessions.params]


def _warn_about_hidden_deleted_users(ctx: JobContext, params: list[object]) -> None:
    """Totals over this file then fall short of the scans export and the statistics: say so."""
    scans = activity_filters(ctx, alias="s", time_column="scanned_at", zone_alias="z")
    hidden = ctx.sql().execute(
        f"""SELECT count(DISTINCT s.user_id), count(*) FROM scans s
            LEFT JOIN zones z ON z.zone_id = s.zone_id JOIN users u ON u.user_id = s.user_id
            WHERE u.deleted_at IS NOT NULL AND {scans.sql()}""",
        scans.params,
    ).fetchall()[0]
    if hidden[0]:
        ctx.warn(f"{hidden[0]:,} deleted user(s) with {hidden[1]:,} scans are left out; tick "
                 "'Include deleted' to list them, so the totals match the scans export")


class UsersExporter(BaseExporter):
    export_type = "users"
    formats = FORMATS

    def run(self, ctx: JobContext) -> None:
        con = ctx.sql()
        con.register("_roles", project_roles(ctx))
        sql, params = _query(ctx)
        table = con.sql(sql, params=params).to_arrow_table()
        ctx.check_cancelled()
        idle = int(table.filter(pc.equal(table["scans"], 0)).num_rows) if table.num_rows else 0
        ctx.info(f"{table.num_rows:,} users; {idle:,} without scans in the chosen window and zones")
        if not ctx.variables.get("includeDeleted"):
            _warn_about_hidden_deleted_users(ctx, params)
        ctx.progress(5)
        result = write_table(
            ctx, table, sheet_name="Users",
            number_formats={"hourly_rate": CURRENCY, "scans": INTEGER, "quantity": INTEGER,
                            "hours_worked": "0.00", "scans_per_hour": "0.0"},
        )
        ctx.info(f"Wrote {result.rows:,} users")
        ctx.progress(100)


EXPORTER = UsersExporter()
