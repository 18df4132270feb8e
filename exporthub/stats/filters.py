"""The statistics filters: what the page's controls and the report's variables choose.

:class:`StatsFilter` is the user's choice (a date preset or custom days, zones, areas, users, include
deleted). :meth:`StatsFilter.resolve` turns it into a :class:`Scope` for one project at one moment: the
preset becomes a concrete window of whole local days, and the scope can write the SQL conditions for
each lake table. Values are always bound as named parameters (``$zones``…), never pasted into SQL.

Meaning of the filters, the same for every chart, table and report:

* **date window** — scans by ``scanned_at``, zone sessions by ``started_at`` (both as UTC bounds of
  whole days in the project's timezone), costs by their ``date`` (already a local day).
* **zones / areas** — scans, sessions and costs of zones with one of the codes *and* in one of the
  areas (an empty list means no restriction). Costs that carry no zone fall out once either is set.
* **users** — scans, sessions and costs of these usernames. Costs that carry no user fall out.
* **include deleted** — soft-deleted scans and sessions count only when it is set, and deleted zones
  only appear in the zone list then. Costs have no deleted flag: the costs table is the one source of
  cost, so cost totals never change with this switch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporthub.errors import InvalidVariable
from exporthub.export_config import DATE_PRESETS, DateWindow, resolve_date_window

# Scans are pre-aggregated into UTC buckets of this size before local times are computed. Every
# timezone offset in the IANA database is a multiple of 15 minutes, so local hours and days built from
# these buckets are exact, while the costly timezone conversion runs on thousands of rows, not millions.
BUCKET_US = 15 * 60 * 1_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARAM = re.compile(r"\$([a-z_]+)")


@dataclass(frozen=True)
class StatsFilter:
    """The filters of the statistics page and reports. Tuples keep it hashable (a cache key part)."""

    date_range: str = "all"
    date_from: date | None = None
    date_to: date | None = None
    zones: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    include_deleted: bool = False

    def __post_init__(self) -> None:
        if self.date_range not in DATE_PRESETS:
            raise InvalidVariable("dateRange", f"must be one of {', '.join(DATE_PRESETS)}")
        if self.date_range == "custom":
            if self.date_from is None:
                raise InvalidVariable("dateFrom", "a custom date range needs a start date")
            if self.date_to is None:
                raise InvalidVariable("dateTo", "a custom date range needs an end date")
            if self.date_from > self.date_to:
                raise InvalidVariable("dateTo", "the end date is before the start date")
        else:  # from/to only mean something for a custom range
            object.__setattr__(self, "date_from", None)
            object.__setattr__(self, "date_to", None)
        for name in ("zones", "areas", "users"):
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))

    def to_variables(self) -> dict[str, Any]:
        """The export variables that mean exactly this filter (``statistics``, ``explore``, ``cost``)."""
        return {
            "dateRange": self.date_range,
            "dateFrom": self.date_from.isoformat() if self.date_from else None,
            "dateTo": self.date_to.isoformat() if self.date_to else None,
            "zones": list(self.zones),
            "areas": list(self.areas),
            "users": list(self.users),
            "includeDeleted": self.include_deleted,
        }

    @classmethod
    def from_variables(cls, variables: Mapping[str, Any]) -> StatsFilter:
        """The filter from validated export variables; keys an export type lacks are left at defaults."""

        def day(key: str) -> date | None:
            value = variables.get(key)
            return date.fromisoformat(value) if isinstance(value, str) and value else None

        return cls(
            date_range=variables.get("dateRange") or "all",
            date_from=day("dateFrom"),
            date_to=day("dateTo"),
            zones=tuple(variables.get("zones") or ()),
            areas=tuple(variables.get("areas") or ()),
            users=tuple(variables.get("users") or ()),
            include_deleted=bool(variables.get("includeDeleted", False)),
        )

    def resolve(self, timezone: str, now: datetime) -> Scope:
        """The scope for a project in ``timezone``; presets count back from ``now`` (aware)."""
        window = resolve_date_window(self.to_variables(), timezone, now)
        return Scope(timezone=timezone, window=window, zones=self.zones, areas=self.areas,
                     users=self.users, include_deleted=self.include_deleted)


@dataclass(frozen=True)
class Scope:
    """A resolved filter for one project: concrete window, SQL conditions and a cache key."""

    timezone: str
    window: DateWindow | None
    zones: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    include_deleted: bool = False

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None

    def key(self) -> tuple[Any, ...]:
        """Everything that changes the numbers; the window as days, so a preset keys by its days."""
        days = (self.window.first_day, self.window.last_day) if self.window else None
        return (self.timezone, days, self.zones, self.areas, self.users, self.include_deleted)

    # ------------------------------------------------------------------ SQL
    @property
    def tz(self) -> str:
        """The timezone as a SQL literal. Safe: an IANA name checked on construction, quotes removed."""
        return "'" + self.timezone.replace("'", "") + "'"

    def params(self) -> dict[str, Any]:
        """Every named parameter the conditions may use; :func:`bind` keeps those a query names."""
        w = self.window
        buckets = self.bucket_window()
        return {
            "win_start": w.start_utc if w else None,
            "win_end": w.end_utc if w else None,
            "first_day": w.first_day if w else None,
            "last_day": w.last_day if w else None,
            "zones": list(self.zones),
            "areas": list(self.areas),
            "users": list(self.users),
            "bucket_lo": buckets[0] if buckets else None,
            "bucket_hi": buckets[1] if buckets else None,
        }

    def _zone_ids(self) -> str | None:
        conds = []
        if self.zones:
            conds.append("code IN (SELECT unnest($zones::VARCHAR[]))")
        if self.areas:
            conds.append("area IN (SELECT unnest($areas::VARCHAR[]))")
        return f"SELECT zone_id FROM zones WHERE {' AND '.join(conds)}" if conds else None

    def _user_ids(self) -> str | None:
        if not self.users:
            return None
        return "SELECT user_id FROM users WHERE username IN (SELECT unnest($users::VARCHAR[]))"

    def _common(self, alias: str) -> list[str]:
        conds = []
        zone_ids, user_ids = self._zone_ids(), self._user_ids()
        if zone_ids:
            conds.append(f"{alias}.zone_id IN ({zone_ids})")
        if user_ids:
            conds.append(f"{alias}.user_id IN ({user_ids})")
        return conds

    def scans_where(self, alias: str = "s") -> str:
        """Conditions on ``scans AS alias``."""
        conds = self._common(alias)
        if self.window:
            conds.append(f"{alias}.scanned_at >= $win_start AND {alias}.scanned_at < $win_end")
        if not self.include_deleted:
            conds.append(f"NOT {alias}.deleted")
        return " AND ".join(conds) or "TRUE"

    def bucket_window(self) -> tuple[int, int] | None:
        """The window as bucket numbers ``[lo, hi)``; None without a window, or when a bound is not on a
        bucket edge (local midnights are, in every IANA zone since 1972)."""
        if self.window is None:
            return None
        lo, hi = (_epoch_us(self.window.start_utc), _epoch_us(self.window.end_utc))
        if lo % BUCKET_US or hi % BUCKET_US:
            return None
        return lo // BUCKET_US, hi // BUCKET_US

    def cube_where(self, alias: str = "c") -> str | None:
        """Conditions on a kept scan cube (see :mod:`exporthub.stats.cubes`) selecting exactly the rows
        :meth:`scans_where` selects, or None when the window does not fall on bucket edges."""
        conds = self._common(alias)
        if self.window:
            if self.bucket_window() is None:
                return None
            conds.append(f"{alias}.bucket >= $bucket_lo AND {alias}.bucket < $bucket_hi")
        if not self.include_deleted:
            conds.append(f"NOT {alias}.deleted")
        return " AND ".join(conds) or "TRUE"

    def sessions_where(self, alias: str = "zs") -> str:
        """Conditions on ``zone_sessions AS alias`` (a session belongs to the day it started)."""
        conds = self._common(alias)
        if self.window:
            conds.append(f"{alias}.started_at >= $win_start AND {alias}.started_at < $win_end")
        if not self.include_deleted:
            conds.append(f"NOT {alias}.deleted")
        return " AND ".join(conds) or "TRUE"

    def costs_where(self, alias: str = "c") -> str:
        """Conditions on ``costs AS alias`` (never the deleted switch: costs are not soft-deleted)."""
        conds = self._common(alias)
        if self.window:
            conds.append(f"{alias}.date BETWEEN $first_day AND $last_day")
        return " AND ".join(conds) or "TRUE"

    def zones_where(self, alias: str = "z") -> str:
        """Which zones a zone list shows: the chosen codes and areas, deleted ones only when included."""
        conds = []
        if self.zones:
            conds.append(f"{alias}.code IN (SELECT unnest($zones::VARCHAR[]))")
        if self.areas:
            conds.append(f"{alias}.area IN (SELECT unnest($areas::VARCHAR[]))")
        if not self.include_deleted:
            conds.append(f"NOT {alias}.deleted")
        return " AND ".join(conds) or "TRUE"

    def local(self, utc_expr: str) -> str:
        """SQL for a UTC timestamp expression as naive project-local time."""
        return f"timezone({self.tz}, {utc_expr})"

    def local_bucket(self, bucket_expr: str) -> str:
        """SQL for the local start of a :data:`BUCKET_US` bucket number (see its comment)."""
        return f"timezone({self.tz}, make_timestamptz({bucket_expr} * {BUCKET_US}))"


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def bucket_of(utc_expr: str) -> str:
    """SQL for the UTC bucket number of a timestamp (lake times are after 1970, so ``//`` floors)."""
    return f"epoch_us({utc_expr}) // {BUCKET_US}"


def bind(sql: str, scope: Scope) -> dict[str, Any]:
    """The scope's parameters that ``sql`` names (DuckDB refuses parameters a query does not use)."""
    used = set(_PARAM.findall(sql))
    return {k: v for k, v in scope.params().items() if k in used}
