"""Ad-hoc exploration: one measure by one or two dimensions, built from whitelisted SQL fragments.

The caller names a measure and dimensions by key (``"scans"``, ``"day"``…); every SQL fragment comes
from the tables below and every value from the :class:`Scope`'s bound parameters, so no user text ever
reaches the SQL. Unknown keys and combinations that mean nothing (cost by hour of day, by session kind)
raise :class:`InvalidVariable` naming the variable, which is also what the ``explore`` export refuses.

How it stays fast: each measure reads one *base* (scans, zone sessions or costs) in two steps. Step
one filters the raw rows and reduces them to the keys the chosen dimensions need (a 15-minute UTC
bucket, zone, user, session) with partial sums; step two turns buckets into local time, joins names
and aggregates. Ten million scans become a few hundred thousand rows before any timezone arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from exporthub import figures
from exporthub.errors import InvalidVariable
from exporthub.stats.filters import Scope, bucket_of
from exporthub.stats.queries import run, scan_cube

NO_DIMENSION = "none"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    base: str  # "scans" | "sessions" | "costs"
    aggregate: str  # over step one's columns
    partials: str = ""  # step-one aggregates for additive measures ("" = keep distinct rows)
    distinct_column: str = ""  # step-one column kept per key set for a distinct count


@dataclass(frozen=True)
class Dimension:
    key: str
    label: str
    select: str  # over step two's ``b`` (t = local timestamp) and the joined ``z``, ``u``
    order: str | None  # None: by the value itself; else an aggregate valid after GROUP BY
    needs: str  # "t", "zone_id", "user_id" or "session_id": what step one must keep
    bases: frozenset[str]


MEASURES: dict[str, Measure] = {
    m.key: m
    for m in (
        Measure("scans", "Scan count", "scans", "sum(b.n)::BIGINT", partials="count(*) AS n"),
        Measure("quantity", "Quantity", "scans", "sum(b.q)::BIGINT", partials="sum(s.quantity) AS q"),
        Measure("barcodes", "Distinct barcodes", "scans", "count(DISTINCT b.bc)::BIGINT",
                distinct_column="s.barcode"),
        Measure("sessions", "Sessions", "sessions", "count(*)::BIGINT"),
        Measure("hours", "Hours", "sessions", "coalesce(sum(b.hours), 0)::DOUBLE"),
        Measure("cost", "Cost", "costs", "coalesce(sum(b.amount), 0)::DOUBLE"),
    )
}

_ALL = frozenset({"scans", "sessions", "costs"})
_TIMED = frozenset({"scans", "sessions"})  # costs carry a day, not a time of day
DIMENSIONS: dict[str, Dimension] = {
    d.key: d
    for d in (
        Dimension("day", "Day", "CAST(b.t AS DATE)", None, "t", _ALL),
        Dimension("hour", "Hour of day", "hour(b.t)::INTEGER", None, "t", _TIMED),
        Dimension("weekday", "Weekday", "strftime(b.t, '%a')", "min(isodow(b.t))", "t", _ALL),
        Dimension("zone", "Zone", "coalesce(z.code, CASE WHEN b.zone_id IS NULL THEN '(no zone)' "
                  "ELSE 'zone #' || b.zone_id END)", None, "zone_id", _ALL),
        Dimension("area", "Area", "coalesce(z.area, '(no area)')", None, "zone_id", _ALL),
        Dimension("user", "User", "coalesce(u.username, CASE WHEN b.user_id IS NULL THEN '(no user)' "
                  "ELSE 'user #' || b.user_id END)", None, "user_id", _ALL),
        Dimension("kind", "Session kind", "coalesce(zs.kind, '(none)')", None, "session_id", _TIMED),
    )
}


@dataclass(frozen=True)
class ExploreSpec:
    """A measure and one or two dimensions; :meth:`check` refuses what does not fit."""

    measure: str
    dim1: str
    dim2: str | None = None

    def __post_init__(self) -> None:
        if self.dim2 in ("", NO_DIMENSION):
            object.__setattr__(self, "dim2", None)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (self.dim1,) if self.dim2 is None else (self.dim1, self.dim2)

    def check(self) -> ExploreSpec:
        """Return self, or raise :class:`InvalidVariable` naming ``measure``, ``dim1`` or ``dim2``."""
        if self.measure not in MEASURES:
            raise InvalidVariable("measure", f"must be one of {', '.join(MEASURES)}; got {self.measure!r}")
        base = MEASURES[self.measure].base
        for key, value in (("dim1", self.dim1), ("dim2", self.dim2)):
            if value is None:
                continue
            if value not in DIMENSIONS:
                raise InvalidVariable(key, f"must be one of {', '.join(DIMENSIONS)}; got {value!r}")
            if base not in DIMENSIONS[value].bases:
                raise InvalidVariable(key, f"{MEASURES[self.measure].label} cannot be split by "
                                           f"{DIMENSIONS[value].label.lower()}")
        if self.dim2 is not None and self.dim2 == self.dim1:
            raise InvalidVariable("dim2", "choose a second dimension different from the first")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """The result's column names: the dimension keys, then the measure key."""
        return (*self.dimensions, self.measure)

    @classmethod
    def from_variables(cls, variables: dict[str, object]) -> ExploreSpec:
        return cls(str(variables.get("measure") or ""), str(variables.get("dim1") or ""),
                   str(variables.get("dim2") or NO_DIMENSION)).check()


