"""The demo lake generator: shape, consistency and determinism of the written Parquet, checked with DuckDB."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from exporthub import lake
from exporthub.demo_lake import LakeSummary, StaffMember, generate_project_lake
from exporthub.settings import Settings, get_settings

SLUG = "demo"
N_SCANS = 20_000
SEED = 42
ANCHOR = date(2024, 3, 20)  # the 60-day window crosses the US switch to daylight saving time (10 March)
TZ = "America/New_York"
FIRST_DAY = ANCHOR - timedelta(days=59)
STAFF = [
    StaffMember(user_id=100 + i, hourly_rate=17.5 + 1.25 * i, active_from_day=10 if i % 5 == 0 else 0)
    for i in range(20)
]


def _settings(root: Path) -> Settings:
    """Settings of an instance in ``root`` (the lake's catalog lives in its metadata DB)."""
    return dataclasses.replace(
        get_settings(), data_dir=root, database_url=f"sqlite:///{root / 'exporthub.db'}",
        lake_url=(root / "lake").as_uri(),
    )


def _generate(root: Path, **overrides: object) -> tuple[Settings, LakeSummary]:
    settings = _settings(root)
    args: dict[str, object] = dict(n_scans=N_SCANS, seed=SEED, anchor=ANCHOR, timezone=TZ, staff=STAFF)
    args.update(overrides)
    summary = generate_project_lake(settings, SLUG, **args)  # type: ignore[arg-type]
    return settings, summary


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lake.snapshot(settings, SLUG).register(con)  # type: ignore[arg-type]
    staff = pa.table(
        {
            "user_id": pa.array([m.user_id for m in STAFF], pa.int32()),
            "hourly_rate": pa.array([m.hourly_rate for m in STAFF], pa.float64()),
            "active_from_day": pa.array([m.active_from_day for m in STAFF], pa.int32()),
        }
    )
    con.register("staff", staff)
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    keys = {"zones": "zone_id", "zone_sessions": "session_id", "scans": "scan_id", "costs": "cost_id"}
    return {
        table: str(_one(con, f"SELECT md5(string_agg(t::VARCHAR, '|' ORDER BY {key})) FROM {table} t"))
        for table, key in keys.items()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, LakeSummary]:
    return _generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture()
def con(generated: tuple[Settings, LakeSummary]) -> duckdb.DuckDBPyConnection:
    return _connect(generated[0])


def test_row_counts_match_the_summary(con: duckdb.DuckDBPyConnection, generated: tuple) -> None:
    summary = generated[1]
    assert summary == LakeSummary(
        zones=40, sessions=N_SCANS // 400, scans=N_SCANS, costs=summary.costs, seconds=summary.seconds
    )
    assert _one(con, "SELECT count(*) FROM zones") == 40
    assert _one(con, "SELECT count(*) FROM zone_sessions") == summary.sessions
    assert _one(con, "SELECT count(*) FROM scans") == N_SCANS
    assert _one(con, "SELECT count(*) FROM costs") == summary.costs > summary.sessions * 0.9


def test_same_arguments_give_the_same_data_and_another_seed_differs(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    again, _ = _generate(tmp_path / "again")
    other, _ = _generate(tmp_path / "other", seed=SEED + 1)
    first = _fingerprint(con)
    assert _fingerprint(_connect(again)) == first
    different = _fingerprint(_connect(other))
    assert different["scans"] != first["scans"]
    assert different["zone_sessions"] != first["zone_sessions"]


def test_ids_are_dense_and_ascending(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in (("scans", "scan_id"), ("zone_sessions", "session_id"), ("costs", "cost_id")):
        n, lo, hi, distinct = con.execute(
            f"SELECT count(*), min({key}), max({key}), count(DISTINCT {key}) FROM {table}"
        ).fetchone()  # type: ignore[misc]
        assert (lo, hi, distinct) == (1, n, n), table
    # Session ids follow the start time.
    assert _one(
        con,
        "SELECT count(*) FROM (SELECT started_at < lag(started_at) OVER (ORDER BY session_id) AS back "
        "FROM zone_sessions) WHERE back",
    ) == 0


def test_every_scan_matches_its_session(con: duckdb.DuckDBPyConnection) -> None:
    assert _one(con, "SELECT count(*) FROM scans s ANTI JOIN zone_sessions z USING (session_id)") == 0
    mismatched = """
        SELECT count(*) FROM scans s JOIN zone_sessions z USING (session_id)
        WHERE s.zone_id <> z.zone_id OR s.user_id <> z.user_id
    """
    assert _one(con, mismatched) == 0
    # Scans of a deleted session are deleted with it.
    assert _one(con, "SELECT count(*) FROM scans s JOIN zone_sessions z USING (session_id) "
                     "WHERE z.deleted AND NOT s.deleted") == 0


def test_scans_lie_inside_their_session(con: duckdb.DuckDBPyConnection) -> None:
    outside_closed = """
        SELECT count(*) FROM scans s JOIN zone_sessions z USING (session_id)
        WHERE z.ended_at IS NOT NULL AND (s.scanned_at < z.started_at OR s.scanned_at > z.ended_at)
    """
    assert _one(con, outside_closed) == 0
    outside_open = """
        SELECT count(*) FROM scans s JOIN zone_sessions z USING (session_id)
        WHERE z.ended_at IS NULL
          AND (s.scanned_at < z.started_at OR s.scanned_at > z.started_at + INTERVAL 4 HOUR)
    """
    assert _one(con, outside_open) == 0
    assert _one(con, "SELECT count(*) FROM scans s JOIN zone_sessions z USING (session_id) "
                     "WHERE z.ended_at IS NULL") > 0


def test_sessions_have_sane_lengths_kinds_and_flags(con: duckdb.DuckDBPyConnection) -> None:
    lo, hi = con.execute(
        "SELECT min(epoch(ended_at) - epoch(started_at)), max(epoch(ended_at) - epoch(started_at)) "
        "FROM zone_sessions"
    ).fetchone()  # type: ignore[misc]
    assert lo >= 15 * 60 and hi <= 4 * 3600
    kinds = dict(con.execute("SELECT kind, count(*) FROM zone_sessions GROUP BY kind").fetchall())
    assert set(kinds) <= {"count", "recount", "audit"}
    assert kinds["count"] > sum(kinds.values()) / 2
    assert _one(con, "SELECT count(*) FROM zone_sessions WHERE ended_at IS NULL") >= 1
    assert _one(con, "SELECT count(*) FROM zone_sessions WHERE deleted") >= 1


def test_times_fall_in_the_local_window_and_working_hours(con: duckdb.DuckDBPyConnection) -> None:
    lo, hi = con.execute(
        f"SELECT min((scanned_at AT TIME ZONE '{TZ}')::DATE), max((scanned_at AT TIME ZONE '{TZ}')::DATE) "
        "FROM scans"
    ).fetchone()  # type: ignore[misc]
    assert lo >= FIRST_DAY and hi <= ANCHOR
    outside_hours = f"""
        SELECT count(*) FROM zone_sessions
        WHERE (started_at AT TIME ZONE '{TZ}')::DATE NOT BETWEEN DATE '{FIRST_DAY}' AND DATE '{ANCHOR}'
           OR (started_at AT TIME ZONE '{TZ}')::TIME < TIME '06:00'
           OR (ended_at AT TIME ZONE '{TZ}')::TIME > TIME '20:00'
           OR (ended_at AT TIME ZONE '{TZ}')::DATE <> (started_at AT TIME ZONE '{TZ}')::DATE
    """
    assert _one(con, outside_hours) == 0
    lo, hi = con.execute("SELECT min(date), max(date) FROM costs").fetchone()  # type: ignore[misc]
    assert lo >= FIRST_DAY and hi <= ANCHOR


def test_zones_include_empty_deleted_nested_and_tricky_names(con: duckdb.DuckDBPyConnection) -> None:
    empty = _one(con, "SELECT count(*) FROM zones ANTI JOIN zone_sessions USING (zone_id)")
    assert empty == 4  # 10 % of 40
    assert _one(con, "SELECT count(*) FROM zones ANTI JOIN scans USING (zone_id)") == empty
    assert _one(con, "SELECT count(*) FROM zones WHERE deleted") == 2
    assert _one(con, "SELECT count(*) FROM zones WHERE parent_zone_id IS NOT NULL") > 0
    assert _one(con, "SELECT count(*) FROM zones c JOIN zones p ON c.parent_zone_id = p.zone_id "
                     "WHERE p.parent_zone_id IS NOT NULL OR c.area <> p.area") == 0
    assert _one(con, "SELECT min(expected_items) FROM zones") > 0
    names = {row[0] for row in con.execute("SELECT name FROM zones").fetchall()}
    assert {"=Cellar", "+Annex", "-Overflow", "@Dock", "Kühlraum 3", "倉庫 A"} <= names
    assert _one(con, "SELECT count(DISTINCT name) FROM zones") == 40
    assert _one(con, "SELECT count(*) FROM zones WHERE NOT regexp_full_match(code, 'Z-[0-9]{3}')") == 0


def test_some_staff_never_work(con: duckdb.DuckDBPyConnection) -> None:
    idle = """
        SELECT count(*) FROM staff
        WHERE user_id NOT IN (SELECT user_id FROM zone_sessions)
          AND user_id NOT IN (SELECT user_id FROM scans)
          AND user_id NOT IN (SELECT user_id FROM costs WHERE user_id IS NOT NULL)
    """
    assert _one(con, idle) == max(1, round(0.15 * len(STAFF)))  # 3 of 20
    assert _one(con, "SELECT count(*) FROM zone_sessions ANTI JOIN staff USING (user_id)") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE user_id IS NOT NULL "
                     "AND user_id NOT IN (SELECT user_id FROM zone_sessions)") == 0
    # Nobody works before the first day they are active.
    early = f"""
        SELECT count(*) FROM zone_sessions z JOIN staff s USING (user_id)
        WHERE (z.started_at AT TIME ZONE '{TZ}')::DATE < DATE '{FIRST_DAY}' + s.active_from_day
    """
    assert _one(con, early) == 0


def test_the_same_user_has_overlapping_sessions(con: duckdb.DuckDBPyConnection) -> None:
    overlaps = """
        SELECT count(*) FROM zone_sessions a JOIN zone_sessions b
          ON a.user_id = b.user_id AND a.session_id < b.session_id
         AND a.started_at < b.ended_at AND b.started_at < a.ended_at
    """
    assert _one(con, overlaps) >= 3


def test_barcodes_repeat_and_include_dirty_values(con: duckdb.DuckDBPyConnection) -> None:
    assert _one(con, "SELECT count(DISTINCT barcode) FROM scans") < N_SCANS / 10
    dirty = _one(con, "SELECT count(*) FROM scans WHERE regexp_matches(barcode, '^[=+@-]')")
    assert dirty == max(5, round(0.0001 * N_SCANS))
    clean = con.execute(
        "SELECT DISTINCT barcode FROM scans WHERE NOT regexp_matches(barcode, '^[=+@-]')"
    ).fetchall()
    for (code,) in clean:
        assert len(code) == 13 and code.isdigit()
        weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(code[:12]))
        assert (10 - weighted % 10) % 10 == int(code[12]), code


def test_quantities_devices_and_deleted_scans(con: duckdb.DuckDBPyConnection) -> None:
    ones, lo, hi = con.execute(
        "SELECT avg((quantity = 1)::INT), min(quantity), max(quantity) FROM scans"
    ).fetchone()  # type: ignore[misc]
    assert ones > 0.85 and lo == 1 and 2 <= hi <= 12
    assert _one(con, "SELECT count(*) FROM scans WHERE NOT regexp_full_match(device, 'DEV-[0-9]{2}')") == 0
    deleted = _one(con, "SELECT avg(deleted::INT) FROM scans")
    assert 0.005 < deleted < 0.05


def test_late_uploads_get_higher_ids_than_newer_scans(con: duckdb.DuckDBPyConnection) -> None:
    late = """
        SELECT count(*) FROM (
            SELECT scanned_at, max(scanned_at) OVER (
                ORDER BY scan_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest_before
            FROM scans)
        WHERE scanned_at < newest_before
    """
    count = _one(con, late)
    assert 0.002 * N_SCANS < count < 0.01 * N_SCANS


def test_labor_costs_are_session_hours_times_rate(con: duckdb.DuckDBPyConnection) -> None:
    per_key = f"""
        WITH expected AS (
            SELECT z.user_id, z.zone_id, (z.started_at AT TIME ZONE '{TZ}')::DATE AS date,
                   sum((epoch(z.ended_at) - epoch(z.started_at)) / 3600 * s.hourly_rate) AS amount,
                   sum((epoch(z.ended_at) - epoch(z.started_at)) / 3600) AS hours, count(*) AS n
            FROM zone_sessions z JOIN staff s USING (user_id)
            WHERE z.ended_at IS NOT NULL AND NOT z.deleted
            GROUP BY ALL),
        actual AS (
            SELECT user_id, zone_id, date, sum(amount) AS amount, sum(hours) AS hours, count(*) AS n
            FROM costs WHERE category = 'labor' GROUP BY ALL)
        SELECT count(*) FROM expected e FULL JOIN actual a USING (user_id, zone_id, date)
        WHERE a.n IS DISTINCT FROM e.n OR abs(a.hours - e.hours) > 1e-9
           OR abs(a.amount - e.amount) > 0.005 * e.n + 1e-9
    """
    assert _one(con, per_key) == 0
    total, expected = con.execute(
        """
        SELECT (SELECT sum(amount) FROM costs WHERE category = 'labor'),
               (SELECT sum((epoch(ended_at) - epoch(started_at)) / 3600 * hourly_rate)
                FROM zone_sessions JOIN staff USING (user_id) WHERE ended_at IS NOT NULL AND NOT deleted)
        """
    ).fetchone()  # type: ignore[misc]
    assert total == pytest.approx(expected, abs=0.01 * _one(con, "SELECT count(*) FROM costs"))
    wrong_rate = "SELECT count(*) FROM costs c JOIN staff s USING (user_id) " \
                 "WHERE c.category = 'labor' AND c.rate <> s.hourly_rate"
    assert _one(con, wrong_rate) == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category = 'labor' "
                     "AND amount <> round(hours * rate, 2)") == 0


