"""Importing again: duplicates refused or skipped, rising scan ids, conflicting ids, and --replace."""

from __future__ import annotations

import duckdb
import pytest

from exporthub import lake
from tests import _handmade as hm
from tests._import_helpers import (
    do_import,
    lake_rows,
    made,  # noqa: F401 - the fixture is used by name
    refused,
)

# ---------------------------------------------------------------------- duplicates and ids


def test_importing_the_same_scans_twice_is_refused_by_default(made):
    hub, _, folder = made
    path = hm.write(folder, "scans.csv", hm.SCANS_CSV)
    do_import(hub, "scans", path)
    exc = refused(hub, "scans", path)
    assert "5 duplicate rows" in str(exc) and "--skip-duplicates" in str(exc)
    assert (exc.problems[0].file, exc.problems[0].row) == ("scans.csv", 1)
    # The same file twice in one import is caught too.
    exc = refused(hub, "scans", path, path)
    assert "10 duplicate rows" in str(exc)


def test_skip_duplicates_leaves_out_what_is_there_and_appends_the_rest(made):
    hub, _, folder = made
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    more = hm.SCANS_CSV + "1,100,ann,1234567890128,1,2026-03-28T09:00:00+01:00,DEV-01,false\n"
    before = hm.lake_fingerprint(hub)
    report = do_import(hub, "scans", hm.write(folder, "more.csv", more), skip_duplicates=True)
    assert (report.rows_read, report.rows_imported, report.duplicates_skipped) == (6, 1, 5)
    assert (report.first_id, report.last_id) == (6, 6)
    rows = lake_rows(hub, "scans", "scan_id")
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[-1][4] == "1234567890128"
    assert report.snapshot_id is not None and hm.lake_fingerprint(hub) != before
    # Nothing new at all: nothing is written, no snapshot is committed.
    after_first = hm.lake_fingerprint(hub)
    again = do_import(hub, "scans", hm.write(folder, "more.csv", more), skip_duplicates=True)
    assert (again.rows_imported, again.duplicates_skipped, again.snapshot_id) == (0, 6, None)
    assert hm.lake_fingerprint(hub) == after_first


def test_given_scan_ids_must_be_above_the_highest_and_missing_ones_continue(made):
    hub, ids, folder = made
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    do_import(hub, "scans", hm.write(folder, "scans2.csv", hm.scans2_csv(ids)))  # ids 10 and 11
    low = (
        hm.scans2_csv(ids)
        .replace("\n10,", "\n7,", 1)
        .replace("\n11,", "\n12,", 1)
        .replace("5901234123457", "5901234123458")
    )
    exc = refused(hub, "scans", hm.write(folder, "low.csv", low))
    assert [(p.row, p.column) for p in exc.problems] == [(1, "scan_id")]
    assert "scan_id 7 is not above the project's highest scan id (11)" in str(exc)
    mixed = (
        "scan_id,zone_id,session_id,user,barcode,quantity,scanned_at,device\n"
        "20,1,100,ann,a,1,2026-03-28T09:00:00+01:00,\n"
        ",1,100,ann,b,1,2026-03-28T09:01:00+01:00,\n"
        ",1,100,ann,c,1,2026-03-28T09:02:00+01:00,\n"
    )
    do_import(hub, "scans", hm.write(folder, "mixed.csv", mixed))
    assert [(r[0], r[4]) for r in lake_rows(hub, "scans", "scan_id")][-3:] == [
        (20, "a"),
        (21, "b"),
        (22, "c"),
    ]


def test_an_existing_id_with_other_values_is_a_conflict_even_when_skipping(made):
    hub, _, folder = made
    changed = hm.ZONES_CSV.replace("Aisle 1,North", "Aisle one,North")
    exc = refused(hub, "zones", hm.write(folder, "zones.csv", changed), skip_duplicates=True)
    assert [(p.row, p.column) for p in exc.problems] == [(1, "zone_id")]
    assert "exists already with other values" in str(exc) and "--replace" in str(exc)
    # Identical zones are duplicates: skipped, nothing written.
    report = do_import(hub, "zones", hm.write(folder, "zones.csv", hm.ZONES_CSV), skip_duplicates=True)
    assert (report.rows_imported, report.duplicates_skipped) == (0, 3)


def test_new_zones_need_unique_codes_and_known_parents(made):
    hub, _, folder = made
    text = (
        "zone_id,code,name,area,parent_zone_id,expected_items\n4,A-01,Dup code,North,,\n5,C-01,Orphan,,77,\n"
        "6,C-02,Self,,6,\n7,C-03,Child of new,,4,\n"
    )
    exc = refused(hub, "zones", hm.write(folder, "z.csv", text))
    assert [(p.row, p.column) for p in exc.problems] == [
        (1, "code"),
        (2, "parent_zone_id"),
        (3, "parent_zone_id"),
    ]
    ok = "zone_id,code,name,area,parent_zone_id,expected_items\n4,C-00,Parent,,,\n7,C-03,Child of new,,4,10\n"
    assert do_import(hub, "zones", hm.write(folder, "z.csv", ok)).rows_imported == 2


# ---------------------------------------------------------------------- replace


def test_replace_swaps_the_whole_table_and_keeps_old_snapshots_readable(made):
    hub, _, folder = made
    old_snapshot = lake.snapshot(hub.settings, hm.SLUG)
    text = (
        "cost_id,user,zone_id,date,category,hours,rate,amount\n"
        "7,,,2026-04-01,other,,,1.5\n"
        "8,bob,2,2026-04-02,travel,,,2.5\n"
    )
    report = do_import(hub, "costs", hm.write(folder, "costs.csv", text), replace=True)
    assert report.replaced and report.files_replaced == 1 and report.rows_imported == 2
    assert [(r[0], r[7]) for r in lake_rows(hub, "costs", "cost_id")] == [(7, 1.5), (8, 2.5)]
    con = duckdb.connect()
    old_snapshot.register(con)  # a job that started before the replace still reads the old costs
    assert con.sql("SELECT count(*), sum(amount) FROM costs").fetchall() == [(3, pytest.approx(262.39))]


def test_replacing_zones_must_keep_the_zones_in_use(made):
    hub, _, folder = made
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    text = "zone_id,code,name,area,parent_zone_id,expected_items\n1,A-01,Aisle 1,North,,120\n"
    exc = refused(hub, "zones", hm.write(folder, "z.csv", text), replace=True)
    assert {p.message for p in exc.problems} == {
        "zone 2 is used by existing scans, zone_sessions but is missing from the new zones",
        "zone 3 is used by existing costs, scans, zone_sessions but is missing from the new zones",
    }
    renamed = hm.ZONES_CSV.replace("Aisle 1,North", "Aisle one,North")
    do_import(hub, "zones", hm.write(folder, "z.csv", renamed), replace=True)
    assert [r[2] for r in lake_rows(hub, "zones", "zone_id")] == ["Aisle one", "Aisle 2, back", "=Cold room"]
