"""Writing the lake: data files written in order, then one Iceberg commit (append, overwrite, replace).

Every writer of ours (import, demo, restore, migration, compaction) goes through :func:`commit`:
the data files are written first, then one catalog commit publishes them, or none does. The commit
asserts that the table is still at the snapshot the writer started from; if another writer committed
in between, :class:`LakeConflict` is raised, the files written for the attempt are deleted, and the
caller decides what to do: an import validates again against the new snapshot and retries
(:func:`with_retries`). pyiceberg's own retry is off (``commit.retry.num-retries`` = 0), because it
would rebase an append onto the new snapshot without that validation.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException

from exporthub.errors import LakeConflict
from exporthub.lake.schemas import ROWS_PER_FILE, conform
from exporthub.settings import Settings

if TYPE_CHECKING:  # pyiceberg's table and IO modules load on first use (see exporthub.lake.snapshot)
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Operation

log = logging.getLogger(__name__)
T = TypeVar("T")

# The snapshot summary property that says which Exporthub action made a snapshot.
ACTION_PROPERTY = "exporthub.action"


def _rewrite_files_class() -> type:
    """A producer of ``replace`` snapshots: files removed and added without changing the rows.

    pyiceberg 0.12 computes snapshot summaries for append, overwrite and delete only; a rewrite's
    totals are computed as an overwrite's, then the summary names the operation it really is.
    """
    from pyiceberg.table.snapshots import Operation, Summary
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    class _RewriteFiles(_OverwriteFiles):
        def _summary(self, snapshot_properties: dict[str, str] | None = None) -> Summary:
            self._operation = Operation.OVERWRITE
            try:
                summary = super()._summary(snapshot_properties or {})
            finally:
                self._operation = Operation.REPLACE
            return Summary(operation=Operation.REPLACE, **summary.additional_properties)

    return _RewriteFiles


def write_data_files(
    table: Table, name: str, chunks: Iterable[pa.Table], *, rows_per_file: int = ROWS_PER_FILE
) -> list[DataFile]:
    """Write ``chunks`` (in order) as Parquet data files of ``table``; nothing is committed yet.

    Each file holds consecutive rows and the files come back in the order of the rows, so a table
    kept in id order stays in id order. Chunks are conformed to the lake schema first.
    """
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    write_uuid, counter = uuid.uuid4(), itertools.count(0)
    files: list[DataFile] = []
    try:
        for piece in _rebatch((conform(name, c) for c in chunks), rows_per_file):
            files.extend(_dataframe_to_data_files(
                table_metadata=table.metadata, df=piece, io=table.io, write_uuid=write_uuid, counter=counter,
            ))
    except BaseException:
        delete_data_files(table, files)
        raise
    return files


def _rebatch(chunks: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of ``chunks``, in order, as tables of ``rows`` rows (the last one smaller)."""
    pending: list[pa.Table] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += chunk.num_rows
        while count >= rows:
            whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            yield whole.slice(0, rows)
            rest = whole.slice(rows)
            pending, count = ([rest] if rest.num_rows else []), rest.num_rows
    if count:
        yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]


def delete_data_files(table: Table, files: Iterable[DataFile]) -> None:
    """Delete files that no snapshot references (an attempt that did not commit)."""
    for f in files:
        try:
            table.io.delete(f.file_path)
        except Exception:  # noqa: BLE001 - maintenance removes orphans that this misses
            log.warning("could not delete uncommitted data file %s", f.file_path, exc_info=True)


def live_data_files(table: Table) -> list[DataFile]:
    """The data files of the table's current snapshot (as pyiceberg objects, for removing them)."""
    snap = table.current_snapshot()
    if snap is None:
        return []
    return [e.data_file for m in snap.manifests(table.io)
            for e in m.fetch_manifest_entry(table.io, discard_deleted=True)]


def commit(
    table: Table,
    added: Sequence[DataFile],
    *,
    removed: Sequence[DataFile] = (),
    operation: Operation | None = None,
    action: str,
) -> Table:
    """Publish ``added`` (and drop ``removed``) in one snapshot of ``operation`` (default: append).

    ``APPEND`` adds files; ``OVERWRITE`` replaces data (``import --replace``); ``REPLACE`` rewrites files
    without changing the rows (compaction), which incremental readers skip. Raises :class:`LakeConflict`
    when the table moved on since ``table`` was loaded (the added files are deleted then).
    """
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    operation = operation or Operation.APPEND
    tx = table.transaction()
    props = {ACTION_PROPERTY: action}
    try:
        if operation == Operation.APPEND and not removed:
            with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                for f in added:
                    append.append_data_file(f)
        else:
            kind = _rewrite_files_class() if operation == Operation.REPLACE else _OverwriteFiles
            producer = kind(operation=operation, transaction=tx, io=table.io, snapshot_properties=props)
            with producer as rewrite:
                for f in removed:
                    rewrite.delete_data_file(f)
                for f in added:
                    rewrite.append_data_file(f)
        return tx.commit_transaction()
    except CommitFailedException as exc:
        # The commit surely did not land, so its files can go. Any other error leaves the outcome
        # unknown: the files stay (maintenance removes them if no snapshot references them).
        delete_data_files(table, added)
        raise LakeConflict(f"{'.'.join(table.name())} was changed by another writer: {exc}") from exc


def append_rows(settings: Settings, slug: str, name: str, data: pa.Table, *, action: str = "append") -> Table:
    """Append ``data`` to the project's table as one commit, unchecked (tools and tests; imports check)."""
    from exporthub.lake.catalog import ensure_table

    table = ensure_table(settings, slug, name)
    return commit(table, write_data_files(table, name, [data]), action=action)


def with_retries(attempt: Callable[[int], T], *, attempts: int = 5, what: str = "The import") -> T:
    """Run ``attempt(n)`` until it does not raise :class:`LakeConflict`, at most ``attempts`` times.

    Each attempt must read the table afresh and validate against it. After the last conflict a
    :class:`LakeConflict` with a message for a person is raised; nothing was written.
    """
    for n in range(attempts):
        try:
            return attempt(n)
        except LakeConflict:
            if n == attempts - 1:
                raise LakeConflict(
                    f"{what} was not applied: other writers changed the same table {attempts} times while "
                    "it was being checked. Nothing was changed; try again."
                ) from None
            time.sleep(random.uniform(0.05, 0.2) * (n + 1))  # let the other writer finish
    raise AssertionError("unreachable")


def summary_action(snapshot: Any) -> str | None:
    """The Exporthub action recorded in a snapshot's summary (None for other writers)."""
    summary = getattr(snapshot, "summary", None)
    return None if summary is None else summary.additional_properties.get(ACTION_PROPERTY)
