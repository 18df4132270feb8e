"""The statistics result and cube caches: hits, the data version, no sharing, permission first, bounds."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from exporthub import lake
from exporthub.errors import NotFound, PermissionDenied
from exporthub.stats import ExploreSpec, ResultCache, StatsFilter, StatsService
from tests._stats_reference import (
    NOW,
    ref,  # noqa: F401 - the fixture is used by name
    service,
)


def test_cache_hits_and_the_data_version(demo_hub, ref):
    svc = service(demo_hub)
    first = svc.preview("analyst", "demo-open", StatsFilter())
    assert first.cache_hits == 0
    assert first.data_version == lake.data_version(demo_hub.settings, "demo-open")
    assert first.cutoff.tzinfo is not None and first.cutoff <= datetime.now(UTC)
    second = svc.preview("viewer", "demo-open", StatsFilter())
    assert second.cache_hits == len(second.tables)
    assert second.headline == first.headline

    # New data: a commit to the lake makes the old entries unreachable.
    extra = ref.scans.head(50).with_columns(pl.col("scan_id") + 10_000_000, deleted=pl.lit(False))
    lake.append_rows(demo_hub.settings, "demo-open", "scans", extra.to_arrow())
    third = svc.preview("analyst", "demo-open", StatsFilter())
    assert third.cache_hits == 0 and third.data_version != first.data_version
    assert third.headline["scans"] == first.headline["scans"] + 50


def test_the_scan_cube_is_built_once_and_reused(demo_hub, ref):
    cubes = ResultCache(maxsize=2)
    svc = StatsService(
        demo_hub.db, demo_hub.settings, cache=ResultCache(), cube_cache=cubes, clock=lambda: NOW
    )
    svc.preview("analyst", "demo-open", StatsFilter())
    assert len(cubes) == 1 and cubes.hits == 0  # one pass over the scans for every chart
    table = svc.explore("analyst", "demo-open", StatsFilter(), ExploreSpec("quantity", "zone")).table
    assert cubes.hits == 1  # the explore section reused it
    assert sum(table.column("quantity").to_pylist()) == ref.scans_in(StatsFilter())["quantity"].sum()
    deleted = StatsFilter(include_deleted=True)
    assert svc.preview("analyst", "demo-open", deleted).headline["scans"] == ref.scans_in(deleted).height
    assert len(cubes) == 2  # another view, another cube


def test_projects_never_share_entries(demo_hub):
    svc = service(demo_hub)
    open_ = svc.preview("manager", "demo-open", StatsFilter()).headline
    closed = svc.preview("manager", "demo-closed", StatsFilter())
    assert closed.cache_hits == 0
    assert closed.headline["scans"] != open_["scans"]


def test_permission_is_checked_before_the_cache(demo_hub):
    svc = service(demo_hub)
    svc.preview("analyst", "demo-open", StatsFilter())  # now cached
    for call in (
        lambda: svc.preview("outsider", "demo-open", StatsFilter()),
        lambda: svc.explore("outsider", "demo-open", StatsFilter(), ExploreSpec("scans", "day")),
        lambda: svc.filter_options("outsider", "demo-open"),
        lambda: svc.preview("analyst", "demo-closed", StatsFilter()),
    ):  # analyst is no member there
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(NotFound):
        svc.preview("analyst", "no-such-project", StatsFilter())


def test_cache_is_bounded():
    cache = ResultCache(maxsize=2)
    for i in range(3):
        cache.put(("p", i), i)
    assert len(cache) == 2 and cache.get(("p", 0)) is None and cache.get(("p", 2)) == 2