def dimensions_for(measure: str) -> list[str]:
    """The dimension keys that can split ``measure`` (for the page's choices)."""
    base = MEASURES[measure].base
    return [d.key for d in DIMENSIONS.values() if base in d.bases]


def _step_one(spec: ExploreSpec, scope: Scope, needs: set[str], cube: str | None) -> str:
    measure = MEASURES[spec.measure]
    if measure.base == "scans" and cube is not None and not measure.distinct_column:
        # Additive measures come from the scan cube (see ``queries.scan_cube``): already reduced.
        keys = ["bucket"] if "t" in needs else []
        keys += [k for k in ("zone_id", "user_id", "session_id") if k in needs]
        group = ", ".join(str(i + 1) for i in range(len(keys)))
        return f"SELECT {', '.join(keys)}, sum(n) AS n, sum(q) AS q FROM {cube} GROUP BY {group}"
    if measure.base == "scans":
        keys = []
        if "t" in needs:
            keys.append(f"{bucket_of('s.scanned_at')} AS bucket")
        keys += [f"s.{k}" for k in ("zone_id", "user_id", "session_id") if k in needs]
        if measure.distinct_column:
            # A distinct count cannot be pre-aggregated; keep the rows, but as 64-bit hashes, which
            # DuckDB counts distinctly several times faster than strings (a collision among a project's
            # barcodes is vanishingly unlikely: about n²/2⁶⁵, 10⁻⁸ for a million distinct codes).
            cols = ", ".join([*keys, f"hash({measure.distinct_column}) AS bc"])
            return f"SELECT {cols} FROM scans s WHERE {scope.scans_where('s')}"
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
        cols = ", ".join([*keys, measure.partials])
        return f"SELECT {cols} FROM scans s WHERE {scope.scans_where('s')}{group}"
    if measure.base == "sessions":
        return f"""
            SELECT {scope.local('zs.started_at')} AS t, zs.zone_id, zs.user_id, zs.session_id,
                   {figures.session_hours("zs")} AS hours
            FROM zone_sessions zs WHERE {scope.sessions_where('zs')}
        """
    return f"""
        SELECT CAST(c.date AS TIMESTAMP) AS t, c.zone_id, c.user_id, c.amount
        FROM costs c WHERE {scope.costs_where('c')}
    """


def build_sql(spec: ExploreSpec, scope: Scope, *, cube: str | None = None) -> str:
    """The SQL for ``spec`` under ``scope`` (parameters come from :func:`~exporthub.stats.filters.bind`).

    ``cube`` names the scope's scan cube when the connection has one (additive scan measures read it).
    """
    spec.check()
    measure = MEASURES[spec.measure]
    dims = [DIMENSIONS[k] for k in spec.dimensions]
    needs = {d.needs for d in dims}
    step_one = _step_one(spec, scope, needs, cube)
    if measure.base == "scans" and "t" in needs:
        # Local time is computed once per distinct bucket, then joined back (a small hash join).
        step_two = f"""
            tmap AS (
                SELECT bucket, {scope.local_bucket('bucket')} AS t FROM (SELECT DISTINCT bucket FROM one)
            ),
            b AS (SELECT one.*, tmap.t FROM one JOIN tmap ON tmap.bucket = one.bucket)
        """
    else:
        step_two = "b AS (SELECT * FROM one)"
    joins = []
    if "zone_id" in needs:
        joins.append("LEFT JOIN zones z ON z.zone_id = b.zone_id")
    if "user_id" in needs:
        joins.append("LEFT JOIN users u ON u.user_id = b.user_id")
    if "session_id" in needs:
        joins.append("LEFT JOIN zone_sessions zs ON zs.session_id = b.session_id")
    # Aliases are quoted: "user" is a keyword.
    selects = ", ".join(f'{d.select} AS "{d.key}"' for d in dims)
    group = ", ".join(str(i + 1) for i in range(len(dims)))
    order = ", ".join(d.order or f'"{d.key}"' for d in dims)
    return f"""
        WITH one AS ({step_one}),
        {step_two}
        SELECT {selects}, {measure.aggregate} AS "{measure.key}"
        FROM b {' '.join(joins)}
        GROUP BY {group}
        ORDER BY {order}
    """


def explore(con: duckdb.DuckDBPyConnection, scope: Scope, spec: ExploreSpec) -> pa.Table:
    """The table behind an explore view: one row per dimension value (pair), then the measure."""
    measure = MEASURES[spec.check().measure]
    cube = scan_cube(con, scope) if measure.base == "scans" and not measure.distinct_column else None
    return run(con, build_sql(spec, scope, cube=cube), scope)
