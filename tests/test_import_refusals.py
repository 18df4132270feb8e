"""Refused imports change nothing and name the file, row and column: types, references, headers, rights."""

from __future__ import annotations

import duckdb
import pytest
from sqlalchemy import select

from exporthub.accounts import InvalidValue
from exporthub.errors import InvalidTransition, PermissionDenied
from exporthub.importer import ImportFile, ImportRefused, import_files
from exporthub.models import Project
from tests import _handmade as hm
from tests._import_helpers import (
    audit_actions,
    do_import,
    lake_rows,
    made,  # noqa: F401 - the fixture is used by name
    refused,
)


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
