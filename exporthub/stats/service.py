"""The statistics preview as a domain service: permission, a stable lake snapshot, and a cache.

Every call takes the acting user (``actor``, a username) and needs ``exports.view`` on the project,
checked before the cache is consulted. Results are cached per process by (project, lake data version,
users version, query, resolved filters, parameters), so a repeated view is answered from memory and any new lake
snapshot (an import, a compaction) or user change makes the old entries unreachable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import select

from exporthub import lake
from exporthub.access import get_project, get_user, require, user_rows
from exporthub.context import register_users
from exporthub.db import Database
from exporthub.lake.snapshot import load_tables
from exporthub.models import Membership
from exporthub.permissions import Permission
from exporthub.settings import Settings
from exporthub.stats import cubes, options
from exporthub.stats.cache import ResultCache
from exporthub.stats.explore import ExploreSpec, explore
from exporthub.stats.filters import Scope, StatsFilter
from exporthub.stats.queries import GRANULARITIES, PREVIEW_QUERIES, QUERIES, cube_name, query_params

# One per process, shared by every page session: keys carry the project, and permission is checked
# before any lookup.
DEFAULT_CACHE = ResultCache(maxsize=512)
# Scan cubes are the big entries (about one row per hundred scans), so they get a short cache of their
# own: the explore section and a re-drawn view reuse the cube the preview just built.
DEFAULT_CUBE_CACHE = ResultCache(maxsize=8)


@dataclass(frozen=True)
class StatsResult:
    """One query's table, the data cut-off it reflects, and whether it came from the cache."""

    table: pa.Table
    cutoff: datetime
    data_version: str
    cached: bool
    # What the table depends on (project, lake snapshot ids, users' fingerprint, the query and its resolved
    # filters): a key for caching what is drawn from it.
    key: tuple[Hashable, ...] = ()


@dataclass(frozen=True)
class Preview:
    """Every chart's table for one view of one project.

    ``cutoff`` is when the lake snapshot behind the numbers was taken (UTC); data that arrived
    later is not in them.
    """

    project: str
    timezone: str
    filters: StatsFilter
    scope: Scope
    granularity: str
    tables: Mapping[str, pa.Table]
    cutoff: datetime
    data_version: str
    cache_hits: int = 0
    users_version: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        """What the numbers depend on: the project, its lake snapshot ids, the users' fingerprint, the
        resolved filters and the granularity (a key for caching what is drawn from them)."""
        return (self.project, self.data_version, self.users_version, self.scope.key(), self.granularity)

    @property
    def headline(self) -> dict[str, Any]:
        """The headline figures: scans, items, active_users, sessions, hours, cost, cost_per_scan."""
        headline: dict[str, Any] = self.tables["headline"].to_pylist()[0]
        return headline


