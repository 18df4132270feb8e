"""A job's outputs: from its private work folder into the file store, with what the files table records.

An exporter writes into its local work folder (:func:`exporthub.storage.work_folder`). When it is
done, :func:`store_outputs` puts each file into the store and records its sha256
(:meth:`~exporthub.storage.FileStore.put_hashed`: on local disk a rename and one hashing read; to
object storage a hash, an upload and a verifying read-back), before the final transaction (so neither
holds the database's write lock). If that transaction does not complete the job, the caller deletes
them again with :func:`discard`: nothing decided by a lost commit stays visible.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path

from exporthub.context import JobContext
from exporthub.lifecycle import StoredFile
from exporthub.settings import Settings
from exporthub.storage import PARTIAL_DIR, file_key, get_store

__all__ = ["CONTENT_TYPES", "PARTIAL_DIR", "content_type", "discard", "store_outputs"]

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
    """Put every output of the work folder into the file store with its sha256 (see
    :meth:`~exporthub.storage.FileStore.put_hashed`). On any failure the files put so far are deleted
    again and the error (an ``OSError``, :class:`~exporthub.storage.UploadMismatch` included)
    propagates: the job fails."""
    store = get_store(ctx.settings)
    stored: list[StoredFile] = []
    try:
        for path in sorted(ctx.workdir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            key = file_key(ctx.project.slug, ctx.export_type, ctx.job_id, path.name)
            info, digest = store.put_hashed(path, key)
            stored.append(StoredFile(name=path.name, content_type=content_type(path.name), size=info.size,
                                     sha256=digest, storage_key=key, mtime_ns=info.mtime_ns))
    except BaseException:
        discard(ctx.settings, stored)
        raise
    return stored


def discard(settings: Settings, stored: Iterable[StoredFile]) -> None:
    """Delete outputs that no committed job records (the commit that decided so has happened)."""
    store = get_store(settings)
    for item in stored:
        store.delete(item.storage_key)
