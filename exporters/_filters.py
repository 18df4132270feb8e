"""SQL filter fragments shared by exporters: date window, zones, deleted rows.

("Only new since last export" is not a filter but another source: :mod:`exporthub.lake.incremental`.)

Values are bound as parameters, never pasted into SQL, except the project's timezone which is a
validated IANA name from the metadata DB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporthub.context import JobContext


@dataclass
class Where:
    """A conjunction of SQL conditions with their parameters."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def scan_filters(ctx: JobContext, *, alias: str = "s") -> Where:
    """Filters on scans from the common variables: dateRange, zones, includeDeleted.

    Every condition is on the scans' own columns (the chosen zone codes become zone ids first), so
    the scan needs no join and DuckDB keeps the rows in the order they are stored.
    """
    where = Where()
    v = ctx.variables
    if ctx.window is not None:
        where.add(f"{alias}.scanned_at >= ? AND {alias}.scanned_at < ?", ctx.window.start_utc, ctx.window.end_utc)
    if not v.get("includeDeleted", False):
        where.add(f"NOT {alias}.deleted")
    if v.get("zones"):
        rows = ctx.sql().execute("SELECT zone_id FROM zones WHERE code IN (SELECT unnest(?::VARCHAR[]))",
                                 [list(v["zones"])]).fetchall()
        ids = ", ".join(str(int(r[0])) for r in rows)  # integers from the lake, safe to inline
        where.add(f"{alias}.zone_id IN ({ids})" if ids else "false")
    return where


def tz_literal(ctx: JobContext) -> str:
    """The project timezone as a SQL string literal (names come from the IANA database)."""
    return "'" + ctx.project.timezone.replace("'", "") + "'"
