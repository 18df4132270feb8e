"""The zones export: configuration plus statistics equal to independent lake queries, and last exports."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb
import openpyxl
import pytest
from sqlalchemy import select

from cli import main
from exporthub.models import ExportSession
from tests.exporters._support import completed_job, data_file, parts

run_export = completed_job


def rows_of(path, reader: str = "read_parquet") -> dict[str, dict]:
    rel = duckdb.connect().execute(f"SELECT * FROM {reader}('{path}')")
    cols = [d[0] for d in rel.description]
    return {r[cols.index("code")]: dict(zip(cols, r, strict=True)) for r in rel.fetchall()}


def lake_zones(hub, slug: str, *, start=None, end=None) -> dict[str, dict]:
    """Per zone code, from separate plain queries per table (not the exporter's SQL)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def window(col: str) -> str:
        return "" if start is None else f" AND {col} >= '{start.isoformat()}' AND {col} < '{end.isoformat()}'"

    zones = {
        zid: {"code": code, "parent": parent, "expected": exp, "deleted": deleted}
        for zid, code, parent, exp, deleted in con.execute(
            f"SELECT zone_id, code, parent_zone_id, expected_items, deleted FROM {parts(hub, slug, 'zones')}"
        ).fetchall()
    }
    scans = {
        zid: (n, q, b)
        for zid, n, q, b in con.execute(
            f"SELECT zone_id, count(*), sum(quantity), count(DISTINCT barcode) "
            f"FROM {parts(hub, slug, 'scans')} "
            f"WHERE deleted = false{window('scanned_at')} GROUP BY zone_id"
        ).fetchall()
    }
    ever = {
        r[0]
        for r in con.execute(f"SELECT zone_id FROM {parts(hub, slug, 'scans')} WHERE NOT deleted").fetchall()
    }
    sessions = dict(
        con.execute(
            f"SELECT zone_id, count(*) FROM {parts(hub, slug, 'zone_sessions')} WHERE deleted = false"
            f"{window('started_at')} GROUP BY zone_id"
        ).fetchall()
    )
    out = {}
    for zid, z in zones.items():
        n, q, b = scans.get(zid, (0, 0, 0))
        out[z["code"]] = {
            "zone_id": zid,
            "scans": n,
            "items": q,
            "distinct_barcodes": b,
            "sessions": sessions.get(zid, 0),
            "completion": q / z["expected"] if z["expected"] else None,
            "never_scanned": zid not in ever,
            "parent_code": zones[z["parent"]]["code"] if z["parent"] is not None else None,
            "expected_items": z["expected"],
            "deleted": z["deleted"],
        }
    return out


def check(got: dict[str, dict], expected: dict[str, dict], *, include_deleted: bool = False) -> None:
    wanted = {c for c, z in expected.items() if include_deleted or not z["deleted"]}
    assert set(got) == wanted
    for code in wanted:
        g, e = got[code], expected[code]
        for key in (
            "scans",
            "items",
            "distinct_barcodes",
            "sessions",
            "never_scanned",
            "parent_code",
            "expected_items",
        ):
            assert g[key] == e[key], (code, key)
        assert g["completion"] == (
            pytest.approx(e["completion"], abs=1e-4) if e["completion"] is not None else None
        )
    assert sum(g["items"] for g in got.values()) == sum(expected[c]["items"] for c in wanted)


def test_zone_statistics_match_the_lake(demo_hub):
    got = rows_of(data_file(run_export(demo_hub, "zones", {"format": "parquet"}), "parquet"))
    expected = lake_zones(demo_hub, "demo-open")
    check(got, expected)
    assert any(z["never_scanned"] for z in got.values()) and any(z["parent_code"] for z in got.values())
    assert "deleted" not in next(iter(got.values()))
    # Deleted zones come back, flagged, with includeDeleted.
    full = rows_of(
        data_file(run_export(demo_hub, "zones", {"format": "parquet", "includeDeleted": True}), "parquet")
    )
    check(full, expected, include_deleted=True)
    assert (
        {c for c, z in full.items() if z["deleted"]}
        == {c for c, z in expected.items() if z["deleted"]}
        != set()
    )


def test_window_and_zone_choice_on_the_closed_project(demo_hub):
    codes = sorted(c for c, z in lake_zones(demo_hub, "demo-closed").items() if not z["deleted"])[:5]
    job = run_export(
        demo_hub,
        "zones",
        {
            "format": "csv",
            "dateRange": "custom",
            "dateFrom": "2026-10-01",
            "dateTo": "2026-10-31",
            "zones": codes,
        },
        user="manager",
        slug="demo-closed",
    )
    got = rows_of(data_file(job, "csv"), "read_csv")
    tz = ZoneInfo("America/New_York")
    expected = lake_zones(
        demo_hub, "demo-closed", start=datetime(2026, 10, 1, tzinfo=tz), end=datetime(2026, 11, 1, tzinfo=tz)
    )
    check(got, {c: z for c, z in expected.items() if c in codes})


def test_last_export_session_per_zone(demo_hub):
    all_codes = lake_zones(demo_hub, "demo-open")
    codes = [c for c, z in sorted(all_codes.items()) if not z["never_scanned"] and not z["deleted"]][:3]
    scans_job = run_export(demo_hub, "scans", {"format": "csv", "zones": codes}, user="manager")
    job = run_export(demo_hub, "zones", {"format": "parquet"}, user="manager")
    got = rows_of(data_file(job, "parquet"))
    watermarks = dict(
        duckdb.connect()
        .execute(
            f"SELECT zone_id, max(scan_id) FROM {parts(demo_hub, 'demo-open', 'scans')} "
            "WHERE NOT deleted GROUP BY 1"
        )
        .fetchall()
    )
    with demo_hub.db.read() as s:
        recorded = {e.zone_id: e.created_at for e in s.scalars(select(ExportSession))}
    for code, row in got.items():
        if code in codes:
            zid = all_codes[code]["zone_id"]
            assert (row["last_export_type"], row["last_export_job_id"]) == ("scans", scans_job.id)
            assert row["last_export_watermark"] == watermarks[zid]
            local = recorded[zid].astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
            assert abs((row["last_export_at"] - local).total_seconds()) < 1e-3
        else:
            assert row["last_export_job_id"] is None and row["last_export_at"] is None
    # Resetting the export sessions forgets them.
    demo_hub.service().reset_export_sessions("manager", scans_job.id)
    again = rows_of(
        data_file(run_export(demo_hub, "zones", {"format": "parquet"}, user="manager"), "parquet")
    )
    assert all(r["last_export_job_id"] is None for r in again.values())


def test_xlsx_reads_back_typed(demo_hub):
    job = run_export(demo_hub, "zones", {"format": "xlsx"})
    wb = openpyxl.load_workbook(data_file(job, "xlsx"))
    sheet = wb["Zones"]
    header = [c.value for c in sheet[1]]
    body = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    expected = lake_zones(demo_hub, "demo-open")
    assert len(body) == sum(1 for z in expected.values() if not z["deleted"])
    assert sum(r["items"] for r in body) == sum(z["items"] for z in expected.values() if not z["deleted"])
    completion_col = header.index("completion")
    cell = next(row[completion_col] for row in sheet.iter_rows(min_row=2) if row[completion_col].value)
    assert cell.number_format == "0.0%" and isinstance(cell.value, float)
    assert all(isinstance(r["never_scanned"], bool) for r in body)
    assert any(str(r["name"]).startswith("'=") for r in body)  # "=Cellar" neutralised
    assert sheet.freeze_panes == "A2" and "About" in wb.sheetnames


@pytest.mark.parametrize(
    ("slug", "user", "code"),
    [
        ("demo-open", "analyst", 0),
        ("demo-closed", "manager", 0),
        ("demo-open", "outsider", 2),
    ],
)
def test_cli_inline_as_each_role_allows(demo_hub, capsys, slug, user, code):
    rc = main(
        ["export", "zones", "--project", slug, "--user", user, "--inline", "--json", "--var", "format=xlsx"]
    )
    out, err = capsys.readouterr()
    assert rc == code
    if code == 0:
        (f,) = json.loads(out)["job"]["files"]
        assert f["name"].startswith("zones_export_") and f["name"].endswith(".xlsx")
        assert openpyxl.load_workbook(f["path"], read_only=True)["Zones"].max_row == 1 + len(
            [z for z in lake_zones(demo_hub, slug).values() if not z["deleted"]]
        )
    else:
        assert json.loads(out)["error"]["message"] == "Permission denied"  # --json: refusals are JSON
