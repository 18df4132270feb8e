"""PDF report builder on reportlab platypus: a title block, then headings, text, tables and charts.

Callers describe the report as a list of blocks; this module owns layout, fonts and page furniture
(title block with the About, "Page X of Y" footer). Charts arrive as ready reportlab ``Drawing`` objects.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import pyarrow as pa
from reportlab.graphics import renderPDF
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from exporters._about import About, local_naive
from exporters._result import WriteResult, removing_on_error

# DejaVu Sans covers Latin, Greek and Cyrillic, so names like "Zoë Łukasz Ærøskøbing" print. Helvetica
# (built in) is the fallback; it cannot draw those glyphs but does not fail on them. Neither has CJK:
# such characters come out as empty boxes rather than an error.
_FONT_DIR = Path(__file__).resolve().parent / "fonts"  # DejaVu Sans, shipped with the package
_HEADER_FILL = colors.HexColor("#DCE6F1")
_GRID = colors.HexColor("#B4C6E7")
_ZEBRA = colors.HexColor("#F5F8FC")
_MARGIN = 15 * mm
_CELL_PAD = 14.0  # reportlab pads cells by 6pt each side; a little slack keeps words whole
_CELL_SIZE = 8


@dataclass(frozen=True)
class Heading:
    """A section heading; ``level`` 1 or 2."""

    text: str
    level: int = 1


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (not markup: ``<`` and ``&`` print as themselves; newlines break)."""

    text: str


@dataclass(frozen=True)
class DataTable:
    """A table that splits across pages with its header repeated.

    ``data`` is a ``pa.Table`` (header from its column names) or a list of rows plus ``header``.
    ``formats`` maps column names to Python format specs (``",.2f"``, ``".1%"``, ``",d"``); numbers
    default to thousands separators and two decimals for floats, and are right-aligned. ``totals``
    is a bold last row (by column name, or a full row). Rows past ``max_rows`` are left out with a note
    and a warning: a PDF is for reading, the full data belongs in CSV or XLSX.
    """

    data: pa.Table | Sequence[Sequence[object]]
    header: Sequence[str] | None = None
    formats: Mapping[str, str] = field(default_factory=dict)
    totals: Mapping[str, object] | Sequence[object] | None = None
    caption: str | None = None
    max_rows: int = 5_000


@dataclass(frozen=True)
class Chart:
    """A reportlab ``Drawing``, scaled down (never up) to fit the page, with an optional caption."""

    drawing: Drawing
    caption: str | None = None


@dataclass(frozen=True)
class NewPage:
    """Start the next block on a new page."""


Block = Heading | Text | DataTable | Chart | NewPage


def write_pdf(
    path: Path,
    *,
    about: About,
    blocks: Sequence[Block],
    orientation: Literal["portrait", "landscape"] = "portrait",
) -> WriteResult:
    """Build an A4 PDF at ``path``: title block from ``about``, then ``blocks`` in order.

    ``rows`` in the result counts the data rows printed (not totals rows). Raises ``ValueError`` for an
    unknown orientation, a row-list table without a header, or rows whose length differs from the header.
    """
    if orientation not in ("portrait", "landscape"):
        raise ValueError(f"orientation must be 'portrait' or 'landscape', got {orientation!r}")
    pagesize = landscape(A4) if orientation == "landscape" else A4
    styles = _Styles(*_fonts())
    doc = SimpleDocTemplate(
        str(path), pagesize=pagesize, leftMargin=_MARGIN, rightMargin=_MARGIN, topMargin=_MARGIN,
        bottomMargin=_MARGIN + 4 * mm, title=about.title, author="Exporthub",
        subject=f"{about.project_name}: {about.export_type}", creator=f"Exporthub {about.generator_version}",
    )
    story: list[Flowable] = _title_block(about, styles, doc.width)
    rows = 0
    warnings: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            story.append(Paragraph(_markup(block.text), styles.h1 if block.level <= 1 else styles.h2))
        elif isinstance(block, Text):
            story.append(Paragraph(_markup(block.text), styles.body))
        elif isinstance(block, Chart):
            parts: list[Flowable] = [_FitDrawing(block.drawing, doc.width, doc.height * 0.9)]
            if block.caption:
                parts.append(Paragraph(_markup(block.caption), styles.caption))
            story += [KeepTogether(parts), Spacer(1, 4 * mm)]
        elif isinstance(block, DataTable):
            flowables, shown, warning = _table(block, about, styles, doc.width)
            story += flowables
            rows += shown
            if warning:
                warnings.append(warning)
        elif isinstance(block, NewPage):
            story.append(PageBreak())
        else:
            raise TypeError(f"unknown PDF block {block!r}")
    footer = f"{about.project_name} · {about.title}"
    with removing_on_error(path):
        doc.build(story, canvasmaker=_numbered_canvas(footer, styles.font))
    return WriteResult(paths=[path], rows=rows, warnings=warnings)


