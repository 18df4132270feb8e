"""Reading a job's files from the file store in tests, whichever backend it is on."""

from __future__ import annotations

import uuid
from pathlib import Path

from exporthub.storage import get_store
from exporthub.storage_local import LocalStore
from exporthub.views import FileView, JobView


def fetched(hub, f: FileView) -> Path:  # type: ignore[no-untyped-def]
    """A local path with the stored file's bytes: the file itself on a local store, else a copy
    downloaded through the store (so a real reader can open it)."""
    store = get_store(hub.settings)
    if isinstance(store, LocalStore):
        return f.path
    folder = hub.settings.data_dir / "fetched" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / f.name
    store.copy_to(f.storage_key, target)
    return target


def stored_file(hub, job: JobView, ext: str) -> Path:  # type: ignore[no-untyped-def]
    """The job's one file with this extension, as a local path (see :func:`fetched`)."""
    (f,) = [f for f in job.files if f.name.endswith("." + ext)]
    return fetched(hub, f)
