"""The scans export end to end: every format read back by a real reader, checked against DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import openpyxl
import pytest
from sqlalchemy import select

from exporthub.models import ExportSession
from tests._lake import lake_sql
from tests.exporters._support import completed_job, data_file


def expected(hub, where: str = "NOT deleted", params: list | None = None) -> tuple[int, int, int]:
    """Rows, sum of quantities and sum of scan ids, straight from the lake."""
    con = duckdb.connect()
    row = con.execute(
        f"SELECT count(*), coalesce(sum(quantity), 0), coalesce(sum(scan_id), 0) "
        f"FROM {lake_sql(hub.settings, 'demo-open', 'scans')} WHERE {where}",
        params or [],
    ).fetchone()
    return tuple(int(x) for x in row)


def run_export(hub, variables: dict, user: str = "analyst"):
    return completed_job(hub, "scans", variables, user=user)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_match_the_lake(demo_hub, fmt):
    job = run_export(demo_hub, {"format": fmt})
    path = data_file(job, fmt)
    reader = "read_csv" if fmt == "csv" else "read_parquet"
    got = duckdb.connect().execute(
        f"SELECT count(*), sum(quantity), sum(scan_id) FROM {reader}('{path}')"
    ).fetchone()
    assert tuple(int(x) for x in got) == expected(demo_hub)
    assert path.name.startswith("scans_export_") and len(path.stem.split("_")[-1]) == 6


def test_xlsx_matches_the_lake_with_typed_cells(demo_hub):
    job = run_export(demo_hub, {"format": "xlsx", "dateRange": "custom", "dateFrom": "2026-11-10",
                                "dateTo": "2026-11-20"})
    wb = openpyxl.load_workbook(data_file(job, "xlsx"), read_only=True)
    rows = list(wb["Scans"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[:3] == ("scan_id", "scanned_at", "zone_code")
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 11, 10, tzinfo=tz)
    end = datetime(2026, 11, 21, tzinfo=tz)
    n, qty, ids = expected(demo_hub, "NOT deleted AND scanned_at >= ? AND scanned_at < ?", [start, end])
    assert (len(body), sum(r[header.index("quantity")] for r in body), sum(r[0] for r in body)) == (n, qty, ids)
    assert isinstance(body[0][1], datetime)  # a real Excel date, not text
    assert "About" in wb.sheetnames


def test_filters_zones_and_deleted(demo_hub):
    con = duckdb.connect()
    zones = con.execute(
        f"SELECT zone_id, code FROM {lake_sql(demo_hub.settings, 'demo-open', 'zones')} "
        "WHERE NOT deleted ORDER BY code LIMIT 2"
    ).fetchall()
    job = run_export(demo_hub, {"format": "parquet", "zones": [c for _, c in zones], "includeDeleted": True})
    got = con.execute(
        "SELECT count(*), sum(quantity), sum(scan_id), count(*) FILTER (deleted) "
        f"FROM read_parquet('{data_file(job, 'parquet')}')"
    ).fetchone()
    ids = ",".join(str(z) for z, _ in zones)
    assert tuple(int(x) for x in got[:3]) == expected(demo_hub, f"zone_id IN ({ids})")
    assert got[3] > 0  # the deleted scans are in, flagged


def test_names_survive_when_zone_or_user_was_deleted(demo_hub):
    job = run_export(demo_hub, {"format": "parquet"})
    missing = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{data_file(job, 'parquet')}') WHERE zone_name IS NULL OR username IS NULL"
    ).fetchone()[0]
    assert missing == 0


def test_export_sessions_recorded_incremental_and_reset(demo_hub):
    service = demo_hub.service()
    first = run_export(demo_hub, {"format": "csv"}, user="manager")
    with demo_hub.db.read() as s:
        sessions = s.scalars(select(ExportSession).where(ExportSession.job_id == first.id)).all()
        recorded = {e.zone_id: (e.watermark_scan_id, e.scan_count) for e in sessions}
    lake = duckdb.connect().execute(
        f"SELECT zone_id, max(scan_id), count(*) FROM {lake_sql(demo_hub.settings, 'demo-open', 'scans')} "
        "WHERE NOT deleted GROUP BY zone_id"
    ).fetchall()
    assert recorded == {z: (m, c) for z, m, c in lake}

    # Nothing new yet: the incremental export is empty.
    second = run_export(demo_hub, {"format": "csv", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{data_file(second, 'csv')}')").fetchone()[0]
    assert rows == 0

    # After a reset of both, everything counts as new again.
    service.reset_export_sessions("manager", first.id)
    assert second.export_session_count == 0  # an empty export records nothing
    third = run_export(demo_hub, {"format": "csv", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{data_file(third, 'csv')}')").fetchone()[0]
    assert rows == expected(demo_hub)[0]
    assert service.get("manager", first.id).export_sessions_reset


def test_removing_an_export_releases_its_sessions_so_its_scans_count_as_new_again(demo_hub):
    service = demo_hub.service()
    first = run_export(demo_hub, {"format": "csv"}, user="manager")
    assert first.export_session_count > 0
    removed = service.remove("manager", first.id)
    assert removed.export_sessions_reset and removed.export_session_count == 0
    assert any("released" in entry.message for entry in removed.log)
    again = run_export(demo_hub, {"format": "csv", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{data_file(again, 'csv')}')").fetchone()[0]
    assert rows == expected(demo_hub)[0]


def test_late_upload_is_new_for_incremental_export(demo_hub):
    """A scan ingested after the export, even with an old scan time, is exported next time."""
    import pyarrow as pa

    from exporthub.lake import SCHEMAS, append_rows

    run_export(demo_hub, {"format": "csv"}, user="manager")
    con = duckdb.connect()
    zone_id, session_id, user_id, max_id = con.execute(
        "SELECT zone_id, session_id, user_id, "
        f"(SELECT max(scan_id) FROM {lake_sql(demo_hub.settings, 'demo-open', 'scans')}) "
        f"FROM {lake_sql(demo_hub.settings, 'demo-open', 'scans')} WHERE NOT deleted LIMIT 1"
    ).fetchone()
    old_time = datetime(2026, 10, 1, 9, 0, tzinfo=ZoneInfo("UTC"))
    late = pa.table({
        "scan_id": [max_id + 1], "zone_id": [zone_id], "session_id": [session_id], "user_id": [user_id],
        "barcode": ["4000000000017"], "quantity": [3], "scanned_at": [old_time], "device": ["DEV-99"],
        "deleted": [False],
    }, schema=SCHEMAS["scans"])
    append_rows(demo_hub.settings, "demo-open", "scans", late)
    job = run_export(demo_hub, {"format": "parquet", "onlyNewSinceLastExport": True}, user="manager")
    got = con.execute(f"SELECT scan_id, quantity FROM read_parquet('{data_file(job, 'parquet')}')").fetchall()
    assert got == [(max_id + 1, 3)]


def test_about_sidecar_names_the_variables(demo_hub):
    import json

    job = run_export(demo_hub, {"format": "csv", "dateRange": "last7days"})
    (about,) = [f.path for f in job.files if f.name.endswith(".about.json")]
    text = about.read_text()
    assert "last7days" in text and "demo-open" in text
    json.loads(text)


def test_date_presets_are_whole_local_days(demo_hub):
    from exporthub.export_config import resolve_date_window

    now = datetime(2026, 11, 20, 23, 30, tzinfo=ZoneInfo("UTC"))  # already the 21st in Berlin
    window = resolve_date_window({"dateRange": "last7days"}, "Europe/Berlin", now)
    assert (window.first_day.isoformat(), window.last_day.isoformat()) == ("2026-11-15", "2026-11-21")
    assert window.start_utc == datetime(2026, 11, 14, 23, 0, tzinfo=ZoneInfo("UTC"))
    assert window.end_utc - window.start_utc == timedelta(days=7)


def test_a_date_limited_export_does_not_hide_older_scans_from_only_new(demo_hub):
    """Found in QA: a watermark from a date-limited export made 'only new' skip never-exported scans."""
    limited = run_export(demo_hub, {"format": "csv", "dateRange": "custom", "dateFrom": "2026-11-01",
                                    "dateTo": "2026-11-15"}, user="manager")
    assert limited.export_session_count == 0
    assert any("records no export sessions" in e.message for e in demo_hub.service().get("manager", limited.id).log)
    later = run_export(demo_hub, {"format": "parquet", "onlyNewSinceLastExport": True}, user="manager")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{data_file(later, 'parquet')}')").fetchone()[0]
    assert rows == expected(demo_hub)[0]  # nothing was skipped
