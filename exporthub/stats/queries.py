"""The statistics queries: each one DuckDB aggregate over the lake views, returning a small Arrow table.

Every function takes a connection with the views ``zones``, ``zone_sessions``, ``scans``, ``costs``
and ``users`` (an export job's ``ctx.sql()``, or the preview's own connection) and a
:class:`~exporthub.stats.filters.Scope`. The preview page and the reports call the same functions, so
the numbers on screen and in the files agree. All aggregation happens in DuckDB; Python only sees the
results, which have at most a few thousand rows.

Definitions shared by every chart:

* **hours** are the lengths of *closed* sessions (an unclosed session has no end to measure).
* **scans per hour** = scans recorded in closed sessions ÷ the hours of those sessions, so scans of
  an unclosed session never inflate a rate.
* Local days and hours are in the project's timezone.

Speed: the scans (millions of rows) are read once per connection and scope into a small "scan cube"
(:func:`scan_cube`); every scan-based chart aggregates that, and local time is computed per 15-minute
bucket rather than per scan. Sessions and costs are small and read directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from exporthub import figures
from exporthub.lake.schemas import COST_CATEGORIES
from exporthub.stats.filters import Scope, bind, bucket_of

GRANULARITIES: tuple[str, ...] = ("day", "hour")

# Session length buckets in minutes (upper bound exclusive; None = open ended).
DURATION_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 15 min", 0, 15),
    ("15–30 min", 15, 30),
    ("30–60 min", 30, 60),
    ("1–1.5 h", 60, 90),
    ("1.5–2 h", 90, 120),
    ("2–3 h", 120, 180),
    ("3–4 h", 180, 240),
    ("≥ 4 h", 240, None),
)

_HOURS = figures.session_hours("zs")


def run(con: duckdb.DuckDBPyConnection, sql: str, scope: Scope) -> pa.Table:
    """Execute ``sql`` with the scope's parameters and return the whole result as Arrow."""
    return con.sql(sql, params=bind(sql, scope)).to_arrow_table()


def cube_name(scope: Scope) -> str:
    """The name of the scope's scan cube in a connection (see :func:`scan_cube`)."""
    return "_scan_cube_" + hashlib.sha1(repr(scope.key()).encode()).hexdigest()[:16]


def scan_cube(con: duckdb.DuckDBPyConnection, scope: Scope) -> str:
    """The name of a temporary table holding the scope's scans reduced to one row per 15-minute UTC
    bucket, zone, user and session: ``bucket``, ``zone_id``, ``user_id``, ``session_id``, ``n`` (scans),
    ``q`` (quantity), ``last_us`` (latest scan, epoch µs).

    Built once per connection and scope: every scan-based query of a preview or a report reads this
    (about one row per hundred scans) instead of scanning the lake again, so a view costs one pass
    over the scans however many charts it has. A caller may provide it beforehand as a temporary
    table or view of that name (the preview service does, from its cache).
    """
    name = cube_name(scope)
    exists = con.execute(
        "SELECT count(*) FROM (SELECT table_name AS n FROM duckdb_tables() WHERE temporary "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE temporary) WHERE n = ?", [name]
    ).fetchall()[0][0]
    if not exists:
        sql = f"""
            CREATE TEMP TABLE {name} AS
            SELECT {bucket_of('s.scanned_at')} AS bucket, s.zone_id, s.user_id, s.session_id,
                   count(*) AS n, sum(s.quantity) AS q, max(epoch_us(s.scanned_at)) AS last_us
            FROM scans s WHERE {scope.scans_where('s')}
            GROUP BY ALL
        """
        con.execute(sql, bind(sql, scope))
    return name


def _category_columns(amount: str = "c.amount") -> str:
    # Category names are our constants, never user input.
    return ", ".join(
        f"coalesce(sum({amount}) FILTER (WHERE c.category = '{cat}'), 0)::DOUBLE AS {cat}"
        for cat in COST_CATEGORIES
    )


