"""Worksheet rows as SpreadsheetML, built from Arrow batches with vectorised string kernels.

xlsxwriter writes one cell per Python call; at 1M rows x 12 columns that was 97 % of an XLSX export.
Here a batch becomes the ``<row>`` elements of a sheet's ``<sheetData>`` in a handful of Arrow compute
calls per column, whose output buffer is written to a file as it is: no Python loop touches a row.
:mod:`exporters._xlsx` builds the rest of the workbook (styles, header, frozen pane, filter, About)
with xlsxwriter and puts these rows into the data sheets.

Cells follow xlsxwriter's own conventions, so the files read back the same: numbers as ``<v>``,
booleans ``t="b"``, dates and times as Excel serial numbers with their number format, text as inline
strings (XML-escaped, control characters as ``_xHHHH_``, cut at Excel's 32,767 characters), integers
beyond 2**53 as text, NaN and infinity as the errors ``#NUM!`` and ``#DIV/0!``, nulls left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exporters._about import local_naive
from exporters._safety import neutralise_array

MAX_STRING = 32_767  # Excel's cell limit
MAX_WIDTH = 60  # columns are never set wider than this many characters
_MIN_WIDTH = 6
_WIDTH_SAMPLE = 1_000
# Excel number formats of the temporal kinds; other columns use their ``number_formats`` or General.
DATETIME = "yyyy-mm-dd hh:mm:ss"
DATE = "yyyy-mm-dd"
TIME = "hh:mm:ss"
_DEFAULT_FORMAT = {"datetime": DATETIME, "date": DATE, "time": TIME}
_FIXED_WIDTH = {"datetime": 21, "date": 12, "time": 10, "bool": 7}
EXACT_INT = 2**53  # beyond this a double (Excel's only number) cannot hold an integer exactly
_MS_PER_DAY = 86_400_000
_EPOCH_SERIAL = 25_569  # 1970-01-01 as an Excel serial (1900 date system)
# XML 1.0 cannot hold these characters; SpreadsheetML spells them _xHHHH_ (as Excel and xlsxwriter do).
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, 0x0D, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)]
_CONTROL_PATTERN = "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in _CONTROL) + "]"
_LITERAL_ESCAPE = r"_(x[0-9A-Fa-f]{4}_)"  # text that would read as an escape is escaped itself
_TIME_UNITS_PER_DAY = {"s": 86_400, "ms": _MS_PER_DAY, "us": _MS_PER_DAY * 1_000, "ns": _MS_PER_DAY * 1_000_000}


class Columns:
    """Per-column cell writers, formats and widths, decided once from the schema."""

    def __init__(self, schema: pa.Schema, number_formats: Mapping[str, str]) -> None:
        unknown = set(number_formats) - set(schema.names)
        if unknown:
            raise ValueError(f"number_formats name unknown columns {sorted(unknown)}")
        self.names = list(schema.names)
        self.kinds = [_kind(f.type) for f in schema]
        self.num_formats = [
            number_formats.get(name) or _DEFAULT_FORMAT.get(kind)
            for name, kind in zip(self.names, self.kinds, strict=True)
        ]
        self.widths = [float(min(MAX_WIDTH, max(_MIN_WIDTH, len(n) + 3))) for n in self.names]

    def row_kinds(self) -> list[str]:
        """Kinds for :class:`RowWriter`: anything without a cell type of its own is written as text."""
        return ["text" if k == "other" else k for k in self.kinds]

    def prepare(self, batch: pa.RecordBatch, timezone: str) -> list[pa.Array]:
        """Vectorised clean-up for :class:`RowWriter`: local times, neutralised text, plain types."""
        batch = local_naive(batch, timezone)
        out = []
        for column, kind in zip(batch.columns, self.kinds, strict=True):
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            if kind == "other":
                column = _other_as_text(column)
            if kind in ("text", "other"):
                column = neutralise_array(column)
            elif kind == "datetime":
                # Excel keeps milliseconds at best.
                column = pc.floor_temporal(column, unit="millisecond").cast(pa.timestamp("ms"))
            out.append(column)
        return out

    def estimate_widths(self, columns: list[pa.Array]) -> None:
        for i, (values, kind) in enumerate(zip(columns, self.kinds, strict=True)):
            fixed = _FIXED_WIDTH.get(kind)
            if fixed:
                longest = fixed
            else:
                sample = values.slice(0, _WIDTH_SAMPLE)
                text = sample if pa.types.is_string(sample.type) else sample.cast(pa.string())
                longest = (pc.max(pc.utf8_length(text)).as_py() or 0) + 2
            self.widths[i] = float(min(MAX_WIDTH, max(self.widths[i], longest)))

    def warnings(self, *, long_text: bool = False) -> list[str]:
        if long_text:
            return [f"some text cells were cut to Excel's limit of {MAX_STRING:,} characters"]
        return []


def _kind(type_: pa.DataType) -> str:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_):
        return "bigint" if type_.bit_width == 64 else "number"
    if pa.types.is_floating(type_):
        return "number"
    if pa.types.is_decimal(type_):
        return "decimal"
    if pa.types.is_timestamp(type_):
        return "datetime"
    if pa.types.is_date(type_):
        return "date"
    if pa.types.is_time(type_):
        return "time"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return "text"
    return "other"


def _other_as_text(column: pa.Array) -> pa.Array:
    """Values with no cell type of their own (lists, binary …) as their text."""
    try:
        return column.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


def column_letters(index: int) -> str:
    """``0`` -> ``A``, ``25`` -> ``Z``, ``26`` -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


