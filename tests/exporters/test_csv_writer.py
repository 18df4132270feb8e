"""The CSV writer read back with DuckDB: types, injection corpus, Excel dialect, progress and abort."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from exporters._about import About
from exporters._csv import sidecar_path, write_csv
from tests.exporters._writer_samples import CORPUS_SCHEMA, INJECTION, corpus_batch, scan_schema, scans


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