def headline(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """One row: scans, items (sum of quantity), active users (with scans), sessions, hours, cost,
    cost per scan (null without scans)."""
    sql = f"""
        WITH sc AS (
            SELECT coalesce(sum(n), 0) AS scans, coalesce(sum(q), 0) AS items,
                   count(DISTINCT user_id) AS users
            FROM {scan_cube(con, scope)}
        ), ss AS (
            SELECT count(*) AS sessions,
                   coalesce(sum({_HOURS}), 0) AS hours
            FROM zone_sessions zs WHERE {scope.sessions_where('zs')}
        ), co AS (
            SELECT coalesce(sum(c.amount), 0) AS cost FROM costs c WHERE {scope.costs_where('c')}
        )
        SELECT scans::BIGINT AS scans, items::BIGINT AS items, users::BIGINT AS active_users,
               sessions::BIGINT AS sessions, hours::DOUBLE AS hours, cost::DOUBLE AS cost,
               {figures.cost_per_scan("cost", "scans")} AS cost_per_scan
        FROM sc, ss, co
    """
    return run(con, sql, scope)


def scans_over_time(con: duckdb.DuckDBPyConnection, scope: Scope, granularity: str = "day") -> pa.Table:
    """Scans and items per local ``day`` or ``hour``: ``period`` (a local date, or a local timestamp per
    hour), ``scans``, ``items``.

    Every period between the first and the last with scans is listed, quiet ones with zeros.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    sql = f"""
        WITH b AS (
            SELECT bucket AS b, sum(n) AS n, sum(q) AS q FROM {scan_cube(con, scope)} GROUP BY 1
        ), p AS (
            SELECT date_trunc('{granularity}', {scope.local_bucket('b')}) AS period, sum(n) AS n, sum(q) AS q
            FROM b GROUP BY 1
        ), every AS (  -- every period from the first to the last, so quiet ones show as zero
            SELECT unnest(generate_series(min(period), max(period), INTERVAL 1 {granularity})) AS period
            FROM p
        )
        SELECT every.period{'::DATE' if granularity == 'day' else ''} AS period,
               coalesce(p.n, 0)::BIGINT AS scans, coalesce(p.q, 0)::BIGINT AS items
        FROM every LEFT JOIN p ON p.period = every.period ORDER BY 1
    """
    return run(con, sql, scope)


def _per_session(con: duckdb.DuckDBPyConnection, scope: Scope) -> str:
    return f"""
        per_session AS (
            SELECT session_id, sum(n) AS n, sum(q) AS q FROM {scan_cube(con, scope)} GROUP BY 1
        ), ses AS (
            SELECT zs.session_id, zs.user_id, zs.started_at, zs.ended_at IS NOT NULL AS closed,
                   {_HOURS} AS hours
            FROM zone_sessions zs WHERE {scope.sessions_where('zs')}
        )
    """


def daily_productivity(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per local day of closed sessions' start: ``scans`` in them, ``hours``, ``scans_per_hour``."""
    sql = f"""
        WITH {_per_session(con, scope)}
        SELECT CAST({scope.local('ses.started_at')} AS DATE) AS day,
               coalesce(sum(p.n), 0)::BIGINT AS scans, sum(ses.hours)::DOUBLE AS hours,
               {figures.scans_per_hour("coalesce(sum(p.n), 0)", "sum(ses.hours)")} AS scans_per_hour
        FROM ses LEFT JOIN per_session p ON p.session_id = ses.session_id
        WHERE ses.closed
        GROUP BY 1 ORDER BY 1
    """
    return run(con, sql, scope)


def productivity(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per user with scans or sessions in the view: scans, items, sessions, hours, scans per hour.

    ``deleted`` flags a user whose account was deleted: their work stays in the figures.
    """
    sql = f"""
        WITH {_per_session(con, scope)},
        by_scan AS (
            SELECT user_id, sum(n) AS scans, sum(q) AS items FROM {scan_cube(con, scope)} GROUP BY 1
        ), by_session AS (
            SELECT ses.user_id, count(*) AS sessions, sum(ses.hours) AS hours,
                   sum(coalesce(p.n, 0)) FILTER (WHERE ses.closed) AS closed_scans
            FROM ses LEFT JOIN per_session p ON p.session_id = ses.session_id GROUP BY 1
        )
        SELECT coalesce(u.username, 'user #' || user_id) AS username,
               coalesce(u.display_name, u.username, 'user #' || user_id) AS display_name,
               coalesce(u.deleted_at IS NOT NULL, false) AS deleted,
               coalesce(a.scans, 0)::BIGINT AS scans, coalesce(a.items, 0)::BIGINT AS items,
               coalesce(b.sessions, 0)::BIGINT AS sessions, coalesce(b.hours, 0)::DOUBLE AS hours,
               {figures.scans_per_hour("b.closed_scans", "b.hours")} AS scans_per_hour
        FROM by_scan a FULL JOIN by_session b USING (user_id)
        LEFT JOIN users u USING (user_id)
        ORDER BY scans_per_hour DESC NULLS LAST, username
    """
    return run(con, sql, scope)


def zone_completion(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Every zone in the view (also those never scanned) with items against expected items.

    ``completion`` = items ÷ expected items (null when nothing is expected); ``never_scanned`` is true
    when no scan in the view falls in the zone; ``last_scan`` is local time.
    """
    sql = f"""
        WITH zl AS (SELECT * FROM zones z WHERE {scope.zones_where('z')}),
        sc AS (
            SELECT zone_id, sum(n) AS scans, sum(q) AS items, make_timestamptz(max(last_us)) AS last_scan
            FROM {scan_cube(con, scope)} GROUP BY 1
        ), ss AS (
            SELECT zs.zone_id, count(*) AS sessions FROM zone_sessions zs
            WHERE {scope.sessions_where('zs')} GROUP BY 1
        )
        SELECT zl.code, zl.name, zl.area, zl.expected_items::BIGINT AS expected_items,
               coalesce(sc.scans, 0)::BIGINT AS scans, coalesce(sc.items, 0)::BIGINT AS items,
               coalesce(ss.sessions, 0)::BIGINT AS sessions,
               {figures.completion("coalesce(sc.items, 0)", "zl.expected_items")} AS completion,
               sc.scans IS NULL AS never_scanned, zl.deleted,
               {scope.local('sc.last_scan')} AS last_scan
        FROM zl LEFT JOIN sc ON sc.zone_id = zl.zone_id LEFT JOIN ss ON ss.zone_id = zl.zone_id
        ORDER BY zl.code
    """
    return run(con, sql, scope)


def session_durations(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Closed sessions per length bucket (every bucket, also empty ones), with each bucket's share."""
    rows = ", ".join(
        f"({i}, '{label}', {lo}, {'NULL' if hi is None else hi})"
        for i, (label, lo, hi) in enumerate(DURATION_BUCKETS)
    )
    sql = f"""
        WITH d AS (
            SELECT {figures.session_minutes("zs")} AS minutes
            FROM zone_sessions zs WHERE {scope.sessions_where('zs')} AND zs.ended_at IS NOT NULL
        ), buckets(i, label, lo, hi) AS (VALUES {rows}),
        counted AS (
            SELECT b.i, b.label, b.lo, b.hi, count(d.minutes) AS sessions
            FROM buckets b LEFT JOIN d ON d.minutes >= b.lo AND (b.hi IS NULL OR d.minutes < b.hi)
            GROUP BY ALL
        )
        SELECT label AS bucket, lo::INTEGER AS min_minutes, hi::INTEGER AS max_minutes,
               sessions::BIGINT AS sessions,
               coalesce(sessions / nullif(sum(sessions) OVER (), 0), 0)::DOUBLE AS share
        FROM counted ORDER BY i
    """
    return run(con, sql, scope)


def cost_by_category(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per category (the four known ones always, then any other): entries, hours, amount, share."""
    known = ", ".join(f"('{cat}', {i})" for i, cat in enumerate(COST_CATEGORIES))
    sql = f"""
        WITH agg AS (
            SELECT c.category, count(*) AS entries, sum(c.hours) AS hours, sum(c.amount) AS amount
            FROM costs c WHERE {scope.costs_where('c')} GROUP BY 1
        ), known(category, i) AS (VALUES {known})
        SELECT category, coalesce(agg.entries, 0)::BIGINT AS entries, agg.hours::DOUBLE AS hours,
               coalesce(agg.amount, 0)::DOUBLE AS amount,
               coalesce(agg.amount / nullif(sum(agg.amount) OVER (), 0), 0)::DOUBLE AS share
        FROM known FULL JOIN agg USING (category)
        ORDER BY known.i NULLS LAST, category
    """
    return run(con, sql, scope)


def cost_over_time(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per day with costs: one amount column per category, and ``total`` (every category)."""
    sql = f"""
        SELECT c.date AS day, {_category_columns()}, sum(c.amount)::DOUBLE AS total
        FROM costs c WHERE {scope.costs_where('c')} GROUP BY 1 ORDER BY 1
    """
    return run(con, sql, scope)


def cost_by_user(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per user (``(no user)`` for entries without one): amount per category and ``total``."""
    sql = f"""
        SELECT CASE WHEN c.user_id IS NULL THEN '(no user)'
                    ELSE coalesce(u.username, 'user #' || c.user_id) END AS username,
               coalesce(u.display_name, '') AS display_name,
               {_category_columns()}, sum(c.amount)::DOUBLE AS total
        FROM costs c LEFT JOIN users u ON u.user_id = c.user_id
        WHERE {scope.costs_where('c')}
        GROUP BY c.user_id, u.username, u.display_name
        ORDER BY c.user_id IS NULL, total DESC, username
    """
    return run(con, sql, scope)


def cost_by_zone(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per zone (``(no zone)`` for entries without one): amount per category and ``total``."""
    sql = f"""
        SELECT CASE WHEN c.zone_id IS NULL THEN '(no zone)'
                    ELSE coalesce(z.code, 'zone #' || c.zone_id) END AS zone_code,
               coalesce(z.name, '') AS zone_name, coalesce(z.area, '') AS area,
               {_category_columns()}, sum(c.amount)::DOUBLE AS total
        FROM costs c LEFT JOIN zones z ON z.zone_id = c.zone_id
        WHERE {scope.costs_where('c')}
        GROUP BY c.zone_id, z.code, z.name, z.area
        ORDER BY c.zone_id IS NULL, zone_code
    """
    return run(con, sql, scope)


def cost_per_scan(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    """Per local day with scans or costs: ``cost``, ``scans`` and ``cost_per_scan`` (null without scans)."""
    sql = f"""
        WITH b AS (
            SELECT bucket AS b, sum(n) AS n FROM {scan_cube(con, scope)} GROUP BY 1
        ), sc AS (
            SELECT CAST({scope.local_bucket('b')} AS DATE) AS day, sum(n) AS scans FROM b GROUP BY 1
        ), co AS (
            SELECT c.date AS day, sum(c.amount) AS cost FROM costs c WHERE {scope.costs_where('c')} GROUP BY 1
        )
        SELECT day, coalesce(co.cost, 0)::DOUBLE AS cost, coalesce(sc.scans, 0)::BIGINT AS scans,
               {figures.cost_per_scan("co.cost", "sc.scans")} AS cost_per_scan
        FROM sc FULL JOIN co USING (day) ORDER BY day
    """
    return run(con, sql, scope)


Query = Callable[..., pa.Table]

# Every named query; the preview runs PREVIEW_QUERIES, the cost report the cost ones.
QUERIES: dict[str, Query] = {
    "headline": headline,
    "scans_over_time": scans_over_time,
    "daily_productivity": daily_productivity,
    "productivity": productivity,
    "zone_completion": zone_completion,
    "session_durations": session_durations,
    "cost_by_category": cost_by_category,
    "cost_over_time": cost_over_time,
    "cost_by_user": cost_by_user,
    "cost_by_zone": cost_by_zone,
    "cost_per_scan": cost_per_scan,
}

PREVIEW_QUERIES: tuple[str, ...] = (
    "headline", "scans_over_time", "daily_productivity", "productivity", "zone_completion",
    "session_durations", "cost_by_category", "cost_over_time", "cost_per_scan",
)


def query_params(name: str, granularity: str) -> dict[str, Any]:
    """The extra arguments a named query takes (only ``scans_over_time`` has one)."""
    return {"granularity": granularity} if name == "scans_over_time" else {}

