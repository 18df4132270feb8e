"""Every statistics query against an independent polars implementation over the lake's Parquet files.

The reference works differently on purpose: it converts every timestamp to local time row by row and
filters by local dates, where the domain filters by UTC bounds and converts 15-minute buckets.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import select

from exporthub import lake
from exporthub.errors import InvalidVariable, NotFound, PermissionDenied
from exporthub.models import User
from exporthub.stats import (
    DIMENSIONS,
    MEASURES,
    ExploreSpec,
    ResultCache,
    StatsFilter,
    StatsService,
    dimensions_for,
)
from exporthub.stats.queries import DURATION_BUCKETS
from tests._lake import lake_files

TZ = "Europe/Berlin"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the independent reference


class Lake:
    """The demo-open lake read with polars, plus the users from the metadata DB."""

    def __init__(self, hub, slug: str = "demo-open") -> None:
        def read(table: str) -> pl.DataFrame:
            return pl.concat([pl.read_parquet(f) for f in lake_files(hub.settings, slug, table)])

        self.zones = read("zones")
        self.sessions = read("zone_sessions")
        self.scans = read("scans")
        self.costs = read("costs")
        with hub.db.read() as s:
            rows = [
                (u.id, u.username, u.display_name, u.deleted_at is not None) for u in s.scalars(select(User))
            ]
        self.users = pl.DataFrame(
            rows, schema=["user_id", "username", "display_name", "deleted"], orient="row"
        )

    def window(self, f: StatsFilter) -> tuple[date, date] | None:
        today = NOW.astimezone(__import__("zoneinfo").ZoneInfo(TZ)).date()
        if f.date_range == "all":
            return None
        if f.date_range == "custom":
            return f.date_from, f.date_to
        days = 7 if f.date_range == "last7days" else 30
        return today - timedelta(days=days - 1), today

    def _who_where(self, df: pl.DataFrame, f: StatsFilter, *, strict_nulls: bool = True) -> pl.DataFrame:
        if f.zones or f.areas:
            z = self.zones
            if f.zones:
                z = z.filter(pl.col("code").is_in(list(f.zones)))
            if f.areas:
                z = z.filter(pl.col("area").is_in(list(f.areas)))
            df = df.filter(pl.col("zone_id").is_in(z["zone_id"].to_list()))
        if f.users:
            ids = self.users.filter(pl.col("username").is_in(list(f.users)))["user_id"].to_list()
            df = df.filter(pl.col("user_id").is_in(ids))
        return df

    def scans_in(self, f: StatsFilter) -> pl.DataFrame:
        df = self.scans.with_columns(
            local=pl.col("scanned_at").dt.convert_time_zone(TZ).dt.replace_time_zone(None)
        )
        win = self.window(f)
        if win:
            df = df.filter(pl.col("local").dt.date().is_between(*win))
        if not f.include_deleted:
            df = df.filter(~pl.col("deleted"))
        return self._who_where(df, f)

    def sessions_in(self, f: StatsFilter) -> pl.DataFrame:
        df = self.sessions.with_columns(
            local=pl.col("started_at").dt.convert_time_zone(TZ).dt.replace_time_zone(None),
            hours=(pl.col("ended_at") - pl.col("started_at")).dt.total_microseconds() / 3_600e6,
        )
        win = self.window(f)
        if win:
            df = df.filter(pl.col("local").dt.date().is_between(*win))
        if not f.include_deleted:
            df = df.filter(~pl.col("deleted"))
        return self._who_where(df, f)

    def costs_in(self, f: StatsFilter) -> pl.DataFrame:
        df = self.costs
        win = self.window(f)
        if win:
            df = df.filter(pl.col("date").is_between(*win))
        return self._who_where(df, f)


def service(hub) -> StatsService:
    return StatsService(hub.db, hub.settings, cache=ResultCache(), clock=lambda: NOW)


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def live_codes(ref: Lake, n: int) -> tuple[str, ...]:
    return tuple(ref.zones.filter(~pl.col("deleted")).sort("code")["code"].to_list()[:n])


@pytest.fixture
def ref(demo_hub) -> Lake:
    return Lake(demo_hub)


def filters(ref: Lake) -> list[StatsFilter]:
    staff = (
        ref.users.filter(pl.col("username").str.starts_with("staff")).sort("username")["username"].to_list()
    )
    deleted_user = ref.users.filter(pl.col("deleted"))["username"].to_list()
    return [
        StatsFilter(),
        StatsFilter(
            date_range="custom",
            date_from=date(2026, 11, 1),
            date_to=date(2026, 11, 15),
            zones=live_codes(ref, 6),
        ),
        StatsFilter(
            areas=("Warehouse A", "Store Floor"), users=tuple(staff[:8] + deleted_user), include_deleted=True
        ),
        StatsFilter(date_range="last7days", include_deleted=True),
    ]


FILTER_IDS = ["all", "custom+zones", "areas+users+deleted", "last7days"]


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


# ------------------------------------------------------------------ the preview queries


@pytest.mark.parametrize("which", range(4), ids=FILTER_IDS)
def test_headline(demo_hub, ref, which):
    f = filters(ref)[which]
    got = service(demo_hub).preview("analyst", "demo-open", f).headline
    scans, sessions, costs = ref.scans_in(f), ref.sessions_in(f), ref.costs_in(f)
    assert got["scans"] == scans.height > 0
    assert got["items"] == scans["quantity"].sum()
    assert got["active_users"] == scans["user_id"].n_unique()
    assert got["sessions"] == sessions.height
    assert close(got["hours"], sessions["hours"].sum())
    assert close(got["cost"], costs["amount"].sum())
    assert close(got["cost_per_scan"], costs["amount"].sum() / scans.height)


@pytest.mark.parametrize("granularity", ["day", "hour"])
@pytest.mark.parametrize("which", range(3), ids=FILTER_IDS[:3])
def test_scans_over_time(demo_hub, ref, which, granularity):
    f = filters(ref)[which]
    got = rows(
        service(demo_hub)
        .preview("analyst", "demo-open", f, granularity=granularity)
        .tables["scans_over_time"]
    )
    scans = ref.scans_in(f).with_columns(
        period=pl.col("local").dt.truncate("1d" if granularity == "day" else "1h")
    )
    expected = scans.group_by("period").agg(pl.len().alias("scans"), pl.col("quantity").sum().alias("items"))
    by_period = {r["period"]: (r["scans"], r["items"]) for r in expected.iter_rows(named=True)}
    step = timedelta(days=1) if granularity == "day" else timedelta(hours=1)
    first, last = min(by_period), max(by_period)
    assert len(got) == (last - first) // step + 1  # every period, quiet ones as zero
    for row in got:
        period = (
            row["period"] if granularity == "hour" else datetime.combine(row["period"], datetime.min.time())
        )
        assert (row["scans"], row["items"]) == by_period.get(period, (0, 0)), period
    assert sum(r["scans"] for r in got) == scans.height


@pytest.mark.parametrize("which", range(4), ids=FILTER_IDS)
def test_productivity_per_user_and_per_day(demo_hub, ref, which):
    f = filters(ref)[which]
    tables = service(demo_hub).preview("analyst", "demo-open", f).tables
    scans, sessions = ref.scans_in(f), ref.sessions_in(f)
    per_session = scans.group_by("session_id").agg(pl.len().alias("n"))
    closed = sessions.filter(pl.col("ended_at").is_not_null()).join(per_session, on="session_id", how="left")
    closed = closed.with_columns(pl.col("n").fill_null(0))
    users = ref.users.select("user_id", "username")

    by_user = {r["username"]: r for r in rows(tables["productivity"])}
    exp_scans = scans.group_by("user_id").agg(
        pl.len().alias("scans"), pl.col("quantity").sum().alias("items")
    )
    exp_rate = closed.group_by("user_id").agg((pl.col("n").sum() / pl.col("hours").sum()).alias("rate"))
    active = set(scans["user_id"].to_list()) | set(sessions["user_id"].to_list())
    assert len(by_user) == len(active)
    for r in exp_scans.join(users, on="user_id").iter_rows(named=True):
        assert (by_user[r["username"]]["scans"], by_user[r["username"]]["items"]) == (r["scans"], r["items"])
    for r in exp_rate.join(users, on="user_id").iter_rows(named=True):
        assert close(by_user[r["username"]]["scans_per_hour"], r["rate"])
    deleted = set(ref.users.filter(pl.col("deleted"))["username"].to_list())
    assert {u for u, r in by_user.items() if r["deleted"]} == deleted & set(by_user)

    by_day = {r["day"]: r for r in rows(tables["daily_productivity"])}
    exp_day = closed.group_by(pl.col("local").dt.date().alias("day")).agg(
        pl.col("n").sum().alias("scans"), pl.col("hours").sum().alias("hours")
    )
    assert set(by_day) == set(exp_day["day"].to_list())
    for r in exp_day.iter_rows(named=True):
        assert by_day[r["day"]]["scans"] == r["scans"]
        assert close(by_day[r["day"]]["scans_per_hour"], r["scans"] / r["hours"])


@pytest.mark.parametrize("which", range(4), ids=FILTER_IDS)
def test_zone_completion_includes_zones_never_scanned(demo_hub, ref, which):
    f = filters(ref)[which]
    got = {
        r["code"]: r
        for r in rows(service(demo_hub).preview("analyst", "demo-open", f).tables["zone_completion"])
    }
    zones = ref.zones
    if f.zones:
        zones = zones.filter(pl.col("code").is_in(list(f.zones)))
    if f.areas:
        zones = zones.filter(pl.col("area").is_in(list(f.areas)))
    if not f.include_deleted:
        zones = zones.filter(~pl.col("deleted"))
    assert set(got) == set(zones["code"].to_list())
    items = dict(ref.scans_in(f).group_by("zone_id").agg(pl.col("quantity").sum()).iter_rows())
    for z in zones.iter_rows(named=True):
        row = got[z["code"]]
        assert row["items"] == items.get(z["zone_id"], 0)
        assert row["never_scanned"] is (z["zone_id"] not in items)
        assert close(row["completion"], items.get(z["zone_id"], 0) / z["expected_items"])
    if which == 0:
        assert any(r["never_scanned"] for r in got.values())  # the demo's empty zones are listed


@pytest.mark.parametrize("which", range(4), ids=FILTER_IDS)
def test_session_duration_buckets(demo_hub, ref, which):
    f = filters(ref)[which]
    got = rows(service(demo_hub).preview("analyst", "demo-open", f).tables["session_durations"])
    minutes = ref.sessions_in(f).filter(pl.col("ended_at").is_not_null())["hours"] * 60
    assert [r["bucket"] for r in got] == [b[0] for b in DURATION_BUCKETS]
    for r, (_, lo, hi) in zip(got, DURATION_BUCKETS, strict=True):
        assert r["sessions"] == int(((minutes >= lo) & (minutes < (hi if hi is not None else 1e12))).sum())
    assert sum(r["sessions"] for r in got) == len(minutes)


@pytest.mark.parametrize("which", range(4), ids=FILTER_IDS)
def test_costs_by_category_over_time_and_per_scan(demo_hub, ref, which):
    f = filters(ref)[which]
    tables = service(demo_hub).preview("analyst", "demo-open", f).tables
    costs = ref.costs_in(f)
    by_cat = {r["category"]: r for r in rows(tables["cost_by_category"])}
    assert list(by_cat)[:4] == ["labor", "travel", "equipment", "other"]
    for r in costs.group_by("category").agg(pl.col("amount").sum(), pl.len()).iter_rows(named=True):
        assert close(by_cat[r["category"]]["amount"], r["amount"])
        assert by_cat[r["category"]]["entries"] == r["len"]
    assert close(sum(r["amount"] for r in by_cat.values()), costs["amount"].sum())

    over_time = {r["day"]: r for r in rows(tables["cost_over_time"])}
    exp = costs.group_by("date", "category").agg(pl.col("amount").sum())
    assert set(over_time) == set(costs["date"].to_list())
    for r in exp.iter_rows(named=True):
        assert close(over_time[r["date"]][r["category"]], r["amount"])
    assert close(sum(r["total"] for r in over_time.values()), costs["amount"].sum())

    per_scan = {r["day"]: r for r in rows(tables["cost_per_scan"])}
    daily_scans = dict(ref.scans_in(f).group_by(pl.col("local").dt.date()).agg(pl.len()).iter_rows())
    daily_cost = dict(costs.group_by("date").agg(pl.col("amount").sum()).iter_rows())
    assert set(per_scan) == set(daily_scans) | set(daily_cost)
    for day, r in per_scan.items():
        assert r["scans"] == daily_scans.get(day, 0)
        assert close(r["cost"], daily_cost.get(day, 0.0))
        assert close(
            r["cost_per_scan"],
            daily_cost[day] / daily_scans[day]
            if day in daily_scans and day in daily_cost
            else (0.0 if day in daily_scans else None),
        )


def test_cost_by_user_and_zone_add_up(demo_hub, ref):
    f = StatsFilter()
    svc = service(demo_hub)
    by_user = rows(svc.query("analyst", "demo-open", "cost_by_user", f).table)
    by_zone = rows(svc.query("analyst", "demo-open", "cost_by_zone", f).table)
    total = ref.costs["amount"].sum()
    assert close(sum(r["total"] for r in by_user), total)
    assert close(sum(r["total"] for r in by_zone), total)
    no_zone = next(r for r in by_zone if r["zone_code"] == "(no zone)")
    assert close(no_zone["total"], ref.costs.filter(pl.col("zone_id").is_null())["amount"].sum())
    no_user = next(r for r in by_user if r["username"] == "(no user)")
    assert close(no_user["total"], ref.costs.filter(pl.col("user_id").is_null())["amount"].sum())


# ------------------------------------------------------------------ explore


def reference_explore(ref: Lake, f: StatsFilter, spec: ExploreSpec) -> dict[tuple, float]:
    base = MEASURES[spec.measure].base
    if base == "scans":
        df = ref.scans_in(f).join(ref.sessions.select("session_id", "kind"), on="session_id", how="left")
    elif base == "sessions":
        df = ref.sessions_in(f)
    else:
        df = ref.costs_in(f).with_columns(local=pl.col("date").cast(pl.Datetime("us")), kind=pl.lit(None))
    df = df.join(ref.zones.select("zone_id", "code", "area"), on="zone_id", how="left")
    df = df.join(ref.users.select("user_id", "username"), on="user_id", how="left")
    exprs = {
        "day": pl.col("local").dt.date(),
        "hour": pl.col("local").dt.hour().cast(pl.Int32),
        "weekday": pl.col("local").dt.strftime("%a"),
        "zone": pl.when(pl.col("zone_id").is_null()).then(pl.lit("(no zone)")).otherwise(pl.col("code")),
        "area": pl.col("area").fill_null("(no area)"),
        "user": pl.when(pl.col("user_id").is_null()).then(pl.lit("(no user)")).otherwise(pl.col("username")),
        "kind": pl.col("kind").fill_null("(none)"),
    }
    agg = {
        "scans": pl.len(),
        "quantity": pl.col("quantity").sum(),
        "barcodes": pl.col("barcode").n_unique(),
        "sessions": pl.len(),
        "hours": pl.col("hours").sum(),
        "cost": pl.col("amount").sum(),
    }[spec.measure].alias("value")
    out = df.group_by([exprs[d].alias(d) for d in spec.dimensions]).agg(agg)
    return {tuple(r[:-1]): r[-1] for r in out.iter_rows()}


EXPLORE_CASES = [
    ExploreSpec("scans", "day"),
    ExploreSpec("scans", "hour", "weekday"),
    ExploreSpec("quantity", "zone", "kind"),
    ExploreSpec("barcodes", "area"),
    ExploreSpec("barcodes", "user", "day"),
    ExploreSpec("sessions", "kind", "hour"),
    ExploreSpec("hours", "user"),
    ExploreSpec("cost", "zone", "weekday"),
    ExploreSpec("cost", "user"),
]


@pytest.mark.parametrize(
    "spec", EXPLORE_CASES, ids=lambda s: "-".join(filter(None, [s.measure, s.dim1, s.dim2]))
)
@pytest.mark.parametrize("which", [0, 2], ids=[FILTER_IDS[0], FILTER_IDS[2]])
def test_explore_matches_reference(demo_hub, ref, spec, which):
    f = filters(ref)[which]
    table = service(demo_hub).explore("analyst", "demo-open", f, spec).table
    assert tuple(table.column_names) == spec.columns
    got = {tuple(r[:-1]): r[-1] for r in zip(*(c.to_pylist() for c in table.columns), strict=True)}
    expected = reference_explore(ref, f, spec)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert close(float(got[key]), float(value or 0)), key


def test_explore_weekdays_are_in_calendar_order(demo_hub):
    table = (
        service(demo_hub)
        .explore("analyst", "demo-open", StatsFilter(), ExploreSpec("scans", "weekday"))
        .table
    )
    days = table.column("weekday").to_pylist()
    order = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert days == sorted(days, key=order.index)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        (ExploreSpec("cost", "hour"), "dim1"),
        (ExploreSpec("cost", "day", "kind"), "dim2"),
        (ExploreSpec("scans", "zone", "zone"), "dim2"),
        (ExploreSpec("scans; DROP TABLE scans", "day"), "measure"),
        (ExploreSpec("scans", "day) UNION SELECT 1 --"), "dim1"),
    ],
)
def test_explore_refuses_what_does_not_fit(spec, key):
    with pytest.raises(InvalidVariable) as err:
        spec.check()
    assert err.value.key == key


def test_every_measure_names_the_dimensions_it_can_use():
    for measure in MEASURES:
        dims = dimensions_for(measure)
        assert "day" in dims and "zone" in dims and "user" in dims
        for dim in DIMENSIONS:
            fits = dim in dims
            spec = ExploreSpec(measure, dim)
            if fits:
                spec.check()
            else:
                with pytest.raises(InvalidVariable):
                    spec.check()


def test_filter_values_are_bound_not_pasted(demo_hub):
    nasty = StatsFilter(zones=("Z-001' OR '1'='1",), users=("x'); DROP TABLE scans; --",))
    headline = service(demo_hub).preview("analyst", "demo-open", nasty).headline
    assert headline["scans"] == 0 and headline["cost"] == 0


# ------------------------------------------------------------------ cache, cut-off, permission


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


# ------------------------------------------------------------------ filters and options


def test_filter_round_trips_through_export_variables():
    f = StatsFilter(
        date_range="custom",
        date_from=date(2026, 11, 1),
        date_to=date(2026, 11, 3),
        zones=("Z-002", "Z-001"),
        areas=("B",),
        users=("u",),
        include_deleted=True,
    )
    assert StatsFilter.from_variables(f.to_variables()) == f
    assert f.zones == ("Z-001", "Z-002")
    with pytest.raises(InvalidVariable) as err:
        StatsFilter(date_range="custom", date_from=date(2026, 11, 3), date_to=date(2026, 11, 1))
    assert err.value.key == "dateTo"
    assert StatsFilter(date_range="all", date_from=date(2026, 1, 1)).date_from is None


def test_presets_resolve_in_project_days():
    scope = StatsFilter(date_range="last7days").resolve(TZ, datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    assert scope.window.first_day == date(2026, 11, 15) and scope.window.last_day == date(2026, 11, 21)


def test_filter_options_and_validation_agree(demo_hub, ref):
    options = service(demo_hub).filter_options("viewer", "demo-open")
    assert list(options.zones) == ref.zones.filter(~pl.col("deleted")).sort("code")["code"].to_list()
    assert set(options.areas) == set(ref.zones["area"].to_list())
    worked = set(ref.sessions["user_id"].to_list()) | set(ref.costs["user_id"].drop_nulls().to_list())
    names = dict(ref.users.select("user_id", "username").iter_rows())
    assert {names[i] for i in worked} | {"manager", "analyst", "viewer"} == set(options.users)
    assert "outsider" not in options.users

    jobs = demo_hub.service()
    values = jobs.validate(
        "demo-open", "statistics", {"users": list(options.users)[:2], "areas": [options.areas[0]]}
    )
    assert values["users"] == list(options.users)[:2] and values["areas"] == [options.areas[0]]
    with pytest.raises(InvalidVariable) as err:
        jobs.validate("demo-open", "statistics", {"users": ["nobody"]})
    assert err.value.key == "users"
    with pytest.raises(InvalidVariable) as err:
        jobs.validate("demo-open", "explore", {"measure": "cost", "dim1": "hour"})
    assert err.value.key == "dim1"
