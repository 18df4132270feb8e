"""CSV and Parquet written by DuckDB itself (``COPY``) from a :class:`Query`: the same cells as the
Arrow writers, neutralised text wherever it comes from, progress, cancellation and a clean connection."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporters import _query
from exporters._csv import copy_csv, sidecar_path, write_csv
from exporters._parquet import copy_parquet, read_about
from exporters._query import Query, spreadsheet_safe
from exporters._safety import DANGEROUS_PREFIXES
from tests.exporters._writer_samples import INJECTION, make_about

DANGEROUS = [k for k, v in INJECTION.items() if k != v]


def _connection() -> duckdb.DuckDBPyConnection:
    """Lake-shaped tables: small zones and users with formula-like names, scans with such barcodes."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    names = list(INJECTION)
    con.execute("CREATE TABLE zones (zone_id INTEGER, code VARCHAR, name VARCHAR)")
    con.executemany("INSERT INTO zones VALUES (?, ?, ?)", [(i, f"Z{i}", n) for i, n in enumerate(names)])
    users = pa.table({"user_id": pa.array([1, 2], pa.int32()), "username": ["=cmd", "anna"]})
    con.register("_users_arrow", users)
    con.execute("CREATE VIEW users AS SELECT * FROM _users_arrow")
    con.execute("""
        CREATE TABLE scans AS
        SELECT i::BIGINT AS scan_id, (i % 10)::INTEGER AS zone_id, (1 + i % 2)::INTEGER AS user_id,
               CASE WHEN i % 3 = 0 THEN '-' || i::VARCHAR ELSE 'B' || i::VARCHAR END AS barcode,
               TIMESTAMPTZ '2026-07-01 10:00:00.987654+00' + to_seconds(i) AS scanned_at,
               (i % 4 = 0) AS deleted, i * 0.5 AS amount, DATE '2026-07-01' AS day
        FROM range(200) t(i)
    """)
    return con


SCANS_SQL = """
    SELECT s.scan_id, s.scanned_at, timezone('Europe/Berlin', s.scanned_at) AS local_at,
           z.code AS zone_code, z.name AS zone_name, u.username, s.barcode, s.deleted, s.amount, s.day,
           '=1+' || z.code AS computed
    FROM scans s LEFT JOIN zones z ON z.zone_id = s.zone_id LEFT JOIN users u ON u.user_id = s.user_id
    WHERE s.scan_id >= ?
"""


def _rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


@pytest.mark.parametrize("small_table_rows", [100_000, 5])  # small tables materialised, or views row by row
def test_copy_csv_writes_the_cells_the_arrow_writer_writes(tmp_path, monkeypatch, small_table_rows):
    monkeypatch.setattr(_query, "SMALL_TABLE_ROWS", small_table_rows)
    con, about = _connection(), make_about()
    query = Query(con, SCANS_SQL, [10])
    copied, streamed = tmp_path / "copied.csv", tmp_path / "streamed.csv"
    result = copy_csv(query, copied, about=about)
    reader = query.reader(50)
    write_csv(streamed, reader.schema, reader, about=about)
    assert result.rows == 190 and result.paths == [copied, sidecar_path(copied)]
    assert _rows(copied) == _rows(streamed)
    rows = _rows(copied)
    assert rows[0][:3] == ["scan_id", "scanned_at", "local_at"]
    assert rows[1][1] == "2026-07-01 12:00:10"  # aware: shown in the About's timezone, to the second
    assert rows[1][2] == "2026-07-01 12:00:10"  # naive local from the query: as it is
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c.startswith(DANGEROUS_PREFIXES)], "unneutralised text"
    assert {"'=1+1", "'-2+3", "'|cmd", "'=cmd"} <= set(cells)
    assert "'-12" in cells  # a barcode from the big table, neutralised row by row
    assert rows[1][-1] == "'=1+Z0"  # text the query computes is neutralised too
    assert rows[1][7:10] == ["false", "5.0", "2026-07-01"]


def test_copy_csv_neutralises_everything_read_through_a_subquery(tmp_path):
    con = _connection()
    query = Query(con, "SELECT name, upper(name) AS shout FROM (SELECT name FROM zones) ORDER BY name", None)
    copy_csv(query, tmp_path / "z.csv", about=make_about())
    values = {cell for row in _rows(tmp_path / "z.csv")[1:] for cell in row}
    assert {"'=1+1", "'@SUM(A1)", "'@SUM(A1)".upper()} <= values
    assert not [v for v in values if v.startswith(DANGEROUS_PREFIXES)]


