"""Hostile import files: limits refused before the whole file is parsed, nested parquet types refused by
name, one pass that reports cells and references together, and quantities that must be above zero.
Every refusal names the file and leaves the lake byte for byte as it was, with one audit event."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exporthub.importer import ImportRefused
from exporthub.importer.read import MAX_COLUMNS, MAX_FIELD_BYTES, MAX_HEADER_BYTES, ImportFile, csv_header, read_raw
from exporthub.models import AuditEvent
from tests import _handmade as hm
from tests._import_helpers import made, refused  # noqa: F401 - the fixture is used by name


def _refusals(hub) -> int:
    with hub.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "import", AuditEvent.outcome == "refused")) or 0)


def test_a_huge_header_is_refused_from_its_first_bytes(made):
    hub, _, folder = made
    folder.mkdir(exist_ok=True)
    path = folder / "wide.csv"
    # 10 million columns: about 90 MB of header. Refused from the first 64 KB, in far less than a second of work.
    with open(path, "w") as fh:
        for start in range(0, 10_000_000, 1_000_000):
            fh.write(",".join(f"c{i}" for i in range(start, start + 1_000_000)) + ",")
        fh.write("x\n1\n")
    started = time.process_time()
    exc = refused(hub, "scans", path)
    cpu = time.process_time() - started
    assert exc.problems[0].file == "wide.csv"
    assert f"longer than {MAX_HEADER_BYTES // 1024} KB" in exc.problems[0].message
    assert cpu < 5, cpu  # generous: the point is that 90 MB were never parsed
    assert _refusals(hub) == 1


def test_too_many_columns_and_a_header_field_over_the_csv_modules_limit(made):
    hub, _, folder = made
    many = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + ",".join("1" * (MAX_COLUMNS + 1)) + "\n"
    exc = refused(hub, "scans", hm.write(folder, "many.csv", many))
    assert f"{MAX_COLUMNS + 1} columns; an import file has at most {MAX_COLUMNS}" in exc.problems[0].message
    # A header field over 128 KB made Python's csv module raise an uncaught csv.Error.
    long_field = "zone_id,session_id," + "u" * (200 * 1024) + "\n1,2,3\n"
    exc = refused(hub, "scans", hm.write(folder, "field.csv", long_field))
    assert "header row is longer" in exc.problems[0].message


def test_a_cell_over_the_limit_is_refused_with_its_row(made):
    hub, _, folder = made
    rows = hm.SCANS_CSV.splitlines()
    big = rows[2].replace("DEV-01", "D" * (MAX_FIELD_BYTES + 1), 1)
    text = "\n".join([rows[0], rows[1], big, *rows[3:]]) + "\n"
    exc = refused(hub, "scans", hm.write(folder, "cell.csv", text))
    (problem,) = exc.problems
    assert (problem.file, problem.row, problem.column) == ("cell.csv", 2, "device")
    assert f"a cell may have at most {MAX_FIELD_BYTES // 1024} KB" in problem.message
    # A cell larger than a whole read block: refused at its row like any other, not a stack trace.
    huge = rows[0] + "\n" + rows[1].replace("DEV-01", "D" * (6 * 1024 * 1024)) + "\n"
    exc = refused(hub, "scans", hm.write(folder, "row.csv", huge))
    (problem,) = exc.problems
    assert (problem.row, problem.column) == (1, "device") and "a cell may have at most" in problem.message


def test_file_size_limit_is_checked_before_reading(made, monkeypatch):
    hub, _, folder = made
    from dataclasses import replace

    small = replace(hub.settings, import_max_file_bytes=100)
    path = hm.write(folder, "scans.csv", hm.SCANS_CSV)
    with pytest.raises(ImportRefused) as info:
        read_raw(ImportFile.from_path(path), max_bytes=small.import_max_file_bytes)
    assert "at most 100 bytes (EXPORTHUB_IMPORT_MAX_FILE_BYTES)" in info.value.problems[0].message
    monkeypatch.setenv("EXPORTHUB_IMPORT_MAX_FILE_BYTES", "100")
    from exporthub.settings import reload_settings

    hub.settings = reload_settings()
    exc = refused(hub, "scans", path)
    assert exc.problems[0].file == "scans.csv" and "at most 100 bytes" in exc.problems[0].message


@pytest.mark.parametrize(
    ("column_type", "value", "name"),
    [
        (pa.struct([("a", pa.int32())]), {"a": 1}, "struct<"),
        (pa.list_(pa.string()), ["x"], "list<"),
        (pa.map_(pa.string(), pa.int32()), [("k", 1)], "map<"),
    ],
)
def test_nested_parquet_columns_are_refused_by_name(made, column_type, value, name):
    hub, _, folder = made
    folder.mkdir(exist_ok=True)
    rows = pa.Table.from_pylist([
        {"zone_id": 1, "session_id": 100, "user": "ann", "barcode": "B1", "quantity": 1,
         "scanned_at": "2026-03-28T08:05:00+01:00", "device": value},
    ], schema=pa.schema([("zone_id", pa.int32()), ("session_id", pa.int64()), ("user", pa.string()),
                         ("barcode", pa.string()), ("quantity", pa.int32()), ("scanned_at", pa.string()),
                         ("device", column_type)]))
    path = folder / "nested.parquet"
    pq.write_table(rows, path)
    exc = refused(hub, "scans", path)
    (problem,) = exc.problems
    assert (problem.file, problem.column) == ("nested.parquet", "device")
    assert problem.message.startswith(f"nested type {name}") and "is not allowed" in problem.message


def test_a_parquet_file_with_too_many_columns_is_refused_from_its_footer(made):
    hub, _, folder = made
    folder.mkdir(exist_ok=True)
    path = folder / "wide.parquet"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(MAX_COLUMNS + 1)}), path)
    exc = refused(hub, "scans", path)
    assert f"{MAX_COLUMNS + 1} columns" in exc.problems[0].message


def test_one_pass_reports_cells_users_and_references_of_every_file_together(made):
    hub, _, folder = made
    rows = hm.SCANS_CSV.splitlines()
    first = "\n".join([rows[0], rows[1].replace(",ann,", ",nobody,"), rows[2].replace(",2,2026", ",one,2026")]) + "\n"
    second = "\n".join([rows[0], rows[1].replace("1,100,", "9,100,", 1)]) + "\n"
    exc = refused(hub, "scans", hm.write(folder, "a.csv", first), hm.write(folder, "b.csv", second))
    found = {(p.file, p.row, p.column) for p in exc.problems}
    assert ("a.csv", 1, "user") in found  # a reference
    assert ("a.csv", 2, "quantity") in found  # a cell
    assert ("b.csv", 1, "zone_id") in found  # a reference in the other file
    # An unreadable file does not hide the problems of the others.
    exc = refused(hub, "scans", hm.write(folder, "bad.parquet", "not parquet"), hm.write(folder, "a.csv", first))
    assert {p.file for p in exc.problems} == {"bad.parquet", "a.csv"}
    assert any(p.file == "bad.parquet" and "not a readable Parquet file" in p.message for p in exc.problems)


@pytest.mark.parametrize("quantity", ["0", "-3"])
def test_quantities_must_be_above_zero(made, quantity):
    hub, _, folder = made
    rows = hm.SCANS_CSV.splitlines()
    text = "\n".join([rows[0], rows[1], rows[2].replace(",2,2026", f",{quantity},2026", 1)]) + "\n"
    exc = refused(hub, "scans", hm.write(folder, "q.csv", text))
    (problem,) = exc.problems
    assert (problem.row, problem.column) == (2, "quantity")
    assert problem.message == f"expected a whole number of at least 1, got '{quantity}'"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.binary(max_size=600) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_any_header_bytes_give_a_header_or_a_clean_refusal(tmp_path, head):
    f = ImportFile(name="x.csv", data=head + b"\n1,2\n")
    try:
        header = csv_header(f)
    except ImportRefused as exc:
        assert exc.problems and exc.problems[0].file == "x.csv"
        return
    assert isinstance(header, list) and len(header) <= MAX_COLUMNS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000))
def test_any_bytes_as_a_file_are_read_or_refused_never_raised(tmp_path, body):
    for name in ("x.csv", "x.parquet"):
        try:
            read_raw(ImportFile(name=name, data=body), max_bytes=10_000)
        except ImportRefused as exc:
            assert exc.problems[0].file == name


def test_admin_upload_path_applies_the_same_limits(made):
    """The admin page hands uploads to the same import: the limits hold in the web process too."""
    hub, _, _ = made
    from exporthub.importer import import_files

    wide = (",".join(f"c{i}" for i in range(200_000)) + "\n").encode()
    with pytest.raises(ImportRefused) as info:
        import_files(hub.db, hub.settings, hm.ADMIN, hm.SLUG, "scans", [ImportFile(name="upload.csv", data=wide)])
    assert "header row is longer" in info.value.problems[0].message