@dataclass(frozen=True)
class FilterOptions:
    """What the filters may choose: live zone codes, areas, usernames (with display names)."""

    zones: tuple[str, ...]
    areas: tuple[str, ...]
    users: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Request:
    """One call's view of a project: who may see it, the snapshot, and a lazily opened connection."""

    settings: Settings
    slug: str
    timezone: str
    users: list[dict[str, Any]]
    users_version: str
    snapshot_ids: dict[str, int | None]  # the files are listed only when a query has to run
    tables: dict[str, Any]  # the Iceberg tables the ids were read from (listed from, not loaded again)
    data_version: str
    cutoff: datetime
    _con: duckdb.DuckDBPyConnection | None = None
    snap: lake.LakeSnapshot | None = None
    cubes: dict[Hashable, bool] = field(default_factory=dict)  # cube key -> from the cache (or built)

    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = lake.connect(self.settings)
            self.snap = lake.snapshot(self.settings, self.slug, self.snapshot_ids, loaded=self.tables)
            self.snap.register(self._con)
            register_users(self._con, self.users)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class StatsService:
    """Preview, explore and filter options for the statistics page.

    ``clock`` gives "now" (aware) for date presets; ``cache`` defaults to the process-wide one.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        cache: ResultCache | None = None,
        cube_cache: ResultCache | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.cache = cache if cache is not None else DEFAULT_CACHE
        # A service given its own result cache gets its own cube cache too, unless told otherwise.
        self.cubes = cube_cache if cube_cache is not None else (
            DEFAULT_CUBE_CACHE if cache is None else ResultCache(maxsize=DEFAULT_CUBE_CACHE.maxsize))
        self.clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ public
    def preview(self, actor: str, project_slug: str, filters: StatsFilter, *,
                granularity: str = "day") -> Preview:
        """Every preview chart's table. Raises ``PermissionDenied``/``NotFound`` like the job service."""
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")
        request = self._request(actor, project_slug)
        scope = filters.resolve(request.timezone, self.clock())
        tables: dict[str, pa.Table] = {}
        hits = 0
        try:
            for name in PREVIEW_QUERIES:
                result = self._named(request, scope, name, query_params(name, granularity))
                tables[name] = result.table
                hits += result.cached
        finally:
            request.close()
        return Preview(project=project_slug, timezone=request.timezone, filters=filters, scope=scope,
                       granularity=granularity, tables=tables, cutoff=request.cutoff,
                       data_version=request.data_version, cache_hits=hits,
                       users_version=request.users_version)

    def query(self, actor: str, project_slug: str, name: str, filters: StatsFilter,
              **params: Any) -> StatsResult:
        """One named query (see ``exporthub.stats.queries.QUERIES``), cached like the preview."""
        if name not in QUERIES:
            raise KeyError(f"unknown statistics query {name!r}")
        request = self._request(actor, project_slug)
        scope = filters.resolve(request.timezone, self.clock())
        try:
            return self._named(request, scope, name, params)
        finally:
            request.close()

    def explore(
        self, actor: str, project_slug: str, filters: StatsFilter, spec: ExploreSpec
    ) -> StatsResult:
        """The explore table for ``spec``. Raises ``InvalidVariable`` for a spec that does not fit."""
        spec.check()
        request = self._request(actor, project_slug)
        scope = filters.resolve(request.timezone, self.clock())
        try:
            return self._cached(
                request, ("explore", spec, scope.key()),
                lambda: self._with_cube(request, scope, lambda con: explore(con, scope, spec)),
            )
        finally:
            request.close()

    def filter_options(self, actor: str, project_slug: str) -> FilterOptions:
        """The project's zones, areas and users for the filter controls (needs ``exports.view``)."""
        request = self._request(actor, project_slug)
        try:
            result = self._cached(request, ("options",), lambda: _options_table(self.db, request))
        finally:
            request.close()
        row = result.table.to_pylist()[0]
        return FilterOptions(zones=tuple(row["zones"]), areas=tuple(row["areas"]),
                             users=dict(zip(row["usernames"], row["display_names"], strict=True)))

    # ------------------------------------------------------------------ internals
    def _request(self, actor: str, slug: str) -> _Request:
        with self.db.read() as s:
            project = get_project(s, slug)
            require(s, get_user(s, actor), project, Permission.VIEW)
            timezone = project.timezone
            users = user_rows(s)
            members = sorted(s.scalars(select(Membership.user_id).where(Membership.project_id == project.id)))
        # Names and memberships change what the results say (labels, the users filter's choices).
        fingerprint = "\n".join(f"{u['user_id']}:{u['username']}:{u['display_name']}:{u['deleted_at']}"
                                for u in users) + f"\nmembers:{members}"
        users_version = hashlib.sha1(fingerprint.encode()).hexdigest()[:16]
        # The cache key is the snapshot's ids, so it describes exactly the files the results come from.
        cutoff = datetime.now(UTC)
        tables = load_tables(self.settings, slug)
        ids = lake.current_ids(self.settings, slug, tables)
        return _Request(settings=self.settings, slug=slug, timezone=timezone, users=users,
                        users_version=users_version, snapshot_ids=ids, tables=tables,
                        data_version=lake.version_of(slug, ids), cutoff=cutoff)

    def _named(self, request: _Request, scope: Scope, name: str, params: dict[str, Any]) -> StatsResult:
        key = ("query", name, scope.key(), tuple(sorted(params.items())))
        # The connection (and the scan cube) is only made on the first miss of the request.
        return self._cached(
            request, key,
            lambda: self._with_cube(request, scope, lambda con: QUERIES[name](con, scope, **params)),
        )

    def _with_cube(
        self, request: _Request, scope: Scope, run: Callable[[duckdb.DuckDBPyConnection], pa.Table]
    ) -> pa.Table:
        """Run a query on the request's connection, with the scope's scan cube from the cube cache when
        it is there (else from the kept file cubes, see :mod:`exporthub.stats.cubes`), and keep a cube
        the query had to build for the next request."""
        con = request.con()
        key = (request.slug, request.data_version, request.users_version, "cube", scope.key())
        name = cube_name(scope)
        if key not in request.cubes:
            cube = self.cubes.get(key)
            if cube is not None:
                con.register(f"{name}_arrow", cube)
                con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {name}_arrow")
            else:  # from the kept per-file cubes when it can; else the query groups the raw scans
                assert request.snap is not None
                cubes.provide(con, self.settings, request.snap, scope, name)
            request.cubes[key] = cube is not None
        table = run(con)
        if not request.cubes[key] and con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
        ).fetchall()[0][0]:
            self.cubes.put(key, con.sql(f"SELECT * FROM {name}").to_arrow_table())
            request.cubes[key] = True
        return table

    def _cached(
        self, request: _Request, what: tuple[Hashable, ...], compute: Callable[[], pa.Table]
    ) -> StatsResult:
        key = (request.slug, request.data_version, request.users_version, *what)
        hit = self.cache.get(key)
        if hit is not None:
            table, cutoff = hit
            return StatsResult(table=table, cutoff=cutoff, data_version=request.data_version, cached=True,
                               key=key)
        table = compute()
        self.cache.put(key, (table, request.cutoff))
        return StatsResult(table=table, cutoff=request.cutoff, data_version=request.data_version,
                           cached=False, key=key)


def _options_table(db: Database, request: _Request) -> pa.Table:
    con = request.con()
    users = options.usernames(db, request.slug, options.active_user_ids(con))
    return pa.table({
        "zones": [options.zone_codes(con)],
        "areas": [options.area_names(con)],
        "usernames": [list(users)],
        "display_names": [list(users.values())],
    })
