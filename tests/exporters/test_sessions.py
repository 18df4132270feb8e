"""The sessions export: one row per zone session, figures and flags equal to independent lake queries."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb
import openpyxl
import pytest

from cli import main
from tests.exporters._support import completed_job, data_file, parts


def run_export(hub, variables: dict, *, user: str = "analyst", slug: str = "demo-open"):
    return completed_job(hub, "sessions", variables, user=user, slug=slug)


def rows_of(path, reader: str = "read_parquet") -> dict[int, dict]:
    rel = duckdb.connect().execute(f"SELECT * FROM {reader}('{path}')")
    cols = [d[0] for d in rel.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rel.fetchall()}


def lake_sessions(hub, slug: str) -> dict[int, dict]:
    """Every session with its live scans and flags; overlaps found by a plain self-join."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE TABLE s AS SELECT * FROM {parts(hub, slug, 'zone_sessions')}")
    con.execute(
        f"CREATE TABLE c AS SELECT session_id, count(*) n, sum(quantity) q, max(scanned_at) last "
        f"FROM {parts(hub, slug, 'scans')} WHERE deleted = false GROUP BY session_id"
    )
    # An unclosed session lasts until its last live scan (or is just its start instant).
    con.execute(
        "CREATE TABLE e AS SELECT s.*, CASE WHEN ended_at IS NOT NULL THEN ended_at "
        "WHEN c.last > started_at THEN c.last ELSE started_at END AS stop "
        "FROM s LEFT JOIN c USING (session_id)"
    )
    overlapping = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT a.session_id FROM e a JOIN e b "
            "ON a.user_id = b.user_id AND a.session_id <> b.session_id "
            "WHERE NOT a.deleted AND NOT b.deleted AND a.started_at < b.stop AND b.started_at < a.stop"
        ).fetchall()
    }
    out = {}
    for sid, zone_id, user_id, started, ended, deleted, n, q in con.execute(
        "SELECT s.session_id, zone_id, user_id, started_at, ended_at, deleted, c.n, c.q "
        "FROM s LEFT JOIN c USING (session_id)"
    ).fetchall():
        out[sid] = {
            "zone_id": zone_id,
            "user_id": user_id,
            "started": started,
            "ended": ended,
            "deleted": deleted,
            "scans": n or 0,
            "quantity": q or 0,
            "overlapping": sid in overlapping,
            "unclosed": ended is None,
        }
    return out


def check(got: dict[int, dict], expected: dict[int, dict], tz: str) -> None:
    for sid, row in got.items():
        e = expected[sid]
        assert (row["scans"], row["quantity"], row["unclosed"], row["overlapping"]) == (
            e["scans"],
            e["quantity"],
            e["unclosed"],
            e["overlapping"],
        ), sid
        assert row["started_at"] == e["started"].astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        if e["ended"] is None:
            assert (
                row["duration_minutes"] is None and row["scans_per_hour"] is None and row["ended_at"] is None
            )
        else:
            minutes = (e["ended"] - e["started"]).total_seconds() / 60
            assert row["duration_minutes"] == pytest.approx(minutes, abs=0.01)
            assert row["scans_per_hour"] == pytest.approx(e["scans"] / (minutes / 60), abs=0.01)


