"""The stored side of a download: where a file's storage key points, whether the file there is still the
one recorded, and opening it for the send.

:mod:`exporthub.links` decides *who* may fetch a file; this module checks *what* is stored. Every
failure is a :class:`LinkRefused` (404) with the reason in its detail, which the caller audits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from exporthub.errors import LinkRefused
from exporthub.settings import Settings

if TYPE_CHECKING:
    from exporthub.links import DownloadGrant


def stored_path(settings: Settings, storage_key: str) -> Path:
    """The local file a storage key names, resolved (local file store only); raises
    :class:`LinkRefused` (404) when it would leave the files folder (``..``, absolute keys, symlinks
    pointing elsewhere) or cannot be a path at all."""
    from exporthub.storage import BadKey, get_store
    from exporthub.storage_local import LocalStore

    store = get_store(settings)
    try:
        return (store if isinstance(store, LocalStore) else LocalStore(settings.files_dir)).path(storage_key)
    except BadKey as exc:
        raise LinkRefused(404, str(exc)) from None


def verify_stored(settings: Settings, storage_key: str, size: int, mtime_ns: int, sha256: str) -> int:
    """Check the stored file is the one recorded: same size and mtime, or the same sha256 when the
    mtime moved (re-hashing a large file is slow, so only then). Returns its current mtime."""
    from exporthub.storage import StorageError, get_store, sha256_of

    store = get_store(settings)
    try:
        info = store.stat(storage_key)
    except StorageError as exc:  # BadKey: a key that leaves the store
        raise LinkRefused(404, f"unusable storage key: {exc}") from None
    except OSError as exc:
        raise LinkRefused(404, f"file store unreadable: {exc}") from None
    if info is None:
        raise LinkRefused(404, "file missing in the store")
    if info.size != size:
        raise LinkRefused(404, f"file changed in the store (size {info.size} != {size})")
    if info.mtime_ns != mtime_ns:
        try:
            fh, _ = store.open(storage_key)
            with fh:
                _, digest = sha256_of(fh)
        except OSError:
            raise LinkRefused(404, "file unreadable") from None
        if digest != sha256:
            raise LinkRefused(404, "file changed in the store (sha256 differs)")
    return info.mtime_ns


def open_granted(settings: Settings, grant: DownloadGrant) -> BinaryIO | None:
    """The granted file opened from the file store, or ``None`` if what is stored now is not what was
    checked (a file swapped for a symlink or another file between the check and the open)."""
    from exporthub.storage import get_store

    try:
        fh, info = get_store(settings).open(grant.storage_key)
    except OSError:
        return None
    if info.size != grant.size or info.mtime_ns != grant.mtime_ns:
        fh.close()
        return None
    return fh
