"""Put streamed rows into the data sheets of a workbook that xlsxwriter wrote with headers only.

xlsxwriter writes everything around the data (styles, header row, column widths, frozen pane,
autofilter and its defined name, document properties, the About sheet); :mod:`exporters._xlsx_rows`
writes the rows. This copies the workbook's zip once, inserting each sheet's rows before its
``</sheetData>`` and widening its ``<dimension>`` to the rows written.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from exporters._result import removing_on_error
from exporters._xlsx_rows import column_letters
from exporters._zip import fast_member

_DIMENSION = re.compile(rb'<dimension ref="[^"]*"/>')
_CHUNK = 1 << 20


@dataclass
class SheetRows:
    """Where one sheet's rows are: the zip member of the sheet and the file of its ``<row>`` XML."""

    member: str
    rows_path: Path
    last_column: int
    last_row: int = 1


def splice_rows(path: Path, sheets: list[SheetRows]) -> None:
    """Rewrite the workbook at ``path`` with each sheet's rows after its header row. Raises
    ``ValueError`` if a sheet is missing or has no ``<sheetData>`` (not a workbook from xlsxwriter)."""
    by_member = {s.member: s for s in sheets}
    partial = path.with_name(f".{path.name}.partial")
    with removing_on_error(partial):
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
            missing = set(by_member) - set(source.namelist())
            if missing:
                raise ValueError(f"workbook has no {sorted(missing)}")
            for info in source.infolist():
                sheet = by_member.get(info.filename)
                if sheet is None:
                    target.writestr(info, source.read(info))
                else:
                    _write_sheet(target, source.read(info), sheet)
        os.replace(partial, path)


def _write_sheet(target: zipfile.ZipFile, xml: bytes, sheet: SheetRows) -> None:
    # The rows go right after the header row, so a totals row xlsxwriter wrote below stays below.
    head, sep, tail = xml.partition(b"</row>")
    if not sep:  # no header row at all: before the end of the sheet's data
        head, sep, tail = xml.partition(b"</sheetData>")
        tail = sep + tail
        sep = b""
        if not tail:
            raise ValueError(f"{sheet.member} has no </sheetData>")
    ref = f'<dimension ref="A1:{column_letters(sheet.last_column)}{sheet.last_row}"/>'.encode()
    head = _DIMENSION.sub(ref, head, count=1)
    with fast_member(target, sheet.member) as out, open(sheet.rows_path, "rb") as rows:
        out.write(head + sep)
        shutil.copyfileobj(rows, out, _CHUNK)
        out.write(tail)
