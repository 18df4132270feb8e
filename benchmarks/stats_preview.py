"""Benchmark the statistics preview queries on a large project, against a baseline in the same run.

    python benchmarks/stats_preview.py [--scans 10000000] [--repeat 5]

Generates one project of N scans in a temporary data dir (``generate_project_lake``), then times:

* **cold** — ``StatsService.query`` with empty caches: permission check, data version, snapshot, a
  new DuckDB connection and the query. A scan-based query alone also pays for the view's scan cube
  (the one pass over the scans that the whole preview shares), so the *preview* figures are the ones
  the page feels when a filter changes;
* **cached** — the same call again, answered from the process-local cache;
* **baseline** — a naive polars implementation of the same numbers that reads the Parquet files and
  converts every timestamp to local time row by row (what one would write without DuckDB's
  pre-aggregation); its results are checked against the service's, so the race is fair.

Also the whole preview (every chart) cold and cached against the sum of the baselines, and a few
explore queries cold and right after the preview (reusing its scan cube). The machine is shared
and noisy, so medians and ratios are reported. Results go to ``benchmarks/results/stats_preview.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "stats_preview.json"
SLUG, TZ, ANCHOR = "bench", "Europe/Berlin", date(2026, 11, 20)


def _setup(data_dir: Path, scans: int) -> tuple[Any, Any, float]:
    os.environ["EXPORTHUB_DATA_DIR"] = str(data_dir)
    from exporthub.db import get_database
    from exporthub.demo_lake import StaffMember, generate_project_lake
    from exporthub.models import Membership, Project, User, utcnow
    from exporthub.settings import reload_settings

    settings = reload_settings()
    db = get_database(settings)
    with db.write() as s:
        project = Project(slug=SLUG, name="Benchmark", timezone=TZ, status="open", created_at=utcnow())
        analyst = User(
            username="analyst",
            display_name="Analyst",
            active=True,
            is_admin=False,
            hourly_rate=0.0,
            created_at=utcnow(),
        )
        staff = [
            User(
                username=f"staff{i:02d}",
                display_name=f"Staff {i}",
                active=True,
                is_admin=False,
                hourly_rate=18.0 + (i % 9) * 2.5,
                created_at=utcnow(),
            )
            for i in range(1, 41)
        ]
        s.add_all([project, analyst, *staff])
        s.flush()
        s.add(Membership(user_id=analyst.id, project_id=project.id, role="analyst"))
        members = [StaffMember(user_id=u.id, hourly_rate=u.hourly_rate) for u in staff]
    started = time.perf_counter()
    generate_project_lake(settings, SLUG, n_scans=scans, seed=1, anchor=ANCHOR, timezone=TZ, staff=members)
    return settings, db, time.perf_counter() - started


# ------------------------------------------------------------------ the naive baseline (polars)


def _baselines(settings: Any, db: Any) -> dict[str, Callable[[], Any]]:
    import polars as pl
    from sqlalchemy import select

    from exporthub.models import User

    base = settings.lake_dir / SLUG
    with db.read() as s:
        users = pl.DataFrame(
            [(u.id, u.username) for u in s.scalars(select(User))],
            schema=["user_id", "username"],
            orient="row",
        )

    def scans() -> pl.LazyFrame:
        return (
            pl.scan_parquet(f"{base}/scans/part-*.parquet")
            .filter(~pl.col("deleted"))
            .with_columns(local=pl.col("scanned_at").dt.convert_time_zone(TZ))
        )

    def sessions() -> pl.LazyFrame:
        return (
            pl.scan_parquet(f"{base}/zone_sessions/part-*.parquet")
            .filter(~pl.col("deleted"))
            .with_columns(
                hours=(pl.col("ended_at") - pl.col("started_at")).dt.total_microseconds() / 3.6e9,
                local=pl.col("started_at").dt.convert_time_zone(TZ),
            )
        )

    def costs() -> pl.LazyFrame:
        return pl.scan_parquet(f"{base}/costs/part-*.parquet")

    def headline() -> dict[str, Any]:
        sc = (
            scans()
            .select(
                pl.len().alias("scans"),
                pl.col("quantity").sum().alias("items"),
                pl.col("user_id").n_unique().alias("active_users"),
            )
            .collect()
            .row(0, named=True)
        )
        ss = sessions().select(pl.len().alias("sessions"), pl.col("hours").sum()).collect().row(0, named=True)
        cost = costs().select(pl.col("amount").sum()).collect().item()
        return {**sc, **ss, "cost": cost}

    def over_time(every: str) -> Callable[[], pl.DataFrame]:
        return lambda: (
            scans()
            .group_by(pl.col("local").dt.truncate(every))
            .agg(pl.len(), pl.col("quantity").sum())
            .sort("local")
            .collect()
        )

    def per_session() -> pl.LazyFrame:
        return scans().group_by("session_id").agg(pl.len().alias("n"))

    def productivity() -> pl.DataFrame:
        closed = (
            sessions()
            .filter(pl.col("ended_at").is_not_null())
            .join(per_session(), on="session_id", how="left")
        )
        rate = closed.group_by("user_id").agg(
            (pl.col("n").sum() / pl.col("hours").sum()).alias("scans_per_hour")
        )
        counts = (
            scans().group_by("user_id").agg(pl.len().alias("scans"), pl.col("quantity").sum().alias("items"))
        )
        return (
            counts.join(rate, on="user_id", how="full", coalesce=True)
            .join(users.lazy(), on="user_id")
            .collect()
        )

    def daily_productivity() -> pl.DataFrame:
        closed = (
            sessions()
            .filter(pl.col("ended_at").is_not_null())
            .join(per_session(), on="session_id", how="left")
        )
        return (
            closed.group_by(pl.col("local").dt.date()).agg(pl.col("n").sum(), pl.col("hours").sum()).collect()
        )

    def zone_completion() -> pl.DataFrame:
        zones = pl.scan_parquet(f"{base}/zones/part-*.parquet").filter(~pl.col("deleted"))
        items = (
            scans().group_by("zone_id").agg(pl.len().alias("scans"), pl.col("quantity").sum().alias("items"))
        )
        return (
            zones.join(items, on="zone_id", how="left")
            .with_columns(completion=pl.col("items").fill_null(0) / pl.col("expected_items"))
            .collect()
        )

    def session_durations() -> pl.DataFrame:
        minutes = pl.col("hours") * 60
        bucket = pl.sum_horizontal(
            [(minutes >= edge).cast(pl.Int32) for edge in (15, 30, 60, 90, 120, 180, 240)]
        )
        closed = sessions().filter(pl.col("ended_at").is_not_null())
        return closed.group_by(bucket.alias("bucket")).len().collect()

    def cost_by_category() -> pl.DataFrame:
        return costs().group_by("category").agg(pl.len(), pl.col("amount").sum()).collect()

    def cost_over_time() -> pl.DataFrame:
        return costs().collect().pivot(on="category", index="date", values="amount", aggregate_function="sum")

    def cost_per_scan() -> pl.DataFrame:
        daily = scans().group_by(pl.col("local").dt.date().alias("date")).agg(pl.len().alias("scans"))
        cost = costs().group_by("date").agg(pl.col("amount").sum())
        return daily.join(cost, on="date", how="full", coalesce=True).collect()

    return {
        "headline": headline,
        "scans_over_time/day": over_time("1d"),
        "scans_over_time/hour": over_time("1h"),
        "daily_productivity": daily_productivity,
        "productivity": productivity,
        "zone_completion": zone_completion,
        "session_durations": session_durations,
        "cost_by_category": cost_by_category,
        "cost_over_time": cost_over_time,
        "cost_per_scan": cost_per_scan,
    }


# ------------------------------------------------------------------ timing


def _median(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _time_query(
    db: Any, settings: Any, name: str, view: Any, params: dict[str, str], repeat: int
) -> tuple[float, float, Any]:
    """Median seconds of one named query cold (a new, empty cache each time) and cached, and its table."""
    from exporthub.stats import ResultCache, StatsService

    def cold() -> Any:
        return (
            StatsService(db, settings, cache=ResultCache()).query("analyst", SLUG, name, view, **params).table
        )

    warm = StatsService(db, settings, cache=ResultCache())

    def cached() -> Any:
        return warm.query("analyst", SLUG, name, view, **params)

    cold_s, table = _median(cold, repeat)
    cached()
    cached_s, hit = _median(cached, repeat * 4)
    assert hit.cached
    return cold_s, cached_s, table


def _time_preview(db: Any, settings: Any, view: Any, granularity: str, repeat: int) -> tuple[float, float]:
    """Median seconds of the whole preview (every chart) cold and cached."""
    from exporthub.stats import ResultCache, StatsService

    def cold() -> Any:
        return StatsService(db, settings, cache=ResultCache()).preview(
            "analyst", SLUG, view, granularity=granularity
        )

    warm = StatsService(db, settings, cache=ResultCache())

    def cached() -> Any:
        return warm.preview("analyst", SLUG, view, granularity=granularity)

    cold_s, _ = _median(cold, repeat)
    cached()
    cached_s, preview = _median(cached, repeat * 4)
    assert preview.cache_hits == len(preview.tables)
    return cold_s, cached_s


def _time_explore(db: Any, settings: Any, view: Any, spec: Any, repeat: int) -> tuple[float, float]:
    """Median seconds of an explore query cold, and with the view's scan cube already built (as after
    the preview), both without a cached result."""
    from exporthub.stats import ResultCache, StatsService

    def cold() -> Any:
        return StatsService(db, settings, cache=ResultCache()).explore("analyst", SLUG, view, spec)

    cubes = ResultCache(maxsize=8)
    StatsService(db, settings, cache=ResultCache(), cube_cache=cubes).preview("analyst", SLUG, view)

    def after_preview() -> Any:
        return StatsService(db, settings, cache=ResultCache(), cube_cache=cubes).explore(
            "analyst", SLUG, view, spec
        )

    return _median(cold, repeat)[0], _median(after_preview, repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; keep the committed results")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    with tempfile.TemporaryDirectory(prefix="exporthub-stats-bench-") as tmp:
        settings, db, generated = _setup(Path(tmp) / "data", args.scans)
        from exporthub.stats import PREVIEW_QUERIES, ExploreSpec, StatsFilter

        view = StatsFilter()
        queries: dict[str, Any] = {}
        for label, baseline in _baselines(settings, db).items():
            name, _, granularity = label.partition("/")
            params = {"granularity": granularity} if granularity else {}
            cold, cached, table = _time_query(db, settings, name, view, params, args.repeat)
            base, reference = _median(baseline, args.repeat)
            _check(name, table, reference)
            queries[label] = {
                "cold_s": round(cold, 4),
                "cached_s": round(cached, 5),
                "baseline_s": round(base, 4),
                "baseline_over_cold": round(base / cold, 1),
                "cold_over_cached": round(cold / cached),
            }

        previews: dict[str, Any] = {}
        filtered = StatsFilter(
            date_range="custom",
            date_from=date(2026, 11, 1),
            date_to=date(2026, 11, 20),
            zones=("Z-001", "Z-002", "Z-003", "Z-004", "Z-005"),
        )
        for label, f in (("all", view), ("20 days, 5 zones", filtered)):
            for granularity in ("day", "hour"):
                cold, cached = _time_preview(db, settings, f, granularity, args.repeat)
                entry = {"cold_s": round(cold, 3), "cached_s": round(cached, 5)}
                if f is view:  # the baseline computes the same charts one by one (unfiltered only)
                    names = [n if n != "scans_over_time" else f"{n}/{granularity}" for n in PREVIEW_QUERIES]
                    base = sum(queries[n]["baseline_s"] for n in names)
                    entry |= {"baseline_s": round(base, 3), "baseline_over_cold": round(base / cold, 1)}
                previews[f"{label}/{granularity}"] = entry

        explore: dict[str, Any] = {}
        for spec in (
            ExploreSpec("scans", "day", "hour"),
            ExploreSpec("quantity", "zone", "kind"),
            ExploreSpec("hours", "user", "weekday"),
            ExploreSpec("barcodes", "zone"),
        ):
            cold, after = _time_explore(db, settings, view, spec, max(1, args.repeat // 2))
            explore["/".join(filter(None, [spec.measure, spec.dim1, spec.dim2]))] = {
                "cold_s": round(cold, 3),
                "after_preview_s": round(after, 3),
            }

    result = {
        "benchmark": "stats_preview",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "duckdb_threads": settings.duckdb_threads,
            "duckdb_memory_limit": settings.duckdb_memory_limit,
        },
        "scans": args.scans,
        "repeat": args.repeat,
        "generate_s": round(generated, 2),
        "queries": queries,
        "preview_all_charts": previews,
        "explore": explore,
        "summary": {
            "preview_cold_s": previews["all/day"]["cold_s"],
            "preview_cached_s": previews["all/day"]["cached_s"],
            "preview_baseline_s": previews["all/day"]["baseline_s"],
            "preview_baseline_over_cold": previews["all/day"]["baseline_over_cold"],
            "query_cold_median_s": round(statistics.median(q["cold_s"] for q in queries.values()), 3),
            "query_cold_max_s": round(max(q["cold_s"] for q in queries.values()), 3),
            "query_cached_median_s": round(statistics.median(q["cached_s"] for q in queries.values()), 5),
        },
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _check(name: str, table: Any, reference: Any) -> None:
    """The baseline computes the same numbers (spot checks), so the comparison is fair."""
    if name == "headline":
        row = table.to_pylist()[0]
        assert row["scans"] == reference["scans"] and row["items"] == reference["items"], (row, reference)
        assert abs(row["cost"] - reference["cost"]) < 1e-6 * max(1, reference["cost"])
    elif name == "scans_over_time":
        assert sum(table.column("scans").to_pylist()) == int(reference["len"].sum())
    elif name == "productivity":
        assert sum(table.column("scans").to_pylist()) == int(reference["scans"].sum())
    elif name == "cost_by_category":
        assert abs(sum(table.column("amount").to_pylist()) - float(reference["amount"].sum())) < 1e-3


if __name__ == "__main__":
    main()
