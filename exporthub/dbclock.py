"""The database's clock, as a SQL expression.

Leases, heartbeats, schedules, worker liveness and periodic runs are all judged on one clock, the
database's, so a host whose clock runs ahead or behind cannot reap a healthy job or run a scheduled
one early. Columns hold naive UTC (see :class:`exporthub.models.UTCDateTime`); on PostgreSQL that is
``timezone('utc', statement_timestamp())``, on SQLite (one machine, one clock) the same text format
SQLAlchemy stores, so comparisons with stored values stay correct.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class db_now(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it renders
    """``now + offset_seconds`` on the database's clock, as naive UTC (negative offsets look back)."""

    type = DateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_seconds: float = 0.0) -> None:
        super().__init__()
        self.offset_seconds = float(offset_seconds)

    # The offset is part of the cache key: two offsets must not share a compiled statement.
    _traverse_internals = [*FunctionElement._traverse_internals,
                           ("offset_seconds", InternalTraversal.dp_plain_obj)]


@compiles(db_now, "postgresql")
def _postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    now = "timezone('utc', statement_timestamp())"
    if element.offset_seconds:
        return f"({now} + interval '{element.offset_seconds!r} seconds')"
    return now


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    if element.offset_seconds:
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '{element.offset_seconds:+.6f} seconds')"
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"
