"""The Parquet writer read back with DuckDB and pyarrow: typed, zstd, one row group, About, no neutralising."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from exporters._about import About
from exporters._parquet import ABOUT_KEY, read_about, write_parquet
from exporters._result import WriteResult
from tests.exporters._writer_samples import CORPUS_SCHEMA, INJECTION, corpus_batch, scan_schema, scans


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
