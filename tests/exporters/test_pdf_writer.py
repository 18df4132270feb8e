"""The PDF writer read back with pypdf: title block, repeated headers, page numbers, fonts, row cap."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pytest
from pypdf import PdfReader
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing

from exporters import _pdf
from exporters._about import About
from exporters._pdf import Chart, DataTable, Heading, NewPage, Text, write_pdf
from exporters._result import WriteResult
from tests.exporters._writer_samples import UNICODE_NAME, UTC, make_about


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
