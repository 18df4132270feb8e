"""Parquet writer: typed, zstd-compressed, with the About JSON in the schema metadata.

No formula neutralisation and no timezone conversion: Parquet is typed data for programs, not a
spreadsheet, so text stays exactly as stored and aware timestamps keep their zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exporters._about import About
from exporters._query import ProgressCallback, Query, quote_literal, run_copy
from exporters._result import RowCallback, WriteResult, removing_on_error

ABOUT_KEY = b"exporthub.about"
# pyarrow writes at least one row group per write call; small batches (DuckDB hands out ~2k-row
# vectors through some APIs) would make thousands of tiny row groups, slow to read. Buffer up to this.
_ROW_GROUP_ROWS = 256 * 1024


def write_parquet(
    path: Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    about: About,
    on_rows: RowCallback | None = None,
) -> WriteResult:
    """Write ``batches`` (all of ``schema``) to ``path``; read the About back with :func:`read_about`.

    ``on_rows(rows_so_far)`` runs after each batch; what it raises propagates and the file is removed.
    A batch whose types differ from ``schema`` raises ``ValueError``/``pyarrow.ArrowInvalid``.
    """
    metadata = dict(schema.metadata or {})
    metadata[ABOUT_KEY] = about.to_json().encode("utf-8")
    schema = schema.with_metadata(metadata)
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with removing_on_error(path), pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= _ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, pending_rows = [], 0
            rows += batch.num_rows
            if on_rows is not None:
                on_rows(rows)
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    return WriteResult(paths=[path], rows=rows, warnings=[])


def copy_parquet(
    query: Query, path: Path, *, about: About, on_progress: ProgressCallback | None = None
) -> WriteResult:
    """Have DuckDB write ``query``'s rows to ``path`` (``COPY``): the file :func:`write_parquet` writes
    (zstd, About in the metadata, row groups of ~256k rows), without the rows passing through Python.

    ``on_progress`` gets the fraction done; what it raises (or an interrupt of the connection) stops
    the copy and the file is removed.
    """
    metadata = f"{{{quote_literal(ABOUT_KEY.decode())}: {quote_literal(about.to_json())}}}"
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {_ROW_GROUP_ROWS}, KV_METADATA {metadata}"
    with removing_on_error(path):
        rows = run_copy(query, query.sql, str(path), options, on_progress)
    return WriteResult(paths=[path], rows=rows, warnings=[])


def read_about(path: Path) -> str | None:
    """The About JSON stored in a Parquet file written by :func:`write_parquet`, or None."""
    metadata = pq.read_schema(str(path)).metadata or {}
    raw = metadata.get(ABOUT_KEY)
    return raw.decode("utf-8") if raw is not None else None