class RowWriter:
    """Turns prepared Arrow columns into ``<row>`` XML for one column layout.

    ``kinds`` are :func:`exporters._xlsx._kind` names; ``styles`` the xf index of each column's
    format (None for the default style).
    """

    def __init__(self, kinds: list[str], styles: list[int | None]) -> None:
        self.kinds = kinds
        self.letters = [column_letters(i) for i in range(len(kinds))]
        self.styles = [f' s="{s}"' if s else "" for s in styles]
        self.long_text = False

    def write(self, out: BinaryIO, columns: list[pa.Array], first_row: int) -> None:
        """Append rows ``first_row``, ``first_row + 1`` … (1-based, as Excel counts) holding ``columns``."""
        n = len(columns[0]) if columns else 0
        if n == 0:
            return
        numbers = np.arange(first_row, first_row + n, dtype=np.int64)
        # from_buffers, not pa.array: pyarrow's conversion of Python or NumPy input imports pandas.
        rows = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(numbers)]).cast(pa.string())
        cells = [self._cells(i, column, rows) for i, column in enumerate(columns)]
        xml = pc.binary_join_element_wise('<row r="', rows, '">', *cells, "</row>", "")
        _write_strings(out, xml)

    # ---------------------------------------------------------------- one column's cells

    def _cells(self, i: int, column: pa.Array, rows: pa.Array) -> pa.Array:
        kind, ref, style = self.kinds[i], f'<c r="{self.letters[i]}', self.styles[i]
        if kind == "text":
            cells = self._text_cells(ref, style, column, rows)
        elif kind == "bool":
            value = pc.if_else(column, "1", "0")
            cells = pc.binary_join_element_wise(ref, rows, f'"{style} t="b"><v>', value, "</v></c>", "")
        elif kind in ("datetime", "date", "time"):
            cells = _number_cells(ref, style, _serial(column, kind).cast(pa.string()), rows)
        elif kind == "bigint":
            cells = self._bigint_cells(ref, style, column, rows)
        elif kind in ("number", "decimal"):
            cells = self._number_cells(ref, style, column, rows)
        else:
            cells = self._text_cells(ref, style, _as_text(column), rows)
        return pc.fill_null(cells, "")

    def _number_cells(self, ref: str, style: str, column: pa.Array, rows: pa.Array) -> pa.Array:
        if pa.types.is_decimal(column.type):
            column = column.cast(pa.float64())
        cells = _number_cells(ref, style, column.cast(pa.string()), rows)
        if not pa.types.is_floating(column.type):
            return cells
        nan, inf = pc.is_nan(column), pc.is_inf(column)
        if not pc.any(pc.or_(nan, inf)).as_py():
            return cells
        # As xlsxwriter's nan_inf_to_errors: a cell with the error Excel would show.
        nan_cell = pc.binary_join_element_wise(ref, rows, f'"{style} t="e"><f>#NUM!</f><v>#NUM!</v></c>', "")
        inf_cell = pc.binary_join_element_wise(ref, rows, f'"{style} t="e"><f>#DIV/0!</f><v>#DIV/0!</v></c>', "")
        return pc.if_else(nan, nan_cell, pc.if_else(inf, inf_cell, cells))

    def _bigint_cells(self, ref: str, style: str, column: pa.Array, rows: pa.Array) -> pa.Array:
        cells = _number_cells(ref, style, column.cast(pa.string()), rows)
        exact = pc.and_(pc.greater_equal(column, -EXACT_INT), pc.less_equal(column, EXACT_INT))
        if pc.all(pc.fill_null(exact, True)).as_py():
            return cells
        as_text = self._text_cells(ref, style, column.cast(pa.string()), rows)  # every digit kept
        return pc.if_else(exact, cells, as_text)

    def _text_cells(self, ref: str, style: str, column: pa.Array, rows: pa.Array) -> pa.Array:
        if pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
            column = column.cast(pa.string())
        if (pc.max(pc.utf8_length(column)).as_py() or 0) > MAX_STRING:
            self.long_text = True
            column = pc.utf8_slice_codeunits(column, 0, MAX_STRING)
        text = _escape(column)
        return pc.binary_join_element_wise(
            ref, rows, f'"{style} t="inlineStr"><is><t xml:space="preserve">', text, "</t></is></c>", ""
        )


