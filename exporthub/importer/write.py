"""Running one import: the checks, then one Iceberg commit of every file (or a refusal)."""

from __future__ import annotations

import pyarrow as pa

from exporthub import lake
from exporthub.errors import LakeConflict
from exporthub.importer.checks import _Checks
from exporthub.importer.contract import ImportReport
from exporthub.importer.read import _q
from exporthub.lake.catalog import ensure_table
from exporthub.lake.commit import commit, live_data_files, write_data_files
from exporthub.lake.snapshot import remember_table


class _Import(_Checks):
    """One import: :class:`_Checks` over one DuckDB connection, then the write."""

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
        table = validated.iceberg_table() or ensure_table(self.settings, self.slug, self.table)
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
            remember_table(self.settings, self.slug, self.table, after)  # the next export skips pyiceberg
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