def test_sessions_match_the_lake_and_flags_warn(demo_hub):
    job = run_export(demo_hub, {"format": "parquet"})
    got = rows_of(data_file(job, "parquet"))
    expected = lake_sessions(demo_hub, "demo-open")
    live = {sid for sid, e in expected.items() if not e["deleted"]}
    assert set(got) == live
    check(got, expected, "Europe/Berlin")
    overlapping = sum(1 for sid in live if expected[sid]["overlapping"])
    unclosed = sum(1 for sid in live if expected[sid]["unclosed"])
    assert overlapping and unclosed, "the demo has both kinds"
    assert any(w.startswith(f"{overlapping:,} sessions overlap") for w in job.warnings), job.warnings
    assert any(w.startswith(f"{unclosed:,} sessions were never closed") for w in job.warnings), job.warnings
    assert (
        sum(r["scans"] for r in got.values())
        == duckdb.connect()
        .execute(
            f"SELECT count(*) FROM {parts(demo_hub, 'demo-open', 'scans')} s "
            "WHERE NOT deleted AND session_id IN "
            f"(SELECT session_id FROM {parts(demo_hub, 'demo-open', 'zone_sessions')} WHERE NOT deleted)"
        )
        .fetchone()[0]
    )
    # Names come along.
    row = next(iter(got.values()))
    assert row["zone_code"].startswith("Z-") and row["username"].startswith("staff") and row["user_name"]


def test_window_zones_and_deleted_on_the_closed_project(demo_hub):
    expected = lake_sessions(demo_hub, "demo-closed")
    zones = dict(
        duckdb.connect()
        .execute(f"SELECT zone_id, code FROM {parts(demo_hub, 'demo-closed', 'zones')} WHERE NOT deleted")
        .fetchall()
    )
    codes = sorted({zones[e["zone_id"]] for e in expected.values() if e["zone_id"] in zones})[:8]
    tz = ZoneInfo("America/New_York")
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 21, tzinfo=tz)
    job = run_export(
        demo_hub,
        {
            "format": "csv",
            "includeDeleted": True,
            "zones": codes,
            "dateRange": "custom",
            "dateFrom": "2026-10-01",
            "dateTo": "2026-11-20",
        },
        user="manager",
        slug="demo-closed",
    )
    got = rows_of(data_file(job, "csv"), "read_csv")
    wanted = {
        sid for sid, e in expected.items() if zones.get(e["zone_id"]) in codes and start <= e["started"] < end
    }
    assert set(got) == wanted and wanted
    check(got, expected, "America/New_York")
    assert all(got[sid]["deleted"] == expected[sid]["deleted"] for sid in wanted)


def test_xlsx_reads_back_typed(demo_hub):
    job = run_export(demo_hub, {"format": "xlsx"})
    wb = openpyxl.load_workbook(data_file(job, "xlsx"))
    sheet = wb["Sessions"]
    header = [c.value for c in sheet[1]]
    body = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    expected = lake_sessions(demo_hub, "demo-open")
    assert len(body) == sum(1 for e in expected.values() if not e["deleted"])
    assert sum(r["scans"] for r in body) == sum(e["scans"] for e in expected.values() if not e["deleted"])
    closed = next(r for r in body if not r["unclosed"])
    assert isinstance(closed["started_at"], datetime) and isinstance(closed["duration_minutes"], int | float)
    assert sum(r["overlapping"] is True for r in body) == sum(
        e["overlapping"] for e in expected.values() if not e["deleted"]
    )
    assert any(str(r["user_name"]).startswith("'") for r in body)  # "=Formula Fred" and friends, neutralised
    assert "About" in wb.sheetnames


@pytest.mark.parametrize(
    ("slug", "user", "code"),
    [
        ("demo-open", "manager", 0),
        ("demo-closed", "admin", 0),
        ("demo-closed", "viewer", 2),
    ],
)
def test_cli_inline_as_each_role_allows(demo_hub, capsys, slug, user, code):
    rc = main(["export", "sessions", "--project", slug, "--user", user, "--inline", "--json"])
    out, err = capsys.readouterr()
    assert rc == code
    if code == 0:
        job = json.loads(out)["job"]
        assert job["status"] == "completed" and job["warnings"]
        (csv,) = [f["path"] for f in job["files"] if f["name"].endswith(".csv")]
        n = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{csv}')").fetchone()[0]
        live = sum(1 for e in lake_sessions(demo_hub, slug).values() if not e["deleted"])
        assert n == live
    else:
        assert json.loads(out)["error"]["message"] == "Permission denied"  # --json: refusals are JSON