def test_other_costs_have_the_right_shape(con: duckdb.DuckDBPyConnection) -> None:
    categories = dict(con.execute("SELECT category, count(*) FROM costs GROUP BY ALL").fetchall())
    assert set(categories) == {"labor", "travel", "equipment", "other"}
    assert _one(con, "SELECT count(*) FROM costs WHERE amount IS NULL OR amount <= 0") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category <> 'labor' "
                     "AND (hours IS NOT NULL OR rate IS NOT NULL)") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category = 'labor' "
                     "AND (hours IS NULL OR rate IS NULL OR zone_id IS NULL OR user_id IS NULL)") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE zone_id IS NULL") > 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category = 'equipment' AND user_id IS NOT NULL") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category = 'travel' "
                     "AND (user_id IS NULL OR zone_id IS NOT NULL)") == 0


def test_scans_are_split_into_files_in_id_order_and_a_new_demo_replaces_the_old(tmp_path: Path) -> None:
    settings, _ = _generate(tmp_path, n_scans=2_000, part_rows=300)
    first = lake.snapshot(settings, SLUG)
    assert [f.record_count for f in first.tables["scans"].files] == [300] * 6 + [200]
    assert [f.low_id for f in first.tables["scans"].files] == [1, 301, 601, 901, 1201, 1501, 1801]
    settings, summary = _generate(tmp_path, n_scans=2_000, part_rows=900)
    second = lake.snapshot(settings, SLUG)
    assert [f.record_count for f in second.tables["scans"].files] == [900, 900, 200]
    for table in ("zones", "zone_sessions", "costs"):
        assert len(second.files[table]) == 1
    # The first demo's tables were dropped with their files.
    assert not any(Path(p).exists() for p in first.files["scans"])
    con = _connect(settings)
    assert _one(con, "SELECT count(*) FROM scans") == 2_000
    assert _one(con, "SELECT count(*) FROM zone_sessions") == summary.sessions == 20


def test_tiny_and_unusual_inputs(tmp_path: Path) -> None:
    settings, summary = _generate(
        tmp_path, n_scans=0, n_zones=1, staff=[StaffMember(0, 0.0)], timezone="Pacific/Chatham"
    )
    assert (summary.zones, summary.sessions, summary.scans) == (1, 20, 0)
    con = _connect(settings)
    assert _one(con, "SELECT count(*) FROM scans") == 0
    assert _one(con, "SELECT count(*) FROM costs WHERE category = 'labor'") == 0  # a zero rate earns nothing
    assert _one(con, "SELECT count(*) FROM costs WHERE amount <= 0") == 0
    with pytest.raises(ValueError, match="timezone"):
        _generate(tmp_path, timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="unique"):
        _generate(tmp_path, staff=[StaffMember(1, 20.0), StaffMember(1, 25.0)])
