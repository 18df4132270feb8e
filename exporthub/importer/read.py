"""Reading import files, within limits that are checked before the whole file is parsed.

An import file comes from an operator's disk or from the admin page's upload, into the web process.
So every file is held to limits, each refused with a sentence that names the file and the limit:

- its size, ``settings.import_max_file_bytes`` (``EXPORTHUB_IMPORT_MAX_FILE_BYTES``), checked first;
- a csv header of at most :data:`MAX_HEADER_BYTES` with at most :data:`MAX_COLUMNS` columns, read from
  the first bytes of the file only (a 10-million-column header is refused in milliseconds);
- csv cells of at most :data:`MAX_FIELD_BYTES`, checked block by block as the file streams in, so a
  huge cell is refused at its block, with its row;
- parquet files: the column count and every column's type, from the footer before any data is read;
  nested types (struct, list, map, union) are refused by name, never stored as text.

:class:`ImportRefused` carries the problems (file, row, column, message) to show.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from exporthub.errors import ImportRefused
from exporthub.importer.contract import ImportColumn, Kind

MAX_HEADER_BYTES = 64 * 1024
MAX_COLUMNS = 64  # a contract table has at most 9 columns; anything far beyond is not an import file
MAX_FIELD_BYTES = 64 * 1024  # one cell: barcodes, names and devices are far shorter
_BLOCK_BYTES = 4 * 1024 * 1024  # a csv row must fit in one block (so: at most 4 MiB)
_PER_CHECK = 10  # rows reported per kind of problem


@dataclass(frozen=True)
class Problem:
    file: str | None
    row: int | None  # 1 = the first row after the header
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [
            x
            for x in (
                self.file,
                f"row {self.row}" if self.row else None,
                f"column {self.column}" if self.column else None,
            )
            if x
        ]
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class ImportFile:
    """A file to import: its name (used in messages and to tell csv from parquet) and its bytes or path."""

    name: str
    data: bytes | Path

    @classmethod
    def from_path(cls, path: Path | str) -> ImportFile:
        path = Path(path)
        return cls(name=path.name, data=path)

    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.stat().st_size

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if isinstance(self.data, bytes):
            yield io.BytesIO(self.data)
        else:
            with open(self.data, "rb") as fh:
                yield fh


def _refuse(f: ImportFile, message: str, *, row: int | None = None, column: str | None = None) -> ImportRefused:
    return ImportRefused([Problem(f.name, row, column, message)])


def _size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def read_raw(f: ImportFile, *, max_bytes: int) -> pa.Table:
    """The file as an Arrow table (csv: every column as text, an empty cell null), within the limits.

    Raises :class:`ImportRefused` for a missing, oversized, unreadable or malformed file.
    """
    suffix = Path(f.name).suffix.lower()
    if isinstance(f.data, Path) and not f.data.is_file():
        raise _refuse(f, f"no such file: {f.data}")
    if suffix not in (".csv", ".parquet", ".pq"):
        raise _refuse(f, "unknown file type; use .csv or .parquet")
    size = f.size()
    if size > max_bytes:
        raise _refuse(f, f"the file is {_size_text(size)}; an import file may have at most {_size_text(max_bytes)} "
                         "(EXPORTHUB_IMPORT_MAX_FILE_BYTES)")
    return _read_csv(f) if suffix == ".csv" else _read_parquet(f)


# ---------------------------------------------------------------------- csv


def csv_header(f: ImportFile) -> list[str]:
    """The header row, read from the first :data:`MAX_HEADER_BYTES` of the file only."""
    with f.open() as fh:
        head = fh.read(MAX_HEADER_BYTES + 1)
    if not head:
        raise _refuse(f, "the file is empty (no header row)")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) <= MAX_HEADER_BYTES)
    except UnicodeDecodeError:
        raise _refuse(f, "the header is not UTF-8 text") from None
    end = min((i for i in (text.find("\n"), text.find("\r")) if i >= 0), default=-1)
    if end < 0 and len(head) > MAX_HEADER_BYTES:
        raise _refuse(f, f"the header row is longer than {MAX_HEADER_BYTES // 1024} KB; this is not an import file")
    line = text if end < 0 else text[:end]
    if line.count(",") >= MAX_COLUMNS:
        raise _refuse(f, f"the header has {line.count(',') + 1:,} columns; an import file has at most {MAX_COLUMNS}")
    try:
        header = next(csv.reader([line], strict=True), [])
    except csv.Error as exc:
        raise _refuse(f, f"the header row cannot be read ({exc})") from None
    if not any(name.strip() for name in header):
        raise _refuse(f, "the file is empty (no header row)")
    return header


def _read_csv(f: ImportFile) -> pa.Table:
    header = csv_header(f)
    bad_rows: list[Problem] = []

    def on_invalid(row: Any) -> str:
        if len(bad_rows) < _PER_CHECK:
            bad_rows.append(Problem(
                f.name, row.number - 1 if row.number else None, None,
                f"{row.actual_columns} fields where the header has {row.expected_columns}: {row.text[:60]!r}",
            ))
        return "skip"

    batches: list[pa.RecordBatch] = []
    rows_before = 0
    try:
        with f.open() as fh:
            reader = pacsv.open_csv(
                fh,
                # One thread: row numbers are known only this way.
                read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            for batch in reader:
                _check_cells(f, batch, rows_before)
                batches.append(batch)
                rows_before += batch.num_rows
            schema = reader.schema
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "straddling" in text or "block" in text.lower():
            text = (f"a row is longer than {_BLOCK_BYTES // 2**20} MB; "
                    f"a cell may have at most {MAX_FIELD_BYTES // 1024} KB")
        elif "UTF8" in text or "utf8" in text.lower():
            text = "the file is not UTF-8 text"
        raise _refuse(f, text) from None
    if bad_rows:
        raise ImportRefused(bad_rows)
    return pa.Table.from_batches(batches, schema=schema)


def _check_cells(f: ImportFile, batch: pa.RecordBatch, rows_before: int) -> None:
    """Refuse the first cell over :data:`MAX_FIELD_BYTES` of this block (row numbers count skipped
    malformed rows out, as the rest of the import does)."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        too_long = pc.greater(pc.binary_length(column), MAX_FIELD_BYTES)
        if pc.any(too_long).as_py():
            index = pc.index(too_long, True).as_py()
            raise _refuse(f, f"the cell has {pc.binary_length(column)[index].as_py():,} bytes; a cell may have at "
                             f"most {MAX_FIELD_BYTES // 1024} KB", row=rows_before + index + 1, column=name)