def test_copy_csv_excel_dialect_and_neutralised_header(tmp_path):
    con = _connection()
    query = Query(con, 'SELECT code AS "=head", name FROM zones ORDER BY zone_id', None)
    path = tmp_path / "x.csv"
    copy_csv(query, path, about=make_about(), dialect="excel")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf'=head;name\n")
    assert _rows(path, ";")[2] == ["Z1", "'+A1"]


def test_copy_leaves_the_connection_as_it_was(tmp_path):
    con = _connection()
    copy_csv(Query(con, SCANS_SQL, [0]), tmp_path / "x.csv", about=make_about())
    assert con.execute("SELECT current_setting('search_path')").fetchone()[0] in ("", "main")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_spreadsheet'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = '_spreadsheet'").fetchone()[0] == 0
    assert con.execute("SELECT name FROM zones WHERE zone_id = 0").fetchone()[0] == "=1+1"  # the lake untouched


def test_spreadsheet_safe_refuses_nothing_and_neutralises_literals():
    con = _connection()
    with spreadsheet_safe(Query(con, "SELECT '=2+2' AS x, 5 AS n", None)) as sql:
        assert con.execute(sql).fetchall() == [("'=2+2", 5)]


def test_copy_parquet_keeps_raw_text_types_and_the_about(tmp_path):
    con, about = _connection(), make_about()
    path = tmp_path / "x.parquet"
    result = copy_parquet(Query(con, SCANS_SQL, [10]), path, about=about)
    table = pq.read_table(path)
    assert result.rows == table.num_rows == 190
    assert table.schema.field("scan_id").type == pa.int64()
    assert table.schema.field("deleted").type == pa.bool_()
    assert table.schema.field("scanned_at").type == pa.timestamp("us", tz="UTC")
    assert "=1+1" in table.column("zone_name").to_pylist()  # Parquet is data, never neutralised
    assert read_about(path) == about.to_json()


def test_copy_reports_progress_and_finishes_at_one(tmp_path):
    con = duckdb.connect()
    seen: list[float] = []
    query = Query(con, "SELECT i, repeat('x', 50) AS s FROM range(20000000) t(i)", None)
    copy_parquet(query, tmp_path / "x.parquet", about=make_about(), on_progress=seen.append)
    assert seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    assert any(0.0 < f < 1.0 for f in seen), seen  # DuckDB's own progress came through
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)


def test_a_raising_progress_callback_stops_the_copy_and_removes_the_files(tmp_path):
    con = duckdb.connect()

    def cancel(fraction: float) -> None:
        raise KeyboardInterrupt  # e.g. Cancelled from ctx.progress; even a BaseException propagates

    path = tmp_path / "x.csv"
    query = Query(con, "SELECT i, repeat('x', 50) AS s FROM range(50000000) t(i)", None)
    with pytest.raises(KeyboardInterrupt):
        copy_csv(query, path, about=make_about(), on_progress=cancel)
    assert not path.exists() and not sidecar_path(path).exists()
    assert con.execute("SELECT 42").fetchone() == (42,)  # the connection is usable again


def test_interrupting_the_connection_cancels_a_copy(tmp_path):
    con = duckdb.connect()
    started = threading.Event()

    def progress(fraction: float) -> None:
        started.set()

    def interrupt() -> None:
        started.wait(60)
        deadline = time.monotonic() + 60
        while con.query_progress() < 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        con.interrupt()  # what the runner's watcher does on a cancel request

    path = tmp_path / "x.parquet"
    threading.Thread(target=interrupt, daemon=True).start()
    query = Query(con, "SELECT i, repeat('x', 50) AS s FROM range(200000000) t(i)", None)
    with pytest.raises(duckdb.InterruptException):
        copy_parquet(query, path, about=make_about(), on_progress=progress)
    assert not path.exists()


def test_copy_csv_timestamps_are_floored_to_the_second(tmp_path):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql = "SELECT TIMESTAMP '1960-01-01 00:00:00.5' AS before_epoch, TIMESTAMP '2026-01-01 23:59:59.999' AS late"
    copy_csv(Query(con, sql, None), tmp_path / "t.csv", about=make_about())
    assert _rows(tmp_path / "t.csv")[1] == ["1960-01-01 00:00:00", "2026-01-01 23:59:59"]