@cache
def _fonts() -> tuple[str, str]:
    regular, bold = _FONT_DIR / "DejaVuSans.ttf", _FONT_DIR / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold"
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
    pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold")
    return "DejaVuSans", "DejaVuSans-Bold"


class _Styles:
    def __init__(self, font: str, bold: str) -> None:
        self.font, self.bold = font, bold
        self.title = ParagraphStyle("title", fontName=bold, fontSize=18, leading=22, spaceAfter=2 * mm)
        self.h1 = ParagraphStyle("h1", fontName=bold, fontSize=13, leading=16, spaceBefore=12, spaceAfter=6)
        self.h2 = ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
        self.body = ParagraphStyle("body", fontName=font, fontSize=10, leading=13, spaceAfter=2 * mm)
        self.caption = ParagraphStyle("caption", fontName=font, fontSize=8, leading=10, textColor=colors.grey)
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=_CELL_SIZE, leading=_CELL_SIZE + 2)
        self.cell_right = ParagraphStyle("cell_right", parent=self.cell, alignment=TA_RIGHT)
        self.head = ParagraphStyle("head", parent=self.cell, fontName=bold)
        self.head_right = ParagraphStyle("head_right", parent=self.head, alignment=TA_RIGHT)


# DejaVu has no CJK glyphs; where Droid Sans Fallback is installed (Debian's fonts-droid-fallback), runs
# of characters DejaVu lacks are set in it, so names like "李娜" print instead of empty boxes.
_FALLBACK_FONT_FILE = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
_FALLBACK = "ExporthubFallback"


@cache
def _main_coverage() -> frozenset[int]:
    """Code points of the main font (empty when it is a built-in font we cannot inspect)."""
    font, _bold = _fonts()
    main = getattr(getattr(pdfmetrics.getFont(font), "face", None), "charToGlyph", None)
    return frozenset(main) if main is not None else frozenset()


@cache
def _coverage() -> tuple[frozenset[int], frozenset[int]]:
    """Code points of the main font and of the fallback font (empty sets when not available).

    Loading the fallback (a 4 MB CJK font) costs about a second, so it happens only for a report
    that has text the main font cannot draw (see :func:`_needs_fallback`).
    """
    main = _main_coverage()
    if not main or not _FALLBACK_FONT_FILE.is_file():
        return frozenset(), frozenset()
    fallback = TTFont(_FALLBACK, str(_FALLBACK_FONT_FILE))
    pdfmetrics.registerFont(fallback)
    return main, frozenset(fallback.face.charToGlyph)


def _needs_fallback(text: str) -> bool:
    main = _main_coverage()
    if not main or all(ord(c) in main for c in text):
        return False
    main, fallback = _coverage()
    return bool(fallback) and any(ord(c) not in main and ord(c) in fallback for c in text)


def _markup(text: str) -> str:
    if not _needs_fallback(text):
        return escape(text).replace("\n", "<br/>")
    main, fallback = _coverage()
    parts: list[str] = []
    for use_fallback, run in groupby(text, key=lambda c: ord(c) not in main and ord(c) in fallback):
        chunk = escape("".join(run)).replace("\n", "<br/>")
        parts.append(f'<font name="{_FALLBACK}">{chunk}</font>' if use_fallback else chunk)
    return "".join(parts)