# ---------------------------------------------------------------------- parquet


_NESTED = (pa.types.is_struct, pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list,
           pa.types.is_map, pa.types.is_union)


def _is_nested(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return any(check(t) for check in _NESTED) or getattr(pa.types, "is_list_view", lambda _t: False)(t)


def _read_parquet(f: ImportFile) -> pa.Table:
    try:
        with f.open() as fh:
            source = pq.ParquetFile(fh)
            schema = source.schema_arrow
            if len(schema) > MAX_COLUMNS:
                raise _refuse(f, f"the file has {len(schema):,} columns; an import file has at most {MAX_COLUMNS}")
            nested = [field for field in schema if _is_nested(field.type)]
            if nested:
                raise ImportRefused([
                    Problem(f.name, None, field.name,
                            f"nested type {field.type} is not allowed; a column holds plain values (whole numbers, "
                            "numbers, text, true/false, dates or times)")
                    for field in nested[:_PER_CHECK]
                ])
            table = source.read()
    except (pa.ArrowException, OSError) as exc:
        raise _refuse(f, f"not a readable Parquet file ({exc})") from None
    rows_before = 0
    for batch in table.to_batches():
        _check_cells(f, batch, rows_before)
        rows_before += batch.num_rows
    return table


# ---------------------------------------------------------------------- SQL for one column

# ISO 8601 date and time (seconds and fractions optional) that must end in an offset.
_TS_RE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)"
)
_FLOAT_RE = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
_EXPECT: dict[Kind, str] = {
    Kind.INT32: "a whole number (at most 2147483647)",
    Kind.INT64: "a whole number",
    Kind.FLOAT: "a number such as 12.5",
    Kind.BOOL: "true or false",
    Kind.TIMESTAMP: "a time in ISO 8601 with an offset, such as 2026-11-02T08:15:00+01:00",
    Kind.DATE: "a date such as 2026-11-02",
    Kind.STRING: "text",
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_type(kind: Kind) -> str:
    return {
        Kind.INT32: "INTEGER",
        Kind.INT64: "BIGINT",
        Kind.FLOAT: "DOUBLE",
        Kind.BOOL: "BOOLEAN",
        Kind.TIMESTAMP: "TIMESTAMPTZ",
        Kind.DATE: "DATE",
        Kind.STRING: "VARCHAR",
    }[kind]


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _native(kind: Kind, t: pa.DataType) -> bool:
    """Whether a typed (parquet) column can be taken as is, without going through text."""
    return bool({
        Kind.INT32: pa.types.is_integer(t),
        Kind.INT64: pa.types.is_integer(t),
        Kind.FLOAT: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
        Kind.BOOL: pa.types.is_boolean(t),
        Kind.TIMESTAMP: pa.types.is_timestamp(t) and t.tz is not None,
        Kind.DATE: pa.types.is_date(t),
        Kind.STRING: _is_text(t),
    }[kind])


def _blank(col: str, t: pa.DataType) -> str:
    """SQL that is true for an empty cell: null, or (for text) only whitespace."""
    return f"{col} IS NULL OR trim(CAST({col} AS VARCHAR)) = ''" if _is_text(t) else f"{col} IS NULL"


def _conversion(col: ImportColumn, ref: str, t: pa.DataType) -> tuple[str, str]:
    """(value SQL, validity SQL for a non-empty cell) for one column of a raw file."""
    kind, sql_type = col.kind, _sql_type(col.kind)
    if _native(kind, t) and kind is not Kind.STRING:
        value = f"TRY_CAST({ref} AS {sql_type})"
        valid = f"{value} IS NOT NULL" + (f" AND isfinite({value})" if kind is Kind.FLOAT else "")
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE {value} END", valid
    text = f"CAST({ref} AS VARCHAR)"
    if kind is Kind.STRING:
        value = f"NULLIF({text}, '')"
        valid = f"{text} IN ({', '.join(_lit(c) for c in col.choices)})" if col.choices else "true"
        return value, valid
    x = f"trim({text})"
    if kind in (Kind.INT32, Kind.INT64):
        value = f"TRY_CAST({x} AS {sql_type})"
        valid = f"regexp_full_match({x}, '[+-]?[0-9]+') AND {value} IS NOT NULL"
    elif kind is Kind.FLOAT:
        value = f"TRY_CAST({x} AS DOUBLE)"
        valid = f"regexp_full_match({x}, {_lit(_FLOAT_RE)}) AND isfinite({value})"
    elif kind is Kind.BOOL:
        value = f"CASE lower({x}) WHEN 'true' THEN true WHEN 'false' THEN false END"
        valid = f"lower({x}) IN ('true', 'false')"
    elif kind is Kind.TIMESTAMP:
        value = f"TRY_CAST({x} AS TIMESTAMPTZ)"
        valid = f"regexp_full_match({x}, {_lit(_TS_RE)}) AND {value} IS NOT NULL"
    else:  # DATE
        value = f"TRY_CAST({x} AS DATE)"
        valid = f"regexp_full_match({x}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AND {value} IS NOT NULL"
    return f"CASE WHEN {x} = '' THEN NULL ELSE {value} END", valid
