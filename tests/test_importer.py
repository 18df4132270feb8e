"""Imports: the file contract, refusals that change nothing, duplicates, rising scan ids, replace,
and a round trip from hand-written csv files through a real scans export back to the same rows."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from exporthub import lake
from exporthub.accounts import InvalidValue, SystemActor
from exporthub.errors import InvalidTransition, PermissionDenied
from exporthub.importer import ImportFile, ImportRefused, import_files
from exporthub.models import AuditEvent, Project
from tests import _handmade as hm
from tests._lake import lake_files

SYSTEM = SystemActor("pytest")


@pytest.fixture
def made(hub, tmp_path):  # type: ignore[no-untyped-def]
    """The hand-made project with zones, sessions and costs imported, and a folder for files."""
    ids = hm.make_project(hub)
    return hub, ids, tmp_path / "files"


def do_import(hub, table: str, *files: Path, **kwargs):  # type: ignore[no-untyped-def]
    return import_files(
        hub.db, hub.settings, SYSTEM, hm.SLUG, table, [ImportFile.from_path(f) for f in files], **kwargs
    )


def lake_rows(hub, table: str, order: str) -> list[tuple]:  # type: ignore[type-arg]
    """An independent read of the table's current data files with DuckDB."""
    files = lake_files(hub.settings, hm.SLUG, table)
    if not files:
        return []
    return duckdb.sql(f"SELECT * FROM read_parquet({files!r}) ORDER BY {order}").fetchall()


def refused(hub, table: str, *files: Path, **kwargs) -> ImportRefused:  # type: ignore[no-untyped-def]
    """Run an import that must be refused, and check that the lake is byte for byte unchanged."""
    before = hm.lake_fingerprint(hub)
    with pytest.raises(ImportRefused) as info:
        do_import(hub, table, *files, **kwargs)
    assert hm.lake_fingerprint(hub) == before
    return info.value


