"""Filters for *activity* (scans and zone sessions counted in the users, zones and sessions exports).

Unlike :func:`exporters._filters.scan_filters`, soft-deleted scans and sessions are never activity:
in these exports ``includeDeleted`` brings back deleted *subjects* (users, zones, sessions), flagged,
while the figures beside them always count live rows only, so every export agrees on the numbers.
"""

from __future__ import annotations

from exporters._filters import Where
from exporthub.context import JobContext


def activity_filters(
    ctx: JobContext, *, alias: str, time_column: str, zone_alias: str | None = None
) -> Where:
    """Live rows of table ``alias`` whose ``time_column`` lies in the date window, in the chosen zones.

    ``zone_alias`` names a joined ``zones`` row; pass ``None`` to skip the ``zones`` variable (the
    caller filters zones itself).
    """
    where = Where()
    where.add(f"NOT {alias}.deleted")
    if ctx.window is not None:
        where.add(f"{alias}.{time_column} >= ? AND {alias}.{time_column} < ?", ctx.window.start_utc,
                  ctx.window.end_utc)
    if zone_alias is not None and ctx.variables.get("zones"):
        where.add(f"{zone_alias}.code IN (SELECT unnest(?::VARCHAR[]))", list(ctx.variables["zones"]))
    return where


def zone_filter(ctx: JobContext, *, zone_alias: str) -> Where:
    """Only the zones chosen in the ``zones`` variable (all when it is empty)."""
    where = Where()
    if ctx.variables.get("zones"):
        where.add(f"{zone_alias}.code IN (SELECT unnest(?::VARCHAR[]))", list(ctx.variables["zones"]))
    return where
