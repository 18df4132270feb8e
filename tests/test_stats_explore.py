"""The statistics explore queries against the polars reference, and the specs and filters they refuse."""

from __future__ import annotations

import polars as pl
import pytest

from exporthub.errors import InvalidVariable
from exporthub.stats import DIMENSIONS, MEASURES, ExploreSpec, StatsFilter, dimensions_for
from tests._stats_reference import (
    FILTER_IDS,
    Lake,
    close,
    filters,
    ref,  # noqa: F401 - the fixture is used by name
    service,
)


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
