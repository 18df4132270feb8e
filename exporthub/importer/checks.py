"""The checks of one import over one DuckDB connection: header and types, users, ids and duplicates,
references. Every problem is collected (up to :data:`~exporthub.importer.contract.MAX_PROBLEMS`) and
refused together, with its file, row and column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from exporthub import lake
from exporthub.errors import ImportRefused
from exporthub.importer.contract import CONTRACT, MAX_PROBLEMS, REPLACEABLE, SCAN_KEY, ImportColumn, Kind, file_columns
from exporthub.importer.read import (
    _EXPECT,
    _PER_CHECK,
    ImportFile,
    Problem,
    _blank,
    _conversion,
    _q,
    _sql_type,
    read_raw,
)
from exporthub.lake.schemas import ID_COLUMNS
from exporthub.settings import Settings


class _Checks:
    """The stages of one import before its write: header, types, users, ids, references."""

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
        self.id_col = ID_COLUMNS[table]
        self.problems: list[Problem] = []
        self.con: duckdb.DuckDBPyConnection = lake.connect(settings)

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
