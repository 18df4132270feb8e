"""CSV writer: Arrow batches in, UTF-8 CSV plus an ``<stem>.about.json`` sidecar out.

Everything is vectorised with pyarrow and streamed batch by batch through ``pyarrow.csv.CSVWriter``, so
10M rows cost seconds and constant memory; no Python loop ever touches a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exporters._about import About, local_naive
from exporters._query import ProgressCallback, Query, quote_ident, quote_literal, run_copy, spreadsheet_safe
from exporters._result import RowCallback, WriteResult, removing_on_error
from exporters._safety import neutralise_array, neutralise_header

Dialect = Literal["standard", "excel"]

# "excel" is for spreadsheet users in locales whose list separator is ';' (decimal-comma locales).
# Excel needs the BOM to read the file as UTF-8. Decimals are still written with '.', because rewriting
# numbers as text would make the file ambiguous for every other reader.
_DIALECTS: dict[str, tuple[str, bytes]] = {"standard": (",", b""), "excel": (";", b"\xef\xbb\xbf")}


def sidecar_path(path: Path) -> Path:
    """Where :func:`write_csv` puts the About JSON for ``path``: ``<stem>.about.json`` next to it."""
    return path.with_name(f"{path.stem}.about.json")


def write_csv(
    path: Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    about: About,
    dialect: Dialect = "standard",
    on_rows: RowCallback | None = None,
) -> WriteResult:
    """Write ``batches`` (all of ``schema``) as CSV at ``path`` and the About sidecar beside it.

    Cells: text neutralised against formula injection (header too), timestamps ``YYYY-MM-DD HH:MM:SS``
    (naive ones are taken as project-local, aware ones are converted to ``about.timezone``), dates
    ``YYYY-MM-DD``, booleans ``true``/``false``, nulls empty. ``on_rows(rows_so_far)`` runs after each
    batch; whatever it raises propagates and both files are removed. Raises ``ValueError`` for an
    unknown dialect and ``pyarrow.ArrowInvalid`` for a batch that does not match ``schema``.
    """
    if dialect not in _DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}; expected one of {sorted(_DIALECTS)}")
    delimiter, bom = _DIALECTS[dialect]
    about_path = sidecar_path(path)
    out_schema = _prepare(_empty(schema), about.timezone).schema
    out_schema = pa.schema(
        [f.with_name(n) for f, n in zip(out_schema, neutralise_header(out_schema.names), strict=True)]
    )
    options = pacsv.WriteOptions(include_header=True, delimiter=delimiter, quoting_style="needed")
    rows = 0
    with removing_on_error(path, about_path):
        with pa.OSFile(str(path), "wb") as sink:
            sink.write(bom)
            with pacsv.CSVWriter(sink, out_schema, write_options=options) as writer:
                for batch in batches:
                    if batch.num_rows == 0:
                        continue
                    prepared = _prepare(batch, about.timezone)
                    writer.write_batch(pa.RecordBatch.from_arrays(prepared.columns, schema=out_schema))
                    rows += batch.num_rows
                    if on_rows is not None:
                        on_rows(rows)
        about_path.write_text(about.to_json() + "\n", encoding="utf-8")
    return WriteResult(paths=[path, about_path], rows=rows, warnings=[])


def copy_csv(
    query: Query,
    path: Path,
    *,
    about: About,
    dialect: Dialect = "standard",
    on_progress: ProgressCallback | None = None,
) -> WriteResult:
    """Have DuckDB write ``query``'s rows as CSV at ``path`` (``COPY``), plus the About sidecar.

    The same cells as :func:`write_csv` (neutralised text and header, local timestamps to the second,
    ``true``/``false``, nulls empty), without the rows ever passing through Python. ``on_progress``
    gets the fraction done while DuckDB writes; what it raises (or an interrupt of the connection)
    stops the copy, and both files are removed.
    """
    if dialect not in _DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}; expected one of {sorted(_DIALECTS)}")
    delimiter, bom = _DIALECTS[dialect]
    about_path = sidecar_path(path)
    columns = query.columns()
    headers = neutralise_header(name for name, _ in columns)
    if bom and headers:
        # COPY cannot write bytes before the header, so the byte order mark leads the first name.
        headers[0] = bom.decode("utf-8") + headers[0]
    cells = ", ".join(
        f"{_sql_cell(quote_ident(name), type_, about.timezone)} AS {quote_ident(header)}"
        for (name, type_), header in zip(columns, headers, strict=True)
    )
    options = f"FORMAT csv, HEADER, DELIMITER {quote_literal(delimiter)}, QUOTE '\"', ESCAPE '\"'"
    with removing_on_error(path, about_path):
        with spreadsheet_safe(query) as safe_sql:
            rows = run_copy(query, f"SELECT {cells} FROM ({safe_sql})", str(path), options, on_progress)
        about_path.write_text(about.to_json() + "\n", encoding="utf-8")
    return WriteResult(paths=[path, about_path], rows=rows, warnings=[])


def _sql_cell(column: str, duckdb_type: str, timezone: str) -> str:
    """How a column is rendered in CSV; the same text as the Arrow path's :func:`_column`."""
    if duckdb_type in ("TIMESTAMP WITH TIME ZONE",):
        return f"strftime(timezone({quote_literal(timezone)}, {column}), '%Y-%m-%d %H:%M:%S')"
    if duckdb_type.startswith("TIMESTAMP"):
        return f"strftime(CAST({column} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')"
    if duckdb_type.startswith("TIME"):
        return f"strftime(DATE '2000-01-01' + CAST({column} AS TIME), '%H:%M:%S')"
    return column


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def _prepare(batch: pa.RecordBatch, timezone: str) -> pa.RecordBatch:
    """Neutralise text and render the types whose Arrow CSV form is not what spreadsheets expect."""
    batch = local_naive(batch, timezone)
    arrays = [_column(column) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _column(column: pa.Array) -> pa.Array:
    type_ = column.type
    if pa.types.is_dictionary(type_):
        # The Arrow CSV writer has no dictionary support; decode after neutralising the few values.
        column = neutralise_array(column).cast(type_.value_type)
        type_ = column.type
    if pa.types.is_timestamp(type_):
        # Arrow would print fractional seconds; floor (not truncate) so pre-1970 times stay right.
        whole = pc.floor_temporal(column, unit="second").cast(pa.timestamp("s"))
        return whole.cast(pa.string())
    if pa.types.is_time(type_):
        return pc.floor_temporal(column, unit="second").cast(pa.time32("s")).cast(pa.string())
    return neutralise_array(column)
