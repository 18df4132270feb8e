"""The XLSX writers read back with openpyxl and calamine: cells, styling, sheet splits, tables, XML rows."""

from __future__ import annotations

import datetime as dt
import decimal
import tempfile
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from exporters._about import About
from exporters._xlsx import CURRENCY, PERCENT, Sheet, write_xlsx, write_xlsx_tables
from tests.exporters._writer_samples import CORPUS_SCHEMA, INJECTION, UNICODE_NAME, corpus_batch, scan_schema, scans

# --- XLSX ----------------------------------------------------------------------------------------


def test_xlsx_typed_cells_and_injection_corpus(tmp_path: Path, about: About) -> None:
    path = tmp_path / "corpus.xlsx"
    result = write_xlsx(path, CORPUS_SCHEMA, [corpus_batch()], about=about)
    assert result.rows == len(INJECTION) and result.warnings == []

    ws = openpyxl.load_workbook(path)["Data"]
    assert [c.value for c in ws[1]] == CORPUS_SCHEMA.names
    # XML cannot keep a bare CR, so XLSX stores it as the escape _x000D_; Excel and calamine decode it,
    # openpyxl does not.
    as_openpyxl_reads = [v.replace("\r", "_x000D_") for v in INJECTION.values()]
    assert [ws.cell(r, 1).value for r in range(2, len(INJECTION) + 2)] == as_openpyxl_reads
    assert all(ws.cell(r, 1).data_type == "s" for r in range(2, len(INJECTION) + 2))
    assert (ws["B2"].value, ws["B2"].data_type) == (3.14, "n")
    assert (ws["C2"].value, ws["C2"].data_type) == (-5, "n")
    assert ws["D2"].value == dt.datetime(2026, 7, 1, 12, 30, 45, 987000)
    assert ws["D2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["E2"].number_format == "yyyy-mm-dd"
    assert (ws["F2"].value, ws["F3"].value, ws["F4"].value) == (True, False, None)
    assert ws["B3"].value is None

    calamine = CalamineWorkbook.from_path(str(path))
    assert calamine.sheet_names == ["Data", "About"]
    rows = calamine.get_sheet_by_name("Data").to_python()
    assert [r[0] for r in rows[1:]] == list(INJECTION.values())
    assert rows[1][1] == 3.14 and rows[1][2] == -5
    assert rows[1][4] == dt.date(2026, 7, 1)


def test_xlsx_styling_freeze_filter_widths_and_about(tmp_path: Path, about: About) -> None:
    path = tmp_path / "scans.xlsx"
    write_xlsx(path, scan_schema(), scans(50), about=about, sheet_name="Scans")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Scans", "About"]
    ws = wb["Scans"]
    header = ws["A1"]
    assert header.font.b and header.fill.fgColor.rgb == "FFDCE6F1" and header.border.bottom.style == "thin"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:D51"
    widths = {k: d.width for k, d in ws.column_dimensions.items()}
    assert 8 < widths["A"] <= 61 and widths["D"] >= 19  # ids fit; timestamps are not cut to ####
    assert ws["D2"].value == dt.datetime(2026, 1, 1, 1, 0)  # aware UTC shown in Berlin time
    about_rows = {r[0]: r[1] for r in wb["About"].iter_rows(values_only=True)}
    assert about_rows["Project"] == f"{UNICODE_NAME} (harbour)"
    assert about_rows["Variable: zones"] == "A1, B2"


def test_xlsx_splits_at_row_limit_with_header_on_each_sheet(tmp_path: Path, about: About) -> None:
    path = tmp_path / "split.xlsx"
    result = write_xlsx(path, scan_schema(), scans(25, batch_rows=4), about=about, max_rows_per_sheet=10)
    assert result.rows == 25
    assert len(result.warnings) == 1 and "3 sheets" in result.warnings[0]

    names = ["Data", "Data (2)", "Data (3)", "About"]
    assert openpyxl.load_workbook(path, read_only=True).sheetnames == names
    calamine = CalamineWorkbook.from_path(str(path))
    assert calamine.sheet_names == names
    ids: list[float] = []
    for name, expected_rows in (("Data", 10), ("Data (2)", 10), ("Data (3)", 8)):
        rows = calamine.get_sheet_by_name(name).to_python()
        assert len(rows) == expected_rows  # including the header
        assert rows[0] == ["scan_id", "zone", "quantity", "scanned_at"]
        ids += [r[0] for r in rows[1:]]
    assert ids == list(range(25))
    ws = openpyxl.load_workbook(path)["Data (2)"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:D10" and ws["A1"].font.b


def test_xlsx_exact_fit_makes_no_empty_sheet(tmp_path: Path, about: About) -> None:
    path = tmp_path / "exact.xlsx"
    result = write_xlsx(path, scan_schema(), scans(18), about=about, max_rows_per_sheet=10)
    assert CalamineWorkbook.from_path(str(path)).sheet_names == ["Data", "Data (2)", "About"]
    assert "2 sheets" in result.warnings[0]


def test_xlsx_empty_export_keeps_header(tmp_path: Path, about: About) -> None:
    path = tmp_path / "empty.xlsx"
    result = write_xlsx(path, scan_schema(), [], about=about)
    assert (result.rows, result.warnings) == (0, [])
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Data").to_python()
    assert rows == [["scan_id", "zone", "quantity", "scanned_at"]]


def test_xlsx_keeps_huge_integers_exact_as_text(tmp_path: Path, about: About) -> None:
    schema = pa.schema([("id", pa.int64())])
    path = tmp_path / "big.xlsx"
    write_xlsx(path, schema, [pa.record_batch([pa.array([2**60, 7])], schema=schema)], about=about)
    ws = openpyxl.load_workbook(path)["Data"]
    assert ws["A2"].value == str(2**60) and ws["A3"].value == 7


def test_xlsx_abort_removes_file_and_row_temp_files(
    tmp_path: Path, about: About, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cancel(rows: int) -> None:
        if rows >= 30:
            raise KeyboardInterrupt  # any exception, even a BaseException, must propagate

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where constant_memory keeps its row files
    path = tmp_path / "cancel.xlsx"
    with pytest.raises(KeyboardInterrupt):
        write_xlsx(path, scan_schema(), scans(100, batch_rows=10), about=about, on_rows=cancel,
                   max_rows_per_sheet=15)
    assert not path.exists()
    assert list(temp.iterdir()) == []


def test_xlsx_tables_with_totals_and_number_formats(tmp_path: Path, about: About) -> None:
    costs = pa.table({"category": ["labor", "=travel"], "amount": [1200.5, 99.5], "share": [0.923, 0.077]})
    path = tmp_path / "cost.xlsx"
    result = write_xlsx_tables(
        path,
        [
            Sheet("By category", costs, totals={"category": "Total", "amount": 1300.0, "share": 1.0},
                  number_formats={"amount": CURRENCY, "share": PERCENT}),
            ("Raw", pa.table({"n": [1, 2, 3]})),
        ],
        about=about,
    )
    assert result.rows == 5
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["By category", "Raw", "About"]
    ws = wb["By category"]
    assert ws["A3"].value == "'=travel"
    assert (ws["B2"].number_format, ws["C2"].number_format) == (CURRENCY, PERCENT)
    assert [c.value for c in ws[4]] == ["Total", 1300, 1]
    assert all(c.font.b for c in ws[4]) and not ws["B2"].font.b
    assert ws["B4"].number_format == CURRENCY
    assert ws.auto_filter.ref == "A1:C3"  # the filter covers the data, not the totals
    assert ws.freeze_panes == "A2" and ws["A1"].font.b


def test_xlsx_tables_refuse_bad_specs(tmp_path: Path, about: About) -> None:
    table = pa.table({"a": [1]})
    with pytest.raises(ValueError, match="duplicate"):
        write_xlsx_tables(tmp_path / "d.xlsx", [("One", table), ("one", table)], about=about)
    with pytest.raises(ValueError, match="unknown columns"):
        write_xlsx_tables(tmp_path / "t.xlsx", [Sheet("S", table, totals={"b": 1})], about=about)


# --- XLSX rows written as XML (exporters._xlsx_rows) -----------------------------------------------


def test_xlsx_text_that_xml_cannot_hold_reads_back_in_both_readers(tmp_path: Path, about: About) -> None:
    texts = ["a & b <c> \"q\"", "bell\x07ring", "_x0041_ literal", "tab\tand\nnewline", " spaced ", "",
             "北京 Zoë"]
    schema = pa.schema([("text", pa.string())])
    path = tmp_path / "xml.xlsx"
    write_xlsx(path, schema, [pa.record_batch([pa.array(texts)], schema=schema)], about=about)
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Data").to_python()
    assert [r[0] for r in calamine[1:]] == texts  # calamine decodes _xHHHH_ escapes
    ws = openpyxl.load_workbook(path)["Data"]
    assert ws["A2"].value == texts[0] and ws["A5"].value == texts[3] and ws["A6"].value == " spaced "
    assert ws["A3"].value == "bell_x0007_ring"  # openpyxl shows the escape itself, as for \r


def test_xlsx_numbers_dates_and_types_without_a_cell_of_their_own(tmp_path: Path, about: About) -> None:
    schema = pa.schema([("f", pa.float64()), ("d", pa.date32()), ("t", pa.time64("us")),
                        ("big", pa.int64()), ("dec", pa.decimal128(10, 2)), ("tags", pa.list_(pa.string()))])
    batch = pa.record_batch([
        pa.array([float("nan"), float("inf"), 1e20, -0.25]),
        pa.array([dt.date(1900, 1, 1), dt.date(1900, 3, 1), dt.date(2026, 7, 1), None]),
        pa.array([dt.time(12, 0), dt.time(6, 30, 15), None, dt.time(0, 0)]),
        pa.array([2**53 + 1, -(2**53), None, 1]),
        pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-1.00"), decimal.Decimal("0.00")]),
        pa.array([["=x", "y"], None, [], ["z"]]),
    ], schema=schema)
    path = tmp_path / "types.xlsx"
    write_xlsx(path, schema, [batch], about=about)
    ws = openpyxl.load_workbook(path)["Data"]
    # As xlsxwriter's nan_inf_to_errors: an error formula, which openpyxl shows as its formula text.
    assert ws["A2"].value == "=#NUM!" and ws["A3"].value == "=#DIV/0!"
    assert ws["A4"].value == 1e20 and ws["A5"].value == -0.25
    assert [ws[f"B{r}"].value for r in (2, 3, 4)] == [dt.datetime(1900, 1, 1), dt.datetime(1900, 3, 1),
                                                      dt.datetime(2026, 7, 1)]
    assert ws["C2"].value == dt.time(12, 0) and ws["C3"].value == dt.time(6, 30, 15)
    assert ws["D2"].value == str(2**53 + 1) and ws["D3"].value == -(2**53)
    assert ws["E2"].value == 12.34 and ws["E4"].value == -1.0
    assert (ws["F2"].value, ws["F2"].data_type) == ("['=x', 'y']", "s")  # as text, like str() of it
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Data").to_python()
    assert calamine[2][1] == dt.date(1900, 3, 1) and calamine[2][3] == -(2**53)


def test_xlsx_cuts_text_at_excels_cell_limit_with_a_warning(tmp_path: Path, about: About) -> None:
    schema = pa.schema([("text", pa.string())])
    path = tmp_path / "long.xlsx"
    result = write_xlsx(path, schema, [pa.record_batch([pa.array(["x" * 40_000, "short"])], schema=schema)],
                        about=about)
    assert result.warnings and "32,767" in result.warnings[0]
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Data").to_python()
    assert len(rows[1][0]) == 32_767 and rows[2][0] == "short"


def test_xlsx_leaves_no_row_files_beside_the_output(tmp_path: Path, about: About) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_xlsx(out / "a.xlsx", scan_schema(), scans(25, batch_rows=4), about=about, max_rows_per_sheet=10)
    with pytest.raises(KeyboardInterrupt):
        write_xlsx(out / "b.xlsx", scan_schema(), scans(100, batch_rows=10), about=about,
                   on_rows=lambda rows: (_ for _ in ()).throw(KeyboardInterrupt) if rows >= 30 else None)
    assert sorted(p.name for p in out.iterdir()) == ["a.xlsx"]
    with zipfile.ZipFile(out / "a.xlsx") as archive:
        assert archive.testzip() is None
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert '<dimension ref="A1:D10"/>' in sheet and sheet.count("<row ") == 10
