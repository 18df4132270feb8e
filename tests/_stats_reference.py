"""The statistics tests' independent reference: the demo lake read with polars, converting every
timestamp to local time row by row and filtering by local dates, where the domain filters by UTC bounds
and converts 15-minute buckets; plus the filters the tests try and a tolerant float comparison."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import select

from exporthub.models import User
from exporthub.stats import ResultCache, StatsFilter, StatsService
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