def _title_block(about: About, styles: _Styles, width: float) -> list[Flowable]:
    pairs = [(k, v) for k, v in about.rows() if k != "Title"]
    key_width = max(pdfmetrics.stringWidth(k, styles.bold, 9) for k, _ in pairs) + _CELL_PAD
    label = ParagraphStyle("label", parent=styles.cell, fontName=styles.bold, fontSize=9, leading=11)
    value = ParagraphStyle("value", parent=styles.cell, fontSize=9, leading=11)
    data = [[Paragraph(_markup(k), label), Paragraph(_markup(v), value)] for k, v in pairs]
    table = LongTable(data, colWidths=[key_width, width - key_width], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ("LEFTPADDING", (0, 0), (0, -1), 0),
        ("LINEBELOW", (0, -1), (-1, -1), 0.75, _GRID),
    ]))
    return [Paragraph(_markup(about.title), styles.title), table, Spacer(1, 5 * mm)]


def _table(
    block: DataTable, about: About, styles: _Styles, width: float
) -> tuple[list[Flowable], int, str | None]:
    """The table's flowables, the data rows shown, and a warning if rows were left out."""
    header, columns, numeric, total = _columns(block, about)
    shown = len(columns[0]) if columns else 0
    formats = [block.formats.get(name) for name in header]
    body = [[_text(v, f, about) for v, f in zip(row, formats, strict=True)] for row in zip(*columns, strict=True)]
    bold_last = block.totals is not None
    if block.totals is not None:
        totals = block.totals
        if isinstance(totals, Mapping):
            totals = [totals.get(name) for name in header]
        if len(totals) != len(header):
            raise ValueError(f"totals row has {len(totals)} cells for {len(header)} columns")
        body.append([_text(v, f, about) for v, f in zip(totals, formats, strict=True)])
    widths = _widths(header, body, styles, width, bold_last=bold_last)
    heads = [styles.head_right if n else styles.head for n in numeric]
    data: list[list[Any]] = [[Paragraph(_markup(h), s) for h, s in zip(header, heads, strict=True)]]
    for r, row in enumerate(body):
        last = bold_last and r == len(body) - 1
        data.append([_cell(t, w, n, last, styles) for t, w, n in zip(row, widths, numeric, strict=True)])
    table = LongTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(_table_style(numeric, bold_last, styles))
    flowables: list[Flowable] = [table]
    warning = None
    if total > shown:
        note = f"… {total - shown:,} more rows not shown; the full data is in the CSV or XLSX export."
        flowables.append(Paragraph(_markup(note), styles.caption))
        warning = f"PDF table shows the first {shown:,} of {total:,} rows"
    if block.caption:
        flowables.append(Paragraph(_markup(block.caption), styles.caption))
    flowables.append(Spacer(1, 4 * mm))
    return flowables, shown, warning


def _cell(text: str, width: float, numeric: bool, bold: bool, styles: _Styles) -> str | Paragraph:
    # Plain strings draw fast but never wrap; only cells too wide for their column pay for a
    # Paragraph, so a 5,000-row table stays quick to lay out.
    font = styles.bold if bold else styles.font
    if pdfmetrics.stringWidth(text, font, _CELL_SIZE) + _CELL_PAD <= width and not _needs_fallback(text):
        return text
    markup = f"<b>{_markup(text)}</b>" if bold else _markup(text)
    return Paragraph(markup, styles.cell_right if numeric else styles.cell)


def _table_style(numeric: list[bool], bold_last: bool, styles: _Styles) -> TableStyle:
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), styles.font, _CELL_SIZE),
        ("BACKGROUND", (0, 0), (-1, 0), _HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, _GRID),
        ("GRID", (0, 0), (-1, -1), 0.25, _GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, _ZEBRA]),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    commands += [("ALIGN", (c, 1), (c, -1), "RIGHT") for c, n in enumerate(numeric) if n]
    if bold_last:
        commands += [
            ("LINEABOVE", (0, -1), (-1, -1), 1, colors.black),
            ("FONT", (0, -1), (-1, -1), styles.bold, _CELL_SIZE),
        ]
    return TableStyle(commands)


