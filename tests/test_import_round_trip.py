"""Imports that succeed: hand-written csv and typed parquet through a real scans export back to the same rows."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tests import _handmade as hm
from tests._import_helpers import (
    audit_actions,
    do_import,
    lake_rows,
    made,  # noqa: F401 - the fixture is used by name
)


def test_round_trip_from_hand_written_csv_through_a_scans_export(made):
    hub, ids, folder = made
    first = do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    second = do_import(hub, "scans", hm.write(folder, "scans2.csv", hm.scans2_csv(ids)))
    assert (first.rows_imported, first.first_id, first.last_id) == (5, 1, 5)
    assert (second.rows_imported, second.first_id, second.last_id) == (2, 10, 11)

    service = hub.service()
    job = service.start(hm.ADMIN, hm.SLUG, "scans", {"format": "parquet", "includeDeleted": True})
    hub.run(job.id)
    job = service.get(hm.ADMIN, job.id)
    assert job.status == "completed", job.error
    (out,) = [f.path for f in job.files if f.name.endswith(".parquet")]
    got = duckdb.sql(
        f"SELECT scan_id, zone_code, session_id, username, barcode, quantity, scanned_at, device, deleted "
        f"FROM read_parquet('{out}') ORDER BY scan_id"
    ).fetchall()
    berlin = ZoneInfo(hm.TIMEZONE)
    # The export shows project-local wall-clock times; convert what went in the same way, independently.
    expected = [
        (sid, code, sess, user, bc, qty, at.astimezone(berlin).replace(tzinfo=None), dev, deleted)
        for sid, code, sess, user, bc, qty, at, dev, deleted in hm.EXPECTED_SCANS
    ]
    assert got == expected


def test_round_trip_of_zones_sessions_and_costs_keeps_every_value(made):
    hub, ids, _ = made
    assert lake_rows(hub, "zones", "zone_id") == [
        (1, "A-01", "Aisle 1", "North", None, 120, False),
        (2, "A-02", "Aisle 2, back", "North", 1, 80, False),
        (3, "B-01", "=Cold room", "South", None, None, True),
    ]
    sessions = lake_rows(hub, "zone_sessions", "session_id")
    assert [(s[0], s[1], s[2], s[3], s[6]) for s in sessions] == [
        (100, 1, ids["ann"], "count", False),
        (101, 2, ids["bob"], "recount", False),
        (102, 3, ids["ann"], "audit", False),
    ]
    assert [s[4].isoformat() for s in sessions] == [
        "2026-03-28T07:00:00+00:00",
        "2026-03-29T07:15:00+00:00",
        "2026-03-31T02:30:00+00:00",
    ]
    assert sessions[2][5] is None  # the unclosed session stays open
    costs = lake_rows(hub, "costs", "cost_id")
    assert [(c[0], c[1], c[2], str(c[3]), c[4], c[5], c[6], c[7]) for c in costs] == [
        (1, ids["ann"], 1, "2026-03-28", "labor", 2.5, 20.0, 50.0),
        (2, ids["bob"], None, "2026-03-29", "travel", None, None, 12.4),
        (3, None, 3, "2026-03-30", "equipment", None, None, 199.99),
    ]


def test_parquet_files_with_typed_columns_import_like_csv(made):
    hub, ids, folder = made
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "zone_id": pa.array([1, 2], pa.int64()),
            "session_id": pa.array([100, 101], pa.int32()),
            "user": ["ann", "bob"],
            "barcode": ["007", "008"],
            "quantity": pa.array([4, 6], pa.int16()),
            "scanned_at": pa.array(
                [1_774_681_500_000_000, 1_774_768_800_000_000], pa.timestamp("us", tz="UTC")
            ),
            "device": [None, "DEV-09"],
        }
    )
    pq.write_table(table, folder / "typed.parquet")
    report = do_import(hub, "scans", folder / "typed.parquet")
    assert report.rows_imported == 2
    rows = lake_rows(hub, "scans", "scan_id")
    assert [(r[0], r[4], r[5], r[6].timestamp(), r[7], r[8]) for r in rows] == [
        (1, "007", 4, 1_774_681_500.0, None, False),
        (2, "008", 6, 1_774_768_800.0, "DEV-09", False),
    ]


def test_successful_imports_are_audited_once(made):
    hub, _, folder = made
    before = len(audit_actions(hub))
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    events = audit_actions(hub)[before:]
    assert events == [("import", "ok", "cli:pytest")]
