"""A job's outputs: from its private work folder into the files store, with what the files table records.

An exporter writes into ``<job folder>/.partial/``. When it is done, :func:`store_outputs` hashes and
fsyncs each file and renames it into the job folder, before the final transaction (so hashing a large
file never holds the database's write lock). If that transaction does not complete the job, the caller
deletes them again with :func:`discard`: nothing decided by a lost commit stays visible.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Iterable
from pathlib import Path

from exporthub.context import JobContext
from exporthub.lake import fsync_dir
from exporthub.lifecycle import StoredFile
from exporthub.settings import Settings

PARTIAL_DIR = ".partial"  # the job's private work folder; never served, deleted on failure

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
}


def content_type(name: str) -> str:
    suffix = Path(name).suffix
    return CONTENT_TYPES.get(suffix, mimetypes.guess_type(name)[0] or "application/octet-stream")


def store_outputs(ctx: JobContext) -> list[StoredFile]:
    """Hash, fsync and rename every output of the work folder into the job folder."""
    target = ctx.workdir.parent
    stored: list[StoredFile] = []
    for path in sorted(ctx.workdir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb+") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            os.fsync(fh.fileno())
        final = target / path.name
        os.replace(path, final)
        st = final.stat()
        stored.append(StoredFile(name=final.name, content_type=content_type(final.name), size=st.st_size,
                                 sha256=digest.hexdigest(),
                                 storage_key=str(final.relative_to(ctx.settings.files_dir)),
                                 mtime_ns=st.st_mtime_ns))
    fsync_dir(target)
    return stored


def discard(settings: Settings, stored: Iterable[StoredFile]) -> None:
    """Delete outputs that no committed job records (the commit that decided so has happened)."""
    for item in stored:
        (settings.files_dir / item.storage_key).unlink(missing_ok=True)