def audit_actions(hub) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return [(e.action, e.outcome, e.actor) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


# ---------------------------------------------------------------------- round trip


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


# ---------------------------------------------------------------------- refusals change nothing


def test_a_missing_column_is_refused_naming_file_and_column(made):
    hub, _, folder = made
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    text = (
        hm.SCANS_CSV.replace(",quantity", "")
        .replace(",1,2026", ",2026")
        .replace(",2,2026", ",2026")
        .replace(",5,2026", ",2026")
    )
    exc = refused(hub, "scans", hm.write(folder, "no-quantity.csv", text))
    (problem,) = exc.problems
    assert (problem.file, problem.row, problem.column) == ("no-quantity.csv", None, "quantity")
    assert "required column is missing" in problem.message
    assert "no-quantity.csv" in str(exc) and "quantity" in str(exc)


def test_a_wrong_type_is_refused_naming_file_row_and_column(made):
    hub, _, folder = made
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    lines = hm.SCANS_CSV.splitlines()
    lines[3] = lines[3].replace(",1,2026-03-29T07:20:00Z", ",one,2026-03-29T07:20:00Z")  # data row 3
    lines[4] = lines[4].replace("2026-03-29T09:45:00+02:00", "2026-03-29 09:45:00")  # no offset
    exc = refused(hub, "scans", hm.write(folder, "typo.csv", "\n".join(lines) + "\n"))
    found = {(p.file, p.row, p.column) for p in exc.problems}
    assert found == {("typo.csv", 3, "quantity"), ("typo.csv", 4, "scanned_at")}
    assert "expected a whole number" in str(exc) and "got 'one'" in str(exc)
    assert "with an offset" in [p for p in exc.problems if p.column == "scanned_at"][0].message


def test_an_unknown_zone_is_refused(made):
    hub, _, folder = made
    text = hm.SCANS_CSV.replace("2,101,bob,=SUM", "9,101,bob,=SUM")
    exc = refused(hub, "scans", hm.write(folder, "scans.csv", text))
    messages = {(p.row, p.column): p.message for p in exc.problems}
    assert messages[(3, "zone_id")] == "unknown zone 9"


def test_a_truncated_parquet_file_is_refused(made):
    hub, _, folder = made
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{hm.write(folder, 's.csv', hm.SCANS_CSV)}', all_varchar=true)) "
        f"TO '{good}' (FORMAT parquet)"
    )
    assert do_import(hub, "scans", good).rows_imported == 5  # the whole file is fine
    data = good.read_bytes()
    cut = folder / "cut.parquet"
    cut.write_bytes(data[: len(data) * 2 // 3])
    exc = refused(hub, "scans", cut, skip_duplicates=True)
    assert exc.problems[0].file == "cut.parquet" and "not a readable Parquet file" in exc.problems[0].message


def test_refusals_of_references_users_sessions_and_values(made):
    hub, _, folder = made
    text = """zone_id,session_id,user,barcode,quantity,scanned_at,device
1,100,zed,1,1,2026-03-28T08:05:00+01:00,
1,999,ann,2,1,2026-03-28T08:05:00+01:00,
2,100,ann,3,1,2026-03-28T08:05:00+01:00,
1,100,ann,,1,2026-03-28T08:05:00+01:00,
"""
    exc = refused(hub, "scans", hm.write(folder, "refs.csv", text))
    # One pass: the bad cell and the references, together, in file order.
    assert [(p.row, p.column, p.message) for p in exc.problems] == [
        (1, "user", "unknown user 'zed'"),
        (2, "session_id", "unknown session 999"),
        (3, "zone_id", "zone 2 is not the zone of session 100 (zone 1)"),
        (4, "barcode", "a value is required (the cell is empty)"),
    ]
    text = text.replace("1,100,ann,,1", "1,100,ann,4,1")
    exc = refused(hub, "scans", hm.write(folder, "refs.csv", text))
    assert [(p.row, p.column, p.message) for p in exc.problems] == [
        (1, "user", "unknown user 'zed'"),
        (2, "session_id", "unknown session 999"),
        (3, "zone_id", "zone 2 is not the zone of session 100 (zone 1)"),
    ]
    bad_kind = hm.SESSIONS_CSV.replace("count,2026-03-28", "counting,2026-03-28").replace("100,", "200,")
    exc = refused(hub, "zone_sessions", hm.write(folder, "kind.csv", bad_kind))
    assert [(p.row, p.column) for p in exc.problems] == [(1, "kind")]
    assert "one of count, recount, audit" in exc.problems[0].message


def test_header_problems_and_ragged_rows(made):
    hub, _, folder = made
    exc = refused(hub, "scans", hm.write(folder, "h.csv", hm.SCANS_CSV.replace("device", "devices")))
    assert {(p.column, p.message.split(";")[0]) for p in exc.problems} == {
        ("devices", "unknown column"),
        ("device", "required column is missing"),
    }
    both = (
        hm.SCANS_CSV.replace("user,barcode", "user,user_id,barcode")
        .replace("ann,", "ann,1,")
        .replace("bob,", "bob,2,")
    )
    exc = refused(hub, "scans", hm.write(folder, "both.csv", both))
    assert "either user" in exc.problems[0].message
    ragged = hm.SCANS_CSV.replace(",DEV-01,false\n1,100", ",DEV-01\n1,100", 1)
    exc = refused(hub, "scans", hm.write(folder, "ragged.csv", ragged))
    assert (exc.problems[0].file, exc.problems[0].row) == ("ragged.csv", 1)
    assert "7 fields where the header has 8" in exc.problems[0].message
    exc = refused(hub, "scans", hm.write(folder, "notes.txt", hm.SCANS_CSV))
    assert "use .csv or .parquet" in str(exc)


def test_a_refusal_in_one_file_refuses_all_files_of_the_import(made):
    hub, _, folder = made
    good = hm.write(folder, "good.csv", hm.SCANS_CSV)
    bad = hm.write(
        folder, "bad.csv", hm.SCANS_CSV.replace("4006381333931,1,2026-03-28", "4006381333931,x,2026-03-28")
    )
    exc = refused(hub, "scans", good, bad)
    assert {p.file for p in exc.problems} == {"bad.csv"}
    assert lake_rows(hub, "scans", "scan_id") == []


def test_refused_imports_are_audited_and_need_an_admin(made):
    hub, _, folder = made
    path = hm.write(folder, "scans.csv", hm.SCANS_CSV.replace("2,101,bob,=SUM", "9,101,bob,=SUM"))
    with pytest.raises(ImportRefused):
        import_files(hub.db, hub.settings, hm.ADMIN, hm.SLUG, "scans", [ImportFile.from_path(path)])
    assert audit_actions(hub)[-1] == ("import", "refused", hm.ADMIN)
    before = hm.lake_fingerprint(hub)
    with pytest.raises(PermissionDenied):
        import_files(hub.db, hub.settings, "ann", hm.SLUG, "scans", [ImportFile.from_path(path)])
    assert audit_actions(hub)[-1] == ("import", "refused", "ann")
    with pytest.raises(InvalidValue, match="can only be appended"):
        do_import(hub, "scans", path, replace=True)
    with pytest.raises(InvalidValue, match="Unknown table"):
        do_import(hub, "users", path)
    assert hm.lake_fingerprint(hub) == before


def test_a_published_project_takes_no_imports(made):
    hub, _, folder = made
    with hub.db.write() as s:
        s.scalar(select(Project).where(Project.slug == hm.SLUG)).status = "published"
    with pytest.raises(InvalidTransition, match="published"):
        do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))


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


def test_successful_imports_are_audited_once(made):
    hub, _, folder = made
    before = len(audit_actions(hub))
    do_import(hub, "scans", hm.write(folder, "scans.csv", hm.SCANS_CSV))
    events = audit_actions(hub)[before:]
    assert events == [("import", "ok", "cli:pytest")]
