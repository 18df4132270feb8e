"""Statistics filters: round trip through export variables, presets in project days, valid options."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from exporthub.errors import InvalidVariable
from exporthub.stats import StatsFilter
from tests._stats_reference import (
    TZ,
    ref,  # noqa: F401 - the fixture is used by name
    service,
)


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
