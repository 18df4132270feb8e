"""Every statistics preview query (headline, charts, tables) against the independent polars reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from exporthub.stats import StatsFilter
from exporthub.stats.queries import DURATION_BUCKETS
from tests._stats_reference import (
    FILTER_IDS,
    close,
    filters,
    ref,  # noqa: F401 - the fixture is used by name
    rows,
    service,
)


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