def _number_cells(ref: str, style: str, value: pa.Array, rows: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(ref, rows, f'"{style}><v>', value, "</v></c>", "")


def _escape(column: pa.Array) -> pa.Array:
    """XML-escape text and spell out what XML cannot hold; each pass only runs when it is needed."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        if pc.any(pc.match_substring(column, char)).as_py():
            column = pc.replace_substring(column, char, entity)
    if pc.any(pc.match_substring_regex(column, _LITERAL_ESCAPE)).as_py():
        column = pc.replace_substring_regex(column, _LITERAL_ESCAPE, r"_x005F_\1")
    if pc.any(pc.match_substring_regex(column, _CONTROL_PATTERN)).as_py():
        for char in _CONTROL:
            if pc.any(pc.match_substring(column, char)).as_py():
                column = pc.replace_substring(column, char, f"_x{ord(char):04X}_")
    return column


def _serial(column: pa.Array, kind: str) -> pa.Array:
    """Excel serial numbers (days since 1899-12-30; fractions are the time of day)."""
    if kind == "time":
        unit = column.type.unit
        return pc.divide(column.cast(pa.int64()), float(_TIME_UNITS_PER_DAY[unit]))
    if kind == "date":
        serial = pc.add(column.cast(pa.int32()).cast(pa.int64()), _EPOCH_SERIAL)
    else:
        # One division of an exact integer: the nearest double to the true serial, as xlsxwriter's.
        millis = column.cast(pa.timestamp("ms")).cast(pa.int64())
        serial = pc.divide(pc.add(millis, _EPOCH_SERIAL * _MS_PER_DAY), float(_MS_PER_DAY))
    # Excel counts a 29 February 1900 that never was: serials before 1 March 1900 are one lower.
    early = pc.less(serial, 61)
    if pc.any(early).as_py():
        serial = pc.if_else(early, pc.subtract(serial, 1), serial)
    return serial


def _as_text(column: pa.Array) -> pa.Array:
    from exporters._safety import neutralise_text

    try:
        return column.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        values = [None if v is None else neutralise_text(str(v)) for v in column.to_pylist()]
        return pa.array(values, pa.string())


def _write_strings(out: BinaryIO, strings: pa.Array) -> None:
    """Write the concatenation of a null-free string array: its data buffer, as it is."""
    if strings.null_count:
        strings = pc.fill_null(strings, "")
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)
    start, end = offsets[strings.offset], offsets[strings.offset + len(strings)]
    out.write(memoryview(strings.buffers()[2])[start:end])
