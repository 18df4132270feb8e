"""XLSX writers: a streaming one for big data exports and a table one for small multi-sheet reports.

xlsxwriter writes the workbook around the data: styles, the styled header row, column widths, the
frozen header, the autofilter, document properties and the "About" sheet (and a report's totals row).
The data rows are written as SpreadsheetML from Arrow batches (:mod:`exporters._xlsx_rows`) into a file
per sheet and spliced into the finished workbook (:mod:`exporters._xlsx_splice`): typed cells, text
neutralised against formula injection and always written as text, no Python loop over cells.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from exporters._about import About
from exporters._result import RowCallback, WriteResult, removing_on_error
from exporters._safety import neutralise_text
from exporters._xlsx_rows import EXACT_INT, MAX_WIDTH, Columns, RowWriter
from exporters._xlsx_splice import SheetRows, splice_rows
from exporthub.excel import EXCEL_MAX_ROWS

CURRENCY = "#,##0.00"
PERCENT = "0.0%"
INTEGER = "#,##0"

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_HEADER_STYLE = {"bold": True, "bg_color": "#DCE6F1", "border": 1, "border_color": "#8EA9DB"}


@dataclass(frozen=True)
class Sheet:
    """One sheet of a small report for :func:`write_xlsx_tables`.

    ``totals`` maps column names to the values of a bold row under the data (e.g.
    ``{"category": "Total", "amount": 1234.5}``); ``number_formats`` maps column names to Excel formats
    such as :data:`CURRENCY`, :data:`PERCENT` or :data:`INTEGER`, applied to data and totals alike.
    """

    name: str
    table: pa.Table
    totals: Mapping[str, object] | None = None
    number_formats: Mapping[str, str] = field(default_factory=dict)


def write_xlsx(
    path: Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    about: About,
    sheet_name: str = "Data",
    on_rows: RowCallback | None = None,
    max_rows_per_sheet: int = EXCEL_MAX_ROWS,
    number_formats: Mapping[str, str] | None = None,
) -> WriteResult:
    """Stream ``batches`` (all of ``schema``) into an XLSX at ``path``, then add an About sheet.

    ``max_rows_per_sheet`` counts the header row. Beyond it the data continues on "Data (2)",
    "Data (3)" … each with its own header, and the result carries a warning. Aware timestamps are shown
    in ``about.timezone``. ``on_rows(rows_so_far)`` runs after each batch; what it raises propagates and
    the file is removed. Raises ``ValueError`` if ``max_rows_per_sheet`` < 2 or the schema has no columns.
    """
    if max_rows_per_sheet < 2:
        raise ValueError("max_rows_per_sheet must leave room for the header and one row")
    if not schema.names:
        raise ValueError("cannot write a sheet with no columns")
    columns = Columns(schema, number_formats or {})
    sheets: list[_StreamedSheet] = []
    rows = 0
    try:
        with removing_on_error(path), _Book(path, about) as book:
            writer = RowWriter(columns.row_kinds(), [book.style_index(f) for f in columns.num_formats])
            for batch in _slices(batches, _CHECK_EVERY_ROWS):
                if batch.num_rows == 0:
                    continue
                prepared = columns.prepare(batch, about.timezone)
                if not sheets:
                    columns.estimate_widths(prepared)
                offset = 0
                while offset < batch.num_rows:
                    if not sheets or sheets[-1].rows_left(max_rows_per_sheet) == 0:
                        name = _sheet_name(sheet_name, len(sheets) + 1)
                        sheets.append(_StreamedSheet(book, name, columns, path, len(sheets) + 1))
                    take = min(sheets[-1].rows_left(max_rows_per_sheet), batch.num_rows - offset)
                    part = prepared if take == batch.num_rows else [c.slice(offset, take) for c in prepared]
                    sheets[-1].append(writer, part)
                    offset += take
                rows += batch.num_rows
                if on_rows is not None:
                    on_rows(rows)
            if not sheets:  # an empty export still shows its header
                sheets.append(_StreamedSheet(book, _sheet_name(sheet_name, 1), columns, path, 1))
            for sheet in sheets:
                sheet.finish()
            warnings = columns.warnings(long_text=writer.long_text)
            if len(sheets) > 1:
                warnings.append(
                    f"{rows:,} rows split across {len(sheets)} sheets at Excel's row limit "
                    f"({max_rows_per_sheet - 1:,} data rows per sheet)"
                )
            book.close(taken={s.name for s in sheets})
            splice_rows(path, [s.splice for s in sheets])
    finally:
        for sheet in sheets:
            sheet.discard()
    return WriteResult(paths=[path], rows=rows, warnings=warnings)


def write_xlsx_tables(
    path: Path, sheets: Sequence[Sheet | tuple[str, pa.Table]], *, about: About
) -> WriteResult:
    """Write small tables, one styled sheet each (``(name, table)`` pairs are plain Sheets), plus About.

    Raises ``ValueError`` for duplicate sheet names, a table too long for one sheet, or totals naming
    a column the table does not have.
    """
    specs = [s if isinstance(s, Sheet) else Sheet(name=s[0], table=s[1]) for s in sheets]
    names = [_sheet_name(s.name, 1) for s in specs]
    if len({n.lower() for n in names}) != len(names):  # Excel compares sheet names case-insensitively
        raise ValueError(f"duplicate sheet names: {names}")
    for spec in specs:
        if spec.table.num_rows + 2 > EXCEL_MAX_ROWS:
            raise ValueError(f"sheet {spec.name!r} has too many rows for one sheet; use write_xlsx")
        unknown = set(spec.totals or {}) - set(spec.table.column_names)
        if unknown:
            raise ValueError(f"sheet {spec.name!r}: totals name unknown columns {sorted(unknown)}")
    rows = 0
    warnings: list[str] = []
    streamed: list[_StreamedSheet] = []
    try:
        with removing_on_error(path), _Book(path, about) as book:
            for number, (spec, name) in enumerate(zip(specs, names, strict=True), start=1):
                columns = Columns(spec.table.schema, spec.number_formats)
                writer = RowWriter(columns.row_kinds(), [book.style_index(f) for f in columns.num_formats])
                batches = [columns.prepare(b, about.timezone) for b in spec.table.combine_chunks().to_batches()]
                if batches:
                    columns.estimate_widths(batches[0])
                sheet = _StreamedSheet(book, name, columns, path, number)
                streamed.append(sheet)
                for batch in batches:
                    sheet.append(writer, batch)
                sheet.finish()
                if spec.totals:
                    sheet.write_totals(spec.totals)
                rows += spec.table.num_rows
                warnings += columns.warnings(long_text=writer.long_text)
            book.close(taken=set(names))
            splice_rows(path, [s.splice for s in streamed])
    finally:
        for sheet in streamed:
            sheet.discard()
    return WriteResult(paths=[path], rows=rows, warnings=warnings)


def _sheet_name(base: str, number: int) -> str:
    """A legal Excel sheet name: no ``[]:*?/\\``, at most 31 characters, numbered from the second on."""
    suffix = f" ({number})" if number > 1 else ""
    clean = _BAD_SHEET_CHARS.sub("_", base).strip("'") or "Sheet"
    return clean[: 31 - len(suffix)] + suffix


# Rows are turned into XML a batch at a time: at most this many, so that memory stays flat and
# cancellation (through on_rows) is checked often; a batch takes a few milliseconds.
_CHECK_EVERY_ROWS = 10_000


def _slices(batches: Iterable[pa.RecordBatch], size: int) -> Iterable[pa.RecordBatch]:
    for batch in batches:
        for offset in range(0, max(batch.num_rows, 1), size):
            yield batch.slice(offset, size)


class _Book:
    """The workbook and its format cache; xlsxwriter formats are workbook-wide and should be shared."""

    def __init__(self, path: Path, about: About) -> None:
        # Text never turns into numbers, formulas or links: we write it with write_string anyway, and
        # these options keep any accidental write() call honest too.
        self.workbook = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "nan_inf_to_errors": True,
                # Python's zipfile adds ZIP64 records only when a member needs them, so this costs
                # nothing for normal files and saves a huge multi-sheet export from failing at close.
                "use_zip64": True,
                # Keep constant_memory's row files beside the output (the job's private work folder),
                # so a killed worker leaves nothing behind in the system temp folder.
                "tmpdir": str(Path(path).parent),
            },
        )
        self.about = about
        self.header = self.workbook.add_format(_HEADER_STYLE)
        self._formats: dict[tuple[str | None, bool], Format | None] = {}
        self.workbook.set_properties(
            {"title": about.title, "subject": f"{about.project_name}: {about.export_type}",
             "author": "Exporthub", "comments": f"Generated {about.local(about.generated_at)}"}
        )

    def __enter__(self) -> _Book:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.discard()

    def discard(self) -> None:
        """Drop an unfinished workbook and the temporary row files ``constant_memory`` made."""
        # xlsxwriter deletes these only while assembling the file in close(); a cancelled export would
        # otherwise leave one temp file per sheet, as large as the sheet, in the temp directory.
        for sheet in self.workbook.worksheets():
            handle = getattr(sheet, "row_data_fh", None)
            if handle is not None:
                handle.close()
            name = getattr(sheet, "row_data_filename", None)
            if name:
                Path(name).unlink(missing_ok=True)

    def style_index(self, num_format: str | None) -> int | None:
        """The xf index of a cell format, fixed now so that rows written as XML can refer to it."""
        fmt = self.format(num_format)
        # xlsxwriter numbers a format when a cell first uses it; our cells bypass it, so ask now.
        return fmt._get_xf_index() if fmt is not None else None

    def format(self, num_format: str | None, bold: bool = False) -> Format | None:
        key = (num_format, bold)
        if key not in self._formats:
            props: dict[str, Any] = {}
            if num_format:
                props["num_format"] = num_format
            if bold:
                props.update(bold=True, top=1)
            self._formats[key] = self.workbook.add_format(props) if props else None
        return self._formats[key]

    def close(self, *, taken: set[str]) -> None:
        name = "About" if "about" not in {t.lower() for t in taken} else "About (export)"
        sheet = self.workbook.add_worksheet(name)
        bold = self.workbook.add_format({"bold": True})
        rows = self.about.rows()
        sheet.set_column(0, 0, max(len(k) for k, _ in rows) + 2)
        sheet.set_column(1, 1, min(MAX_WIDTH, max(len(v) for _, v in rows) + 2))
        for i, (key, value) in enumerate(rows):
            sheet.write_string(i, 0, key, bold)
            sheet.write_string(i, 1, neutralise_text(value))
        self.workbook.close()


# Cell writers for the few cells xlsxwriter still writes itself (totals rows).
Writer = Callable[[Worksheet, int, int, Any, "Format | None"], Any]


class _StreamedSheet:
    """A data sheet whose header, widths, pane and filter come from xlsxwriter and whose rows are XML
    from :class:`RowWriter`, kept in a file beside the output until the workbook is assembled."""

    def __init__(self, book: _Book, name: str, columns: Columns, path: Path, number: int) -> None:
        self.sheet = _DataSheet(book, name, columns)
        self.name = name
        self.rows_path = path.with_name(f".{path.name}.rows{number}")
        self._out = open(self.rows_path, "wb")  # noqa: SIM115 - closed in finish() or discard()
        self.splice = SheetRows(member=f"xl/worksheets/sheet{number}.xml", rows_path=self.rows_path,
                                last_column=len(columns.names) - 1)

    def rows_left(self, max_rows: int) -> int:
        return self.sheet.rows_left(max_rows)

    def append(self, writer: RowWriter, columns: list[pa.Array]) -> None:
        writer.write(self._out, columns, first_row=self.sheet.rows + 2)  # row 1 is the header
        self.sheet.rows += len(columns[0])

    def finish(self) -> None:
        self._out.close()
        self.sheet.finish()
        self.splice.last_row = self.sheet.rows + 1

    def write_totals(self, totals: Mapping[str, object]) -> None:
        """A bold totals row under the data (written by xlsxwriter, after the streamed rows)."""
        self.sheet.write_totals(totals)
        self.splice.last_row += 1

    def discard(self) -> None:
        self._out.close()
        self.rows_path.unlink(missing_ok=True)


class _DataSheet:
    """One worksheet: styled header, typed rows, frozen header, autofilter over the data."""

    def __init__(self, book: _Book, name: str, columns: Columns) -> None:
        self.book, self.name, self.columns = book, name, columns
        self.sheet = book.workbook.add_worksheet(name)
        self.rows = 0
        for i, (name_, width) in enumerate(zip(columns.names, columns.widths, strict=True)):
            self.sheet.set_column(i, i, width)
            self.sheet.write_string(0, i, neutralise_text(name_), book.header)
        self.sheet.freeze_panes(1, 0)

    def rows_left(self, max_rows: int) -> int:
        return max_rows - 1 - self.rows

    def finish(self) -> None:
        if self.columns.names:
            self.sheet.autofilter(0, 0, self.rows, len(self.columns.names) - 1)

    def write_totals(self, totals: Mapping[str, object]) -> None:
        row = self.rows + 1
        for col, (name, kind) in enumerate(zip(self.columns.names, self.columns.kinds, strict=True)):
            value = totals.get(name)
            fmt = self.book.format(self.columns.num_formats[col], bold=True)
            if value is None:
                self.sheet.write_blank(row, col, None, fmt)
            elif isinstance(value, str):
                self.sheet.write_string(row, col, neutralise_text(value), fmt)
            else:
                _WRITERS[_python_kind(value, kind)](self.sheet, row, col, value, fmt)


def _python_kind(value: object, column_kind: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "bigint" if isinstance(value, int) else "number"
    return column_kind if column_kind in ("datetime", "date", "time") else "other"


def _write_bigint(sheet: Worksheet, row: int, col: int, value: int, fmt: Format | None) -> Any:
    if -EXACT_INT <= value <= EXACT_INT:
        return sheet.write_number(row, col, value, fmt)
    return sheet.write_string(row, col, str(value), fmt)  # text keeps every digit of a huge id


def _write_other(sheet: Worksheet, row: int, col: int, value: Any, fmt: Format | None) -> Any:
    return sheet.write_string(row, col, neutralise_text(str(value)), fmt)


_WRITERS: dict[str, Writer] = {
    "bool": Worksheet.write_boolean,
    "number": Worksheet.write_number,
    "decimal": Worksheet.write_number,
    "bigint": _write_bigint,
    "datetime": Worksheet.write_datetime,
    "date": Worksheet.write_datetime,
    "time": Worksheet.write_datetime,
    "text": Worksheet.write_string,
    "other": _write_other,
}
