"""A DuckDB query handed to the writers, so that DuckDB itself can write CSV and Parquet (``COPY``).

Streaming Arrow batches through Python cost 1.6-2.6x DuckDB's own ``COPY`` of the same query; the
writers now run ``COPY (query) TO file`` and keep what the job needs around it:

* **progress** comes from ``query_progress()``, polled from the calling thread while the copy runs in
  a helper thread;
* **cancellation**: the runner interrupts the connection (its watcher thread), and a progress callback
  that raises (``ctx.progress`` after a cancel) interrupts it too; either way the copy ends at once with
  ``duckdb.InterruptException`` or the callback's exception, and the writer removes the partial file.

Formula-injection neutralisation for spreadsheet formats happens in SQL (:func:`spreadsheet_safe`):
text from small tables (zones, sessions, users) is neutralised once per table, not once per row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from exporters._safety import sql_neutralise

ProgressCallback = Callable[[float], None]
"""Called with the fraction done (0-1) while a copy runs; raising from it aborts the copy."""

# A table with at most this many rows is neutralised once into a temporary table before the join;
# a larger one is neutralised row by row as it streams (its text is per row anyway, e.g. barcodes).
SMALL_TABLE_ROWS = 100_000
_POLL_SECONDS = 0.2
_SCHEMA = "_spreadsheet"


@dataclass(frozen=True)
class Query:
    """A SELECT over a job's DuckDB connection (its lake views and ``users``) with its parameters."""

    con: duckdb.DuckDBPyConnection
    sql: str
    params: Sequence[Any] | dict[str, Any] | None = field(default=None)

    def reader(self, batch_rows: int) -> pa.RecordBatchReader:
        """The result as a stream of Arrow record batches (for writers DuckDB cannot do itself)."""
        return self.con.sql(self.sql, params=self.params).to_arrow_reader(batch_rows)

    def columns(self) -> list[tuple[str, str]]:
        """``(name, DuckDB type)`` of each result column, without running the query."""
        rel = self.con.sql(f"SELECT * FROM ({self.sql}) LIMIT 0", params=self.params)
        return [(name, str(type_)) for name, type_ in zip(rel.columns, rel.types, strict=True)]


def run_copy(query: Query, select_sql: str, target: str, options: str,
             on_progress: ProgressCallback | None) -> int:
    """Run ``COPY (select_sql) TO target (options)`` with the query's parameters; return rows written.

    ``on_progress`` is polled with DuckDB's progress while the copy runs; whatever it raises interrupts
    the copy and propagates. A cancel (``con.interrupt()`` from elsewhere) surfaces as
    ``duckdb.InterruptException``.
    """
    con = query.con
    outcome: dict[str, Any] = {}
    sql = f"COPY ({select_sql}) TO {quote_literal(target)} ({options})"

    def copy() -> None:
        try:
            outcome["rows"] = con.execute(sql, query.params).fetchall()[0][0]
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    # query_progress() answers -1 unless the progress bar is on; keep it from printing to the console.
    before = con.execute("SELECT current_setting('enable_progress_bar'), "
                         "current_setting('enable_progress_bar_print')").fetchall()[0]
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    worker = threading.Thread(target=copy, name="duckdb-copy", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(_POLL_SECONDS)
            if on_progress is not None and worker.is_alive():
                percent = con.query_progress()
                on_progress(max(0.0, min(1.0, percent / 100)) if percent >= 0 else 0.0)
    except BaseException:
        con.interrupt()
        worker.join()
        raise
    finally:
        con.execute(f"SET enable_progress_bar = {bool(before[0])}; "
                    f"SET enable_progress_bar_print = {bool(before[1])}")
    if "error" in outcome:
        raise outcome["error"]
    if on_progress is not None:
        on_progress(1.0)
    return int(outcome["rows"])


@contextmanager
def spreadsheet_safe(query: Query) -> Iterator[str]:
    """Yield a SELECT giving ``query``'s rows with every text cell neutralised against formula injection.

    The tables the query reads are shadowed (through the connection's ``search_path``) by versions
    whose text columns are neutralised: a small table once, into a temporary table; a large one row by
    row as it streams. Output columns that merely pass such a column through are then safe as they
    are; any text the query computes itself (a literal, a function, anything read through a subquery
    or CTE) is neutralised row by row on the way out. The shadows are dropped afterwards.
    """
    con = query.con
    columns = query.columns()
    tables, passthrough = _analyse(con, query.sql)
    created: list[str] = []
    try:
        if tables:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}")
            for table in tables:
                created.append(_shadow(con, table))
            con.execute(f"SET search_path = '{_SCHEMA},main'")
        outer = []
        for i, (name, type_) in enumerate(columns):
            ident = quote_ident(name)
            neutral = is_text(type_) and i not in passthrough
            outer.append(f"{sql_neutralise(ident)} AS {ident}" if neutral else ident)
        yield f"SELECT {', '.join(outer)} FROM ({query.sql})"
    finally:
        con.execute("RESET search_path")
        for name in reversed(created):
            con.execute(f"DROP {name}")


def _analyse(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], set[int]]:
    """The base tables a plain SELECT reads and the positions of output columns that are bare column
    references. Anything else (CTEs, subqueries, set operations, a parse failure) gives no tables and
    no pass-through columns, so every text column is neutralised row by row: safe, if slower."""
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
        node = tree["statements"][0]["node"]
    except (duckdb.Error, KeyError, IndexError, TypeError, ValueError):
        return [], set()
    if tree.get("error") or node.get("type") != "SELECT_NODE" or node.get("cte_map", {}).get("map"):
        return [], set()
    tables: list[str] = []
    if not _base_tables(node.get("from_table"), tables):
        return [], set()
    passthrough = {i for i, e in enumerate(node.get("select_list", [])) if e.get("class") == "COLUMN_REF"}
    return sorted(set(tables)), passthrough


def _base_tables(ref: dict[str, Any] | None, out: list[str]) -> bool:
    if ref is None:
        return True
    if ref.get("type") == "BASE_TABLE" and not ref.get("schema_name") and not ref.get("catalog_name"):
        out.append(ref["table_name"])
        return True
    if ref.get("type") == "JOIN":
        return _base_tables(ref.get("left"), out) and _base_tables(ref.get("right"), out)
    return False  # a subquery, table function or qualified name: not shadowed


def _shadow(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """Create ``_spreadsheet.<table>`` with neutralised text; return what to DROP afterwards."""
    source = f"main.{quote_ident(table)}"
    rel = con.sql(f"SELECT * FROM {source} LIMIT 0")
    select = ", ".join(
        f"{sql_neutralise(quote_ident(n))} AS {quote_ident(n)}" if is_text(str(t)) else quote_ident(n)
        for n, t in zip(rel.columns, rel.types, strict=True)
    )
    target = f"{_SCHEMA}.{quote_ident(table)}"
    rows = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT {SMALL_TABLE_ROWS + 1})").fetchall()[0][0]
    if rows <= SMALL_TABLE_ROWS:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT {select} FROM {source}")
        return f"TABLE {target}"
    con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT {select} FROM {source}")
    return f"VIEW {target}"


def is_text(duckdb_type: str) -> bool:
    """True for DuckDB types that a spreadsheet shows as text (VARCHAR, ENUM)."""
    return duckdb_type.startswith(("VARCHAR", "ENUM"))


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