def _columns(block: DataTable, about: About) -> tuple[list[str], list[list[Any]], list[bool], int]:
    """Header, first ``max_rows`` values per column, which columns are numeric, and the full row count."""
    if isinstance(block.data, pa.Table):
        table = block.data
        total = table.num_rows
        head = table.slice(0, block.max_rows).combine_chunks()
        batches = [local_naive(b, about.timezone) for b in head.to_batches()]
        head = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else head
        header = list(block.header or table.column_names)
        columns = [c.to_pylist() for c in head.columns]
        numeric = [_is_number_type(t) for t in table.schema.types]
    else:
        if block.header is None:
            raise ValueError("a DataTable given as rows needs a header")
        header = list(block.header)
        total = len(block.data)
        rows = [list(r) for r in block.data[: block.max_rows]]
        if any(len(r) != len(header) for r in rows):
            raise ValueError(f"every row must have {len(header)} cells, like the header")
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in header]
        present = [[v for v in col if v is not None] for col in columns]
        numeric = [bool(values) and all(_is_number(v) for v in values) for values in present]
    if len(header) != len(columns):
        raise ValueError(f"header has {len(header)} names for {len(columns)} columns")
    return header, columns, numeric, total


def _is_number_type(type_: pa.DataType) -> bool:
    return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _text(value: object, spec: str | None, about: About) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if _is_number(value):
        if spec:
            return format(value, spec)
        return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        if value.tzinfo:
            return about.local(value)
        return value.strftime(spec or "%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.strftime(spec) if spec else value.isoformat()
    return str(value)


def _widths(
    header: list[str], body: list[list[str]], styles: _Styles, available: float, *, bold_last: bool
) -> list[float]:
    """Natural column widths, squeezed to fit: narrow columns keep theirs, wide ones share the rest.

    Headers may wrap between words, so only their longest word counts; a bold totals row is measured bold.
    """
    plain, bold = (body[:-1], body[-1:]) if bold_last else (body, [])
    natural = []
    for c, name in enumerate(header):
        head = max((pdfmetrics.stringWidth(w, styles.bold, _CELL_SIZE) for w in name.split()), default=0)
        cells = max((pdfmetrics.stringWidth(row[c], styles.font, _CELL_SIZE) for row in plain), default=0)
        total = max((pdfmetrics.stringWidth(row[c], styles.bold, _CELL_SIZE) for row in bold), default=0)
        natural.append(max(head, cells, total, 12) + _CELL_PAD)
    if sum(natural) <= available:
        return natural
    widths = list(natural)
    flexible = set(range(len(widths)))
    while flexible:
        budget = available - sum(widths[c] for c in range(len(widths)) if c not in flexible)
        share = budget / len(flexible)
        fixed = {c for c in flexible if natural[c] <= share}
        if not fixed:
            for c in flexible:
                widths[c] = share
            break
        flexible -= fixed
    return widths


class _FitDrawing(Flowable):  # type: ignore[misc]  # reportlab ships no types
    def __init__(self, drawing: Drawing, max_width: float, max_height: float) -> None:
        super().__init__()
        self.drawing = drawing
        self.factor = min(1.0, max_width / drawing.width, max_height / drawing.height)
        self.hAlign = "CENTER"

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803 (reportlab)
        return self.drawing.width * self.factor, self.drawing.height * self.factor

    def draw(self) -> None:
        self.canv.saveState()
        self.canv.scale(self.factor, self.factor)
        renderPDF.draw(self.drawing, self.canv, 0, 0)
        self.canv.restoreState()


def _numbered_canvas(footer: str, font: str) -> type[Canvas]:
    """A canvas that holds pages back until the end, so each footer can say "Page X of Y"."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no types
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._footer(number, len(self._pages))
                super().showPage()
            super().save()

        def _footer(self, number: int, count: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setFont(font, 8)
            self.setFillColor(colors.grey)
            self.setStrokeColor(_GRID)
            self.line(_MARGIN, _MARGIN, width - _MARGIN, _MARGIN)
            self.drawString(_MARGIN, _MARGIN - 4 * mm, footer)
            self.drawRightString(width - _MARGIN, _MARGIN - 4 * mm, f"Page {number} of {count}")
            self.restoreState()

    return NumberedCanvas
