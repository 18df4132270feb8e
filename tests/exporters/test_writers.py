"""The shared writers, checked through real readers: DuckDB, openpyxl, python-calamine and pypdf."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from python_calamine import CalamineWorkbook
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing

from exporters import _pdf
from exporters._about import About
from exporters._csv import sidecar_path, write_csv
from exporters._parquet import ABOUT_KEY, read_about, write_parquet
from exporters._pdf import Chart, DataTable, Heading, NewPage, Text, write_pdf
from exporters._result import WriteResult
from exporters._safety import neutralise_batch, neutralise_header, neutralise_text
from exporters._xlsx import CURRENCY, PERCENT, Sheet, write_xlsx, write_xlsx_tables
from exporters._zip import zip_if_large

UTC = dt.UTC
UNICODE_NAME = "Zoë Łukasz Ærøskøbing 北"
# Text that a spreadsheet would run, and what each must become.
INJECTION = {
    "=1+1": "'=1+1",
    "+A1": "'+A1",
    "-2+3": "'-2+3",
    "@SUM(A1)": "'@SUM(A1)",
    "\tfoo": "'\tfoo",
    "\rbar": "'\rbar",
    "|cmd": "'|cmd",
    "normal text": "normal text",
    UNICODE_NAME: UNICODE_NAME,
    "a=b": "a=b",
}


def make_about(**overrides: object) -> About:
    values: dict[str, object] = {
        "project_slug": "harbour",
        "project_name": UNICODE_NAME,
        "export_type": "scans",
        "title": "Scans export",
        "variables": {"dateFrom": dt.date(2026, 3, 1), "zones": ["A1", "B2"], "includeDeleted": False},
        "data_cutoff": dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        "generated_at": dt.datetime(2026, 7, 1, 10, 5, 30, tzinfo=UTC),
        "timezone": "Europe/Berlin",
        "generator_version": "0.1.0",
    }
    values.update(overrides)
    return About(**values)  # type: ignore[arg-type]


@pytest.fixture
def about() -> About:
    return make_about()


CORPUS_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("amount", pa.float64()),
        ("qty", pa.int64()),
        ("at", pa.timestamp("us")),
        ("day", pa.date32()),
        ("ok", pa.bool_()),
    ]
)


def corpus_batch() -> pa.RecordBatch:
    """One row per injection string; row 0 carries the numbers -5 and 3.14 that must stay numbers."""
    texts = list(INJECTION)
    n = len(texts)
    return pa.record_batch(
        [
            pa.array(texts),
            pa.array([3.14] + [None] * (n - 1), pa.float64()),
            pa.array([-5] + list(range(1, n)), pa.int64()),
            pa.array([dt.datetime(2026, 7, 1, 12, 30, 45, 987654)] + [None] * (n - 1), pa.timestamp("us")),
            pa.array([dt.date(2026, 7, 1)] * n, pa.date32()),
            pa.array([True, False] + [None] * (n - 2)),
        ],
        schema=CORPUS_SCHEMA,
    )


def scans(n: int, batch_rows: int = 1_000) -> Iterator[pa.RecordBatch]:
    schema = scan_schema()
    for start in range(0, n, batch_rows):
        ids = list(range(start, min(n, start + batch_rows)))
        yield pa.record_batch(
            [
                pa.array(ids, pa.int64()),
                pa.array([f"zone {i % 7}" for i in ids]),
                pa.array([i % 5 for i in ids], pa.int32()),
                pa.array([dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i) for i in ids],
                         pa.timestamp("us", tz="UTC")),
            ],
            schema=schema,
        )


def scan_schema() -> pa.Schema:
    return pa.schema(
        [("scan_id", pa.int64()), ("zone", pa.string()), ("quantity", pa.int32()),
         ("scanned_at", pa.timestamp("us", tz="UTC"))]
    )


# --- About ---------------------------------------------------------------------------------------


def test_about_rows_show_variables_and_local_times(about: About) -> None:
    rows = dict(about.rows())
    assert rows["Project"] == f"{UNICODE_NAME} (harbour)"
    assert rows["Export type"] == "scans"
    assert rows["Variable: dateFrom"] == "2026-03-01"
    assert rows["Variable: zones"] == "A1, B2"
    assert rows["Variable: includeDeleted"] == "No"
    # 10:00 UTC is 12:00 in Berlin in July (CEST).
    assert rows["Data cut-off"] == "2026-07-01 12:00:00 (Europe/Berlin)"
    assert rows["Generated at"] == "2026-07-01 12:05:30 (Europe/Berlin)"
    assert rows["Generator version"] == "0.1.0"


def test_about_json_is_utc_and_round_trips(about: About) -> None:
    data = json.loads(about.to_json())
    assert data["data_cutoff"] == "2026-07-01T10:00:00Z"
    assert data["variables"] == {"dateFrom": "2026-03-01", "zones": ["A1", "B2"], "includeDeleted": False}
    assert data["project_name"] == UNICODE_NAME


def test_about_refuses_naive_times_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_about(generated_at=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown timezone"):
        make_about(timezone="Mars/Olympus")


# --- formula injection ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), INJECTION.items())
def test_neutralise_text(raw: str, expected: str) -> None:
    assert neutralise_text(raw) == expected


def test_neutralise_header() -> None:
    assert neutralise_header(["=cmd", "qty"]) == ["'=cmd", "qty"]


# No deadline: the first example pays pyarrow's one-off imports, which on a busy machine exceed 200 ms.
@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from("=+-@\t\r|'a ë北1"), max_size=6))))
def test_neutralise_batch_matches_text_rule(values: list[str | None]) -> None:
    for type_ in (pa.string(), pa.large_string()):
        batch = pa.record_batch([pa.array(values, type_)], names=["s"])
        out = neutralise_batch(batch).column(0).to_pylist()
        assert out == [None if v is None else neutralise_text(v) for v in values]


def test_neutralise_batch_leaves_numbers_and_handles_dictionaries() -> None:
    batch = pa.record_batch(
        [pa.array([-5, 3]), pa.array([-1.5, 2.0]), pa.array(["=a", "b"]).dictionary_encode()],
        names=["i", "f", "d"],
    )
    out = neutralise_batch(batch)
    assert out.column(0).to_pylist() == [-5, 3]
    assert out.column(1).to_pylist() == [-1.5, 2.0]
    assert pa.types.is_dictionary(out.schema.field("d").type)
    assert out.column(2).to_pylist() == ["'=a", "b"]


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_injection_corpus_and_types(tmp_path: Path, about: About) -> None:
    path = tmp_path / "corpus.csv"
    result = write_csv(path, CORPUS_SCHEMA, [corpus_batch()], about=about)
    assert result.paths == [path, tmp_path / "corpus.about.json"]
    assert result.rows == len(INJECTION)

    rel = duckdb.read_csv(str(path), header=True)
    assert rel.columns == CORPUS_SCHEMA.names
    got = rel.fetchall()
    assert [r[0] for r in got] == list(INJECTION.values())
    first = got[0]
    assert first[1] == pytest.approx(3.14) and first[2] == -5  # numbers stay numbers
    assert first[3] == dt.datetime(2026, 7, 1, 12, 30, 45)
    assert first[5] is True and got[1][5] is False and got[2][5] is None

    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"text","amount","qty","at","day","ok"'
    assert lines[1] == '"\'=1+1",3.14,-5,"2026-07-01 12:30:45",2026-07-01,true'
    assert lines[2].endswith(",,1,,2026-07-01,false")  # nulls are empty cells
    assert json.loads(sidecar_path(path).read_text(encoding="utf-8"))["title"] == "Scans export"


def test_csv_counts_and_sums_with_duckdb(tmp_path: Path, about: About) -> None:
    path = tmp_path / "scans.csv"
    seen: list[int] = []
    result = write_csv(path, scan_schema(), scans(2_500), about=about, on_rows=seen.append)
    assert seen == [1_000, 2_000, 2_500]
    assert result.rows == 2_500
    count, total, first = duckdb.sql(
        f"SELECT count(*), sum(quantity), min(scanned_at) FROM read_csv('{path}')"
    ).fetchall()[0]
    assert (count, total) == (2_500, sum(i % 5 for i in range(2_500)))
    assert first == dt.datetime(2026, 1, 1, 1, 0)  # aware UTC shown in Berlin time (CET, +1)


def test_csv_excel_dialect_has_bom_and_semicolons(tmp_path: Path, about: About) -> None:
    path = tmp_path / "excel.csv"
    write_csv(path, CORPUS_SCHEMA, [corpus_batch()], about=about, dialect="excel")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].split(b"\n")[0].decode()
    assert header == '"text";"amount";"qty";"at";"day";"ok"'
    rows = duckdb.read_csv(str(path), header=True, sep=";").fetchall()
    assert rows[0][:3] == ("'=1+1", 3.14, -5)


def test_csv_neutralises_header_and_rejects_unknown_dialect(tmp_path: Path, about: About) -> None:
    schema = pa.schema([("=evil()", pa.int64())])
    path = tmp_path / "h.csv"
    write_csv(path, schema, [pa.record_batch([pa.array([1])], schema=schema)], about=about)
    assert path.read_text().splitlines()[0] == '"\'=evil()"'
    with pytest.raises(ValueError, match="dialect"):
        write_csv(tmp_path / "x.csv", schema, [], about=about, dialect="tsv")  # type: ignore[arg-type]


def test_csv_abort_from_on_rows_removes_files(tmp_path: Path, about: About) -> None:
    class Cancelled(Exception):
        pass

    def cancel(rows: int) -> None:
        if rows >= 2_000:
            raise Cancelled

    path = tmp_path / "cancel.csv"
    with pytest.raises(Cancelled):
        write_csv(path, scan_schema(), scans(5_000), about=about, on_rows=cancel)
    assert not path.exists() and not sidecar_path(path).exists()


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


# --- Parquet -------------------------------------------------------------------------------------


def test_parquet_typed_zstd_with_about(tmp_path: Path, about: About) -> None:
    path = tmp_path / "scans.parquet"
    result = write_parquet(path, scan_schema(), scans(3_000, batch_rows=100), about=about)
    assert result == WriteResult(paths=[path], rows=3_000, warnings=[])
    count, total, type_ = duckdb.sql(
        f"SELECT count(*), sum(quantity), typeof(min(scanned_at)) FROM read_parquet('{path}')"
    ).fetchall()[0]
    assert (count, total, type_) == (3_000, sum(i % 5 for i in range(3_000)), "TIMESTAMP WITH TIME ZONE")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 1  # 30 small batches are not 30 tiny row groups
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert json.loads(read_about(path) or "")["export_type"] == "scans"
    assert ABOUT_KEY in pq.read_schema(path).metadata


def test_parquet_does_not_neutralise(tmp_path: Path, about: About) -> None:
    path = tmp_path / "corpus.parquet"
    write_parquet(path, CORPUS_SCHEMA, [corpus_batch()], about=about)
    assert pq.read_table(path).column("text").to_pylist() == list(INJECTION)


# --- PDF -----------------------------------------------------------------------------------------


def bar_chart() -> Drawing:
    drawing = Drawing(900, 250)  # wider than the page: the writer must scale it down
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 50, 30, 800, 190
    chart.data = [[120, 340, 90, 410]]
    chart.categoryAxis.categoryNames = ["A1", "B2", "C3", "D4"]
    drawing.add(chart)
    return drawing


def make_sample_pdf(path: Path, about: About, rows: int = 120) -> WriteResult:
    """A report with every kind of block and a table long enough to need three pages."""
    table = pa.table(
        {
            "user": [UNICODE_NAME if i % 10 == 0 else f"user {i}" for i in range(rows)],
            "scans": [i * 37 for i in range(rows)],
            "hours": [i * 1.25 for i in range(rows)],
            "share": [i / rows for i in range(rows)],
            "first_scan": pa.array([dt.datetime(2026, 7, 1, 6, i % 60, tzinfo=UTC) for i in range(rows)],
                                   pa.timestamp("us", tz="UTC")),
        }
    )
    blocks = [
        Heading("Summary"),
        Text("Scans per zone <for> the period & all users.\nSecond line."),
        Chart(bar_chart(), caption="Scans per zone"),
        Heading("Users", level=2),
        DataTable(table, formats={"share": ".1%"},
                  totals={"user": "Total", "scans": sum(i * 37 for i in range(rows))}),
        NewPage(),
        DataTable([["labor", 1200.5], ["travel", None]], header=["category", "amount"]),
    ]
    return write_pdf(path, about=about, blocks=blocks)


def test_pdf_title_block_repeated_header_and_page_numbers(tmp_path: Path, about: About) -> None:
    path = tmp_path / "report.pdf"
    result = make_sample_pdf(path, about)
    assert result.rows == 120 + 2  # data rows of both tables; a totals row is not data
    reader = PdfReader(path)
    pages = [page.extract_text() for page in reader.pages]
    count = len(pages)
    assert count >= 3
    assert "Scans export" in pages[0] and "Zoë Łukasz Ærøskøbing" in pages[0]
    assert "2026-07-01 12:05:30 (Europe/Berlin)" in pages[0] and "Variable: zones" in pages[0]
    assert "<for> the period & all users." in pages[0]
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in text
    # The long table continues over pages 2..n with its header repeated on each.
    table_pages = [t for t in pages if re.search(r"^user \d+$", t, re.MULTILINE)]
    assert len(table_pages) >= 3
    assert all("scans" in t and "share" in t and "first_scan" in t for t in table_pages)
    assert "user 119" in pages[-2] + pages[-1] and "4,403" in "".join(pages)  # 119 * 37, formatted
    assert "2026-07-01 08:00" in pages[1] + pages[0]  # aware time shown in Berlin time
    assert "category" in pages[-1] and "1,200.50" in pages[-1]
    assert reader.metadata is not None and reader.metadata.title == "Scans export"


def test_pdf_landscape_and_row_cap(tmp_path: Path, about: About) -> None:
    path = tmp_path / "wide.pdf"
    result = write_pdf(path, about=about, orientation="landscape",
                       blocks=[DataTable(pa.table({"n": list(range(50))}), max_rows=10)])
    box = PdfReader(path).pages[0].mediabox
    assert box.width > box.height
    assert result.rows == 10 and result.warnings == ["PDF table shows the first 10 of 50 rows"]
    assert "40 more rows not shown" in PdfReader(path).pages[0].extract_text()
    with pytest.raises(ValueError, match="header"):
        write_pdf(tmp_path / "x.pdf", about=about, blocks=[DataTable([[1]])])


def test_pdf_unicode_with_helvetica_fallback(
    tmp_path: Path, about: About, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a machine without DejaVu the built-in font must still produce a PDF, not raise.
    monkeypatch.setattr(_pdf, "_FONT_DIR", tmp_path / "no-fonts")
    _pdf._fonts.cache_clear()
    try:
        path = tmp_path / "fallback.pdf"
        write_pdf(path, about=about, blocks=[DataTable([[UNICODE_NAME, 1]], header=["name", "n"])])
        assert "Scans export" in PdfReader(path).pages[0].extract_text()
    finally:
        _pdf._fonts.cache_clear()


# --- zip -----------------------------------------------------------------------------------------


def test_zip_if_large(tmp_path: Path) -> None:
    path = tmp_path / "scans_export.csv"
    content = b"scan_id,zone\n" + b"".join(f"{i},zone {i % 9}\n".encode() for i in range(20_000))
    path.write_bytes(content)

    assert zip_if_large(path, len(content)) == path  # not larger than the threshold
    assert path.exists()

    zipped = zip_if_large(path, 1_000)
    assert zipped == tmp_path / "scans_export.csv.zip"
    assert not path.exists()
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == ["scans_export.csv"]
        info = archive.getinfo("scans_export.csv")
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < len(content)
        assert archive.read("scans_export.csv") == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans_export.csv.zip"]  # no partial left


def test_pdf_prints_cjk_names_with_the_fallback_font(tmp_path):
    """Where Debian's fonts-droid-fallback is installed (make test installs it), CJK text is real text."""
    from pathlib import Path

    from pypdf import PdfReader

    from exporters._pdf import DataTable, write_pdf

    assert Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf").is_file(), "run make system-deps"
    table = pa.table({"name": ["李娜", "Zoë Łukasz", "倉庫 A"], "scans": [1, 2, 3]})
    path = tmp_path / "cjk.pdf"
    write_pdf(path, about=make_about(), blocks=[DataTable(table)])
    text = "".join(page.extract_text() for page in PdfReader(path).pages)
    assert "李娜" in text and "倉庫" in text and "Zoë Łukasz" in text


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


def test_fast_zip_member_round_trips_and_passes_its_crc(tmp_path: Path) -> None:
    from exporters._zip import fast_member

    payload = b"".join(f"{i},scan {i},=x\n".encode() for i in range(200_000))
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive, fast_member(archive, "x.csv") as member:
        member.write(payload)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None and archive.read("x.csv") == payload
        assert archive.getinfo("x.csv").compress_size < len(payload) / 3
