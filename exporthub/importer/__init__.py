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

from sqlalchemy import select

from exporthub import audit
from exporthub.access import get_project
from exporthub.authorization import Actor, actor_name, authorize
from exporthub.db import Database
from exporthub.errors import ExporthubError, ImportRefused, InvalidTransition, InvalidValue
from exporthub.importer.contract import CONTRACT, REPLACEABLE, ImportColumn, ImportReport, Kind, file_columns
from exporthub.importer.read import ImportFile, Problem
from exporthub.importer.write import _Import
from exporthub.lake.commit import with_retries
from exporthub.models import User
from exporthub.settings import Settings
from exporthub.states import ProjectStatus

__all__ = ["CONTRACT", "REPLACEABLE", "ImportColumn", "ImportFile", "ImportRefused", "ImportReport", "Kind", "Problem",
           "file_columns", "import_files", "with_retries"]


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
