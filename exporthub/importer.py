"""Import csv or parquet files into a project's lake table, all or nothing.

The file contract (the README documents the same, table by table) is :data:`CONTRACT`:

* csv files are UTF-8 with a header row; parquet files have the same column names;
* times are ISO 8601 with an offset (``2026-11-02T08:15:00+01:00`` or ``...Z``); parquet may use
  timestamps with a timezone instead; a time without an offset is refused, since it is ambiguous;
* booleans are ``true`` or ``false``; an empty cell is null; whole numbers have no decimal point;
* ``user`` is a username; a file may give ``user_id`` (the hub's numeric id) instead;
* ``scan_id`` may be left out or empty: such scans get ids after the highest one in the project;
  ``deleted`` may be left out (then false).

What an import guarantees:

* **Validated first, written once.** Every file is parsed and checked (columns, types, allowed
  values, ids that refer to existing zones, sessions and users, unique ids) before anything is
  written. A refusal (:class:`ImportRefused`) names the file, the row (1 = the first row after the
  header) and the column of each problem, and nothing changes.
* **Atomic.** All files of one import become one Iceberg commit (:mod:`exporthub.lake.commit`);
  ``replace`` (zones and costs only) is an overwrite of the whole table in that commit.
* **Concurrent imports** into one project are settled by the catalog's optimistic commit: the checks
  run against one snapshot, and the commit only lands if the table is still at that snapshot. When
  another import committed first, the whole import is checked again against the new snapshot (ids,
  duplicates and references depend on it) and retried a few times, else refused; never a lost or
  doubled row.
* **Scan ids follow file order**: id order = the order rows are stored = the order of the files and
  their rows. A missing ``scan_id`` is the previous row's id + 1 (the first continues after the
  project's highest); a given one must be above the previous row's id.
* **Duplicates.** A row whose id is in the lake already with the same values, or a scan with the same
  zone, session, user, barcode, quantity, time and device as one in the lake (or earlier in the same
  import), is a duplicate. By default duplicates refuse the import; with ``skip_duplicates`` they are
  left out and counted in the report. A row whose id exists with *other* values is always refused:
  imports append, they never edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import select

from exporthub import audit, lake
from exporthub.access import get_project
from exporthub.accounts import Actor, actor_name, authorize
from exporthub.db import Database
from exporthub.errors import ExporthubError, ImportRefused, InvalidTransition, InvalidValue, LakeConflict
from exporthub.import_reading import ImportFile, Problem, read_raw
from exporthub.lake.catalog import ensure_table
from exporthub.lake.commit import commit, live_data_files, with_retries, write_data_files
from exporthub.models import User
from exporthub.settings import Settings
from exporthub.states import ProjectStatus

__all__ = ["CONTRACT", "REPLACEABLE", "ImportColumn", "ImportFile", "ImportRefused", "Kind", "Problem",
           "file_columns", "import_files"]

MAX_PROBLEMS = 50
_PER_CHECK = 10


class Kind(StrEnum):
    INT32 = "int32"
    INT64 = "int64"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DATE = "date"
    STRING = "string"


@dataclass(frozen=True)
class ImportColumn:
    """One column of an import file. ``name`` is the lake column; ``user_id`` is given as ``user``."""

    name: str
    kind: Kind
    nullable: bool = False
    optional: bool = False  # the file may leave the column out
    choices: tuple[str, ...] = ()
    minimum: int | None = None  # the smallest allowed value of a whole-number column


SESSION_KINDS = ("count", "recount", "audit")
COST_CATEGORIES = ("labor", "travel", "equipment", "other")

C = ImportColumn
CONTRACT: dict[str, tuple[ImportColumn, ...]] = {
    "zones": (
        C("zone_id", Kind.INT32),
        C("code", Kind.STRING),
        C("name", Kind.STRING),
        C("area", Kind.STRING, nullable=True),
        C("parent_zone_id", Kind.INT32, nullable=True),
        C("expected_items", Kind.INT32, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "zone_sessions": (
        C("session_id", Kind.INT64),
        C("zone_id", Kind.INT32),
        C("user_id", Kind.INT32),
        C("kind", Kind.STRING, choices=SESSION_KINDS),
        C("started_at", Kind.TIMESTAMP),
        C("ended_at", Kind.TIMESTAMP, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "scans": (
        C("scan_id", Kind.INT64, nullable=True, optional=True),
        C("zone_id", Kind.INT32),
        C("session_id", Kind.INT64),
        C("user_id", Kind.INT32),
        C("barcode", Kind.STRING),
        C("quantity", Kind.INT32, minimum=1),
        C("scanned_at", Kind.TIMESTAMP),
        C("device", Kind.STRING, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "costs": (
        C("cost_id", Kind.INT64),
        C("user_id", Kind.INT32, nullable=True),
        C("zone_id", Kind.INT32, nullable=True),
        C("date", Kind.DATE),
        C("category", Kind.STRING, choices=COST_CATEGORIES),
        C("hours", Kind.FLOAT, nullable=True),
        C("rate", Kind.FLOAT, nullable=True),
        C("amount", Kind.FLOAT),
    ),
}
del C
REPLACEABLE: frozenset[str] = frozenset({"zones", "costs"})
ID_COLUMN: dict[str, str] = {
    "zones": "zone_id",
    "zone_sessions": "session_id",
    "scans": "scan_id",
    "costs": "cost_id",
}
# A scan is "the same scan" when all of these match (scan ids differ between systems).
SCAN_KEY = ("zone_id", "session_id", "user_id", "barcode", "quantity", "scanned_at", "device")

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


def file_columns(table: str) -> list[str]:
    """The column names an import file of ``table`` uses (``user`` standing for ``user_id``)."""
    return ["user" if c.name == "user_id" else c.name for c in CONTRACT[table]]


# ---------------------------------------------------------------------- results and refusals


@dataclass(frozen=True)
class ImportReport:
    project: str
    table: str
    files: tuple[str, ...]
    rows_read: int
    rows_imported: int
    duplicates_skipped: int
    replaced: bool
    files_replaced: int = 0
    snapshot_id: int | None = None  # the Iceberg snapshot the import committed (None: nothing to write)
    first_id: int | None = None  # of the imported rows (for scans: the scan id range)
    last_id: int | None = None
    rows_per_file: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"{self.rows_imported:,} of {self.rows_read:,} rows imported into {self.project}/{self.table}"
        if self.duplicates_skipped:
            text += f", {self.duplicates_skipped:,} duplicates skipped"
        if self.replaced:
            text += f", replacing the previous {self.table} ({self.files_replaced} data files replaced)"
        if self.first_id is not None:
            text += f"; ids {self.first_id}..{self.last_id}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "table": self.table,
            "files": list(self.files),
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "duplicates_skipped": self.duplicates_skipped,
            "replaced": self.replaced,
            "files_replaced": self.files_replaced,
            "snapshot_id": self.snapshot_id,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "rows_per_file": dict(self.rows_per_file),
        }


# ---------------------------------------------------------------------- entry point


def import_files(
    db: Database,
    settings: Settings,
    actor: Actor,
    project_slug: str,
    table: str,
    files: Sequence[ImportFile],
    *,
    replace: bool = False,
    skip_duplicates: bool = False,
) -> ImportReport:
    """Validate ``files`` and append them to ``table`` of the project (or replace it whole).

    Raises :class:`PermissionDenied` (not a global admin), :class:`NotFound`, :class:`InvalidValue`
    (unknown table, replace of a table that cannot be replaced), :class:`InvalidTransition` (published
    project), :class:`ImportRefused` or :class:`exporthub.lake.commit.LakeConflict` (other imports kept
    committing to the table while this one was checked). Writes one audit event.
    """
    try:
        with db.read() as s:
            authorize(s, actor)
            project = get_project(s, project_slug)
            if project.status == ProjectStatus.PUBLISHED:
                raise InvalidTransition(f"Project {project_slug} is published; its data is final")
            users = [(u.id, u.username) for u in s.scalars(select(User))]
        if table not in CONTRACT:
            raise InvalidValue(f"Unknown table {table!r}; the tables are: {', '.join(CONTRACT)}")
        if replace and table not in REPLACEABLE:
            raise InvalidValue(
                f"Only {' and '.join(sorted(REPLACEABLE))} can be replaced whole; "
                f"{table} can only be appended to"
            )
        if not files:
            raise InvalidValue("No files to import")
        # Each attempt reads the files and checks them against the snapshot it commits on.
        report = with_retries(lambda _attempt: _Import(
            settings, project_slug, table, files, users, replace=replace, skip_duplicates=skip_duplicates
        ).run())
    except ExporthubError as exc:
        audit.record_refusal(db, exc, action="import", actor=actor_name(actor), project=project_slug, target=table)
        raise
    with db.write() as s:
        audit.record(
            s,
            action="import",
            actor=actor_name(actor),
            project=project_slug,
            target=table,
            detail=f"{', '.join(report.files)}: {report.summary()}",
        )
    return report


# ---------------------------------------------------------------------- one import


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Import:
    """The stages of one import over one DuckDB connection: header, types, users, ids, references."""

    def __init__(
        self,
        settings: Settings,
        slug: str,
        table: str,
        files: Sequence[ImportFile],
        users: list[tuple[int, str]],
        *,
        replace: bool,
        skip_duplicates: bool,
    ) -> None:
        self.settings, self.slug, self.table, self.files = settings, slug, table, list(files)
        self.users, self.replace, self.skip_duplicates = users, replace, skip_duplicates
        self.columns = CONTRACT[table]
        self.id_col = ID_COLUMN[table]
        self.problems: list[Problem] = []
        self.con: duckdb.DuckDBPyConnection = lake.connect(settings)

    # -------------------------------------------------------------- driver
    def run(self) -> ImportReport:
        try:
            snap = lake.snapshot(self.settings, self.slug)
            snap.register(self.con)
            self.con.register(
                "known_users",
                pa.table(
                    {
                        "user_id": pa.array([u[0] for u in self.users], pa.int32()),
                        "username": pa.array([u[1] for u in self.users], pa.string()),
                    }
                ),
            )
            self._load()
            # One pass reports every problem it can: bad cells, unknown users and broken references
            # together. Ids and duplicates are compared only once every cell parsed, since a bad cell
            # reads as empty there and would look like a duplicate of another.
            cells_ok = not self.problems
            self._check_users()
            if cells_ok:
                self._check_ids()
            self._check_references()
            self._refuse_if_problems()
            return self._write(snap)
        finally:
            self.con.close()

    def _refuse_if_problems(self) -> None:
        if self.problems:
            order = {f.name: i for i, f in enumerate(self.files)}
            self.problems.sort(key=lambda p: (order.get(p.file or "", -1), p.row or 0))
            raise ImportRefused(self.problems[:MAX_PROBLEMS])

    def _add(self, file_index: int | None, row: int | None, column: str | None, message: str) -> None:
        name = self.files[file_index].name if file_index is not None else None
        self.problems.append(Problem(name, row, column, message))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    # -------------------------------------------------------------- stage 1: header and types
    def _load(self) -> None:
        selects: list[str] = []
        unreadable = False
        for index, f in enumerate(self.files):
            try:
                raw = read_raw(f, max_bytes=self.settings.import_max_file_bytes)
            except ImportRefused as refused:  # the other files are still checked
                self.problems.extend(refused.problems)
                unreadable = True
                continue
            raw = raw.append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64()))
            mapping = self._check_header(index, raw.column_names)
            if mapping is None:
                unreadable = True
                continue
            name = f"raw_{index}"
            self.con.register(name, raw)
            selects.append(self._typed_select(index, name, raw.schema, mapping))
        if unreadable:  # the rows of a file that cannot be read, or with a wrong header, are unknown
            self._refuse_if_problems()
        self.con.execute("CREATE TEMP TABLE incoming AS " + " UNION ALL BY NAME ".join(selects))

    def _check_header(self, index: int, names: list[str]) -> dict[str, str] | None:
        """Lake column -> file column, or None (with problems recorded) when the header is wrong."""
        present = [n for n in names if n != "__row"]
        duplicated = sorted({n for n in present if present.count(n) > 1})
        expected = file_columns(self.table)
        allowed = set(expected) | {"user_id"} if "user" in expected else set(expected)
        unknown = [n for n in present if n not in allowed]
        before = len(self.problems)
        for n in duplicated:
            self._add(index, None, n, "the column appears twice")
        for n in unknown:
            self._add(index, None, n, f"unknown column; the {self.table} columns are: {', '.join(expected)}")
        mapping: dict[str, str] = {}
        for col in self.columns:
            if col.name == "user_id":
                given = [n for n in ("user", "user_id") if n in present]
                if len(given) == 2:
                    self._add(index, None, "user", "give either user (a username) or user_id, not both")
                elif not given:
                    self._add(index, None, "user", "required column is missing (a username; or give user_id)")
                else:
                    mapping["user_id" if given[0] == "user_id" else "__username"] = given[0]
            elif col.name in present:
                mapping[col.name] = col.name
            elif not col.optional:
                self._add(index, None, col.name, "required column is missing")
        return mapping if len(self.problems) == before else None

    def _typed_select(self, index: int, raw: str, schema: pa.Schema, mapping: dict[str, str]) -> str:
        exprs = [f"{index} AS __file", "__row"]
        for col in self.columns:
            if col.name == "user_id" and "__username" in mapping:
                text_col = ImportColumn("__username", Kind.STRING, nullable=col.nullable)
                value = self._parse(index, raw, text_col, mapping["__username"], schema)
                exprs += [f"{value} AS __username", "CAST(NULL AS INTEGER) AS user_id"]
                continue
            if col.name not in mapping:  # an optional column left out
                default = "false" if col.kind is Kind.BOOL else f"CAST(NULL AS {_sql_type(col.kind)})"
                exprs.append(f"{default} AS {_q(col.name)}")
                continue
            exprs.append(f"{self._parse(index, raw, col, mapping[col.name], schema)} AS {_q(col.name)}")
        if "__username" not in mapping:
            exprs.append("CAST(NULL AS VARCHAR) AS __username")
        return f"SELECT {', '.join(exprs)} FROM {raw}"

    def _parse(self, index: int, raw: str, col: ImportColumn, file_col: str, schema: pa.Schema) -> str:
        """Record the column's bad cells as problems; return the SQL that converts it."""
        value, valid = _conversion(col, _q(file_col), schema.field(file_col).type)
        if col.minimum is not None:
            valid = f"({valid}) AND ({value}) >= {col.minimum}"
        check = "true" if col.nullable else "false"
        blank = _blank(_q(file_col), schema.field(file_col).type)
        bad = self._rows(
            f"SELECT __row, CAST({_q(file_col)} AS VARCHAR) FROM {raw} "
            f"WHERE NOT coalesce(CASE WHEN ({blank}) THEN {check} "
            f"ELSE {valid} END, false) ORDER BY __row LIMIT {_PER_CHECK}"
        )
        shown = "user" if col.name == "__username" else file_col
        for row, text in bad:
            if text is None or not str(text).strip():
                self._add(index, row, shown, "a value is required (the cell is empty)")
            elif col.choices:
                self._add(index, row, shown, f"expected one of {', '.join(col.choices)}, got {text!r}")
            elif col.minimum is not None:
                self._add(index, row, shown, f"expected a whole number of at least {col.minimum}, got {text!r}")
            else:
                self._add(index, row, shown, f"expected {_EXPECT[col.kind]}, got {text!r}")
        return value

    # -------------------------------------------------------------- stage 2: users
    def _check_users(self) -> None:
        if not any(c.name == "user_id" for c in self.columns):
            return
        self.con.execute(
            "UPDATE incoming SET user_id = k.user_id FROM known_users k "
            "WHERE incoming.__username = k.username"
        )
        for f, row, name in self._rows(
            "SELECT __file, __row, __username FROM incoming WHERE __username IS NOT NULL AND user_id IS NULL "
            f"ORDER BY __file, __row LIMIT {_PER_CHECK}"
        ):
            self._add(f, row, "user", f"unknown user {name!r}")
        for f, row, uid in self._rows(
            "SELECT __file, __row, user_id FROM incoming WHERE __username IS NULL AND user_id IS NOT NULL "
            f"AND user_id NOT IN (SELECT user_id FROM known_users) ORDER BY __file, __row LIMIT {_PER_CHECK}"
        ):
            self._add(f, row, "user_id", f"unknown user id {uid}")

    # -------------------------------------------------------------- stage 3: ids and duplicates
    def _same(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{_q(c.name)} IS NOT DISTINCT FROM {b}.{_q(c.name)}" for c in self.columns)

    def _check_ids(self) -> None:
        idc, table = _q(self.id_col), self.table
        self.con.execute("ALTER TABLE incoming ADD COLUMN __dup BOOLEAN DEFAULT false")
        # The same id twice in this import: a duplicate when the rows are equal, else a conflict.
        for f, row, value, f0, row0 in self._rows(
            f"SELECT b.__file, b.__row, b.{idc}, a.__file, a.__row FROM incoming a JOIN incoming b "
            f"ON a.{idc} = b.{idc} AND (a.__file < b.__file OR (a.__file = b.__file AND a.__row < b.__row)) "
            f"WHERE NOT ({self._same('a', 'b')}) ORDER BY 1, 2 LIMIT {_PER_CHECK}"
        ):
            self._add(
                f,
                row,
                self.id_col,
                f"{self.id_col} {value} is also in {self.files[f0].name} row {row0} with other values",
            )
        self.con.execute(
            f"UPDATE incoming SET __dup = true FROM (SELECT __file AS f, __row AS r, row_number() OVER "
            f"(PARTITION BY {idc} ORDER BY __file, __row) AS n FROM incoming WHERE {idc} IS NOT NULL) d "
            f"WHERE d.n > 1 AND incoming.__file = d.f AND incoming.__row = d.r"
        )
        if not self.replace:
            for f, row, value in self._rows(
                f"SELECT i.__file, i.__row, i.{idc} FROM incoming i JOIN {table} t ON t.{idc} = i.{idc} "
                f"WHERE NOT ({self._same('i', 't')}) ORDER BY 1, 2 LIMIT {_PER_CHECK}"
            ):
                hint = " (use --replace to replace the whole table)" if table in REPLACEABLE else ""
                self._add(
                    f,
                    row,
                    self.id_col,
                    f"{self.id_col} {value} exists already with other values; "
                    f"imports never change existing rows{hint}",
                )
            self.con.execute(
                f"UPDATE incoming SET __dup = true FROM {table} t WHERE t.{idc} = incoming.{idc}"
            )
        if table == "scans":
            self._check_scans()
        if table == "zones":
            self._check_zone_codes()
        count = self._rows("SELECT count(*) FROM incoming WHERE __dup")[0][0]
        if count and not self.skip_duplicates:
            f, row = self._rows("SELECT __file, __row FROM incoming WHERE __dup ORDER BY 1, 2 LIMIT 1")[0]
            self._add(
                f,
                row,
                None,
                f"{count:,} duplicate rows (in the lake already, or repeated in this import); "
                "this is the first. Import with skip duplicates (--skip-duplicates) to leave "
                "them out",
            )

    def _check_scans(self) -> None:
        key = " AND ".join(f"incoming.{c} IS NOT DISTINCT FROM b.{c}" for c in SCAN_KEY)
        # The same scan in the lake already (whatever its id), or earlier in this import.
        self.con.execute(f"UPDATE incoming SET __dup = true FROM scans b WHERE {key}")
        self.con.execute(
            f"UPDATE incoming SET __dup = true FROM (SELECT __file AS f, __row AS r, row_number() OVER "
            f"(PARTITION BY {', '.join(SCAN_KEY)} ORDER BY __file, __row) AS n FROM incoming) d "
            f"WHERE d.n > 1 AND incoming.__file = d.f AND incoming.__row = d.r"
        )
        self._assign_scan_ids()

    def _assign_scan_ids(self) -> None:
        """Scan ids in file order: a missing id is the previous row's + 1, a given one must be above it.

        Rows are taken in the order they are stored (file order, then row order; duplicates left out),
        starting after the project's highest id. ``__scan_id`` holds the id each row gets.
        """
        top = self._rows("SELECT coalesce(max(scan_id), 0) FROM scans")[0][0]
        self.con.execute("ALTER TABLE incoming ADD COLUMN __scan_id BIGINT")
        self.con.execute(
            "CREATE TEMP TABLE scan_ids AS "
            "WITH o AS (SELECT __file, __row, scan_id, row_number() OVER (ORDER BY __file, __row) AS pos "
            "           FROM incoming WHERE NOT __dup), "
            # A group starts at each given id; the rows before the first one continue after the lake.
            "g AS (SELECT *, count(scan_id) OVER (ORDER BY pos ROWS UNBOUNDED PRECEDING) AS grp FROM o), "
            "h AS (SELECT *, coalesce(first_value(scan_id) OVER (PARTITION BY grp ORDER BY pos), ?) AS base, "
            "      row_number() OVER (PARTITION BY grp ORDER BY pos) - CASE WHEN grp > 0 THEN 1 ELSE 0 END AS k "
            "      FROM g) "
            "SELECT __file, __row, pos, scan_id AS given, base + k AS assigned, "
            "       coalesce(lag(base + k) OVER (ORDER BY pos), ?) AS previous FROM h",
            [top, top],
        )
        self.con.execute(
            "UPDATE incoming SET __scan_id = i.assigned FROM scan_ids i "
            "WHERE incoming.__file = i.__file AND incoming.__row = i.__row"
        )
        for f, row, value, previous in self._rows(
            "SELECT __file, __row, given, previous FROM scan_ids WHERE given IS NOT NULL AND given <= previous "
            f"ORDER BY pos LIMIT {_PER_CHECK}"
        ):
            before = (f"the project's highest scan id ({top})" if previous == top
                      else f"the scan id of the row before it ({previous})")
            self._add(
                f,
                row,
                "scan_id",
                f"scan_id {value} is not above {before}; scan ids follow the order of the files and "
                "their rows, so that 'only new since last export' stays right. Leave scan_id empty to "
                "have ids assigned, or give the files in id order",
            )

    def _check_zone_codes(self) -> None:
        for f, row, code, other in self._rows(
            "SELECT b.__file, b.__row, b.code, a.zone_id FROM incoming a JOIN incoming b ON a.code = b.code "
            "AND a.zone_id <> b.zone_id "
            "AND (a.__file < b.__file OR (a.__file = b.__file AND a.__row < b.__row)) "
            f"ORDER BY 1, 2 LIMIT {_PER_CHECK}"
        ):
            self._add(f, row, "code", f"code {code!r} is also given to zone {other} in this import")
        if not self.replace:
            for f, row, code, other in self._rows(
                "SELECT i.__file, i.__row, i.code, z.zone_id FROM incoming i JOIN zones z ON z.code = i.code "
                f"AND z.zone_id <> i.zone_id ORDER BY 1, 2 LIMIT {_PER_CHECK}"
            ):
                self._add(f, row, "code", f"code {code!r} belongs to zone {other} already")

    # -------------------------------------------------------------- stage 4: references
    def _missing(self, column: str, target: str, label: str) -> None:
        for f, row, value in self._rows(
            f"SELECT __file, __row, {column} FROM incoming WHERE {column} IS NOT NULL AND {column} NOT IN "
            f"(SELECT {column if column != 'parent_zone_id' else 'zone_id'} FROM {target}) "
            f"ORDER BY 1, 2 LIMIT {_PER_CHECK}"
        ):
            self._add(f, row, column, f"unknown {label} {value}")

    def _check_references(self) -> None:
        t = self.table
        if t == "zones":
            known = (
                "incoming"
                if self.replace
                else "(SELECT zone_id FROM zones UNION ALL SELECT zone_id FROM incoming) k"
            )
            self._missing("parent_zone_id", known, "parent zone")
            for f, row, _ in self._rows(
                f"SELECT __file, __row, zone_id FROM incoming WHERE parent_zone_id = zone_id "
                f"ORDER BY 1, 2 LIMIT {_PER_CHECK}"
            ):
                self._add(f, row, "parent_zone_id", "a zone cannot be its own parent")
            if self.replace:
                self._check_zones_still_used()
        if t in ("zone_sessions", "scans", "costs"):
            self._missing("zone_id", "zones", "zone")
        if t == "scans":
            self._missing("session_id", "zone_sessions", "session")
            for f, row, sid, zone, szone in self._rows(
                "SELECT i.__file, i.__row, i.session_id, i.zone_id, s.zone_id "
                "FROM incoming i JOIN zone_sessions s ON s.session_id = i.session_id "
                "WHERE s.zone_id <> i.zone_id AND i.zone_id IN (SELECT zone_id FROM zones) "
                f"ORDER BY 1, 2 LIMIT {_PER_CHECK}"
            ):
                self._add(f, row, "zone_id", f"zone {zone} is not the zone of session {sid} (zone {szone})")
        if t == "zone_sessions":
            for f, row in self._rows(
                "SELECT __file, __row FROM incoming WHERE ended_at < started_at "
                f"ORDER BY 1, 2 LIMIT {_PER_CHECK}"
            ):
                self._add(f, row, "ended_at", "the session ends before it starts")

    def _check_zones_still_used(self) -> None:
        """A replacement of zones must keep every zone the sessions, scans and costs refer to."""
        for zone, users in self._rows(
            "SELECT zone_id, string_agg(DISTINCT src, ', ' ORDER BY src) FROM ("
            "SELECT zone_id, 'zone_sessions' AS src FROM zone_sessions UNION ALL "
            "SELECT zone_id, 'scans' FROM scans UNION ALL SELECT zone_id, 'costs' FROM costs) "
            "WHERE zone_id IS NOT NULL AND zone_id NOT IN (SELECT zone_id FROM incoming) "
            f"GROUP BY zone_id ORDER BY zone_id LIMIT {_PER_CHECK}"
        ):
            self._add(
                None,
                None,
                "zone_id",
                f"zone {zone} is used by existing {users} but is missing from the new zones",
            )

    # -------------------------------------------------------------- stage 5: write
    def _write(self, snap: lake.LakeSnapshot) -> ImportReport:
        rows_read = self._rows("SELECT count(*) FROM incoming")[0][0]
        per_file = dict(self._rows("SELECT __file, count(*) FROM incoming GROUP BY 1"))
        if self.table == "scans":
            self.con.execute("UPDATE incoming SET scan_id = __scan_id WHERE scan_id IS NULL")
        names = ", ".join(_q(c.name) for c in self.columns)
        keep = "true" if not self.skip_duplicates else "NOT __dup"
        data = self.con.sql(
            f"SELECT {names} FROM incoming WHERE {keep} ORDER BY __file, __row"
        ).to_arrow_table()
        dups = rows_read - data.num_rows
        ids = self._rows(f"SELECT min({_q(self.id_col)}), max({_q(self.id_col)}) FROM incoming WHERE {keep}")[
            0
        ]
        validated = snap.tables[self.table]
        table = validated.iceberg or ensure_table(self.settings, self.slug, self.table)
        if table.metadata.current_snapshot_id != validated.snapshot_id:
            raise LakeConflict(f"{self.slug}.{self.table} changed while the import was checked")
        removed = live_data_files(table) if self.replace else []
        snapshot_id = None
        if data.num_rows or self.replace:
            added = write_data_files(table, self.table, [data])
            from pyiceberg.table.snapshots import Operation  # loaded when an import writes

            operation = Operation.OVERWRITE if self.replace else Operation.APPEND
            after = commit(table, added, removed=removed, operation=operation, action=f"import {self.table}")
            snapshot_id = after.metadata.current_snapshot_id
        return ImportReport(
            project=self.slug,
            table=self.table,
            files=tuple(f.name for f in self.files),
            rows_read=rows_read,
            rows_imported=data.num_rows,
            duplicates_skipped=dups,
            replaced=self.replace,
            files_replaced=len(removed),
            snapshot_id=snapshot_id,
            first_id=ids[0],
            last_id=ids[1],
            rows_per_file={self.files[i].name: n for i, n in per_file.items()},
        )


# ---------------------------------------------------------------------- SQL for one column


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
