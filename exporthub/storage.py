"""The file store: where jobs' finished files live, behind one interface with two backends.

- :class:`~exporthub.storage_local.LocalStore`: a local folder (``EXPORTHUB_FILES_URL`` unset:
  ``<data dir>/files``, or a path); a file goes in by an fsynced, atomic rename.
- :class:`ObjectStore`: object storage through ``pyarrow.fs`` (``EXPORTHUB_FILES_URL=s3://bucket/prefix``),
  on the same file system construction as the lake (:func:`exporthub.lake.catalog.filesystem`: the
  ``EXPORTHUB_S3_*`` endpoint and region, credentials from pyarrow's ``AWS_*`` environment).

Keys are ``<project>/<type>/<job id>/<name>`` (:func:`file_key`, the one place that decides where a
job's file lives). Writers never write into the store: an exporter writes into its job's local work
folder (:func:`work_folder`) and :meth:`FileStore.put` moves the finished file in, then reads it back
through the store and checks its size and sha256 (:class:`UploadMismatch` otherwise, with nothing left
behind); :meth:`FileStore.put_hashed` does so for a file not hashed yet (the local store in one read).
Deleting a missing key is not an error in either backend, so no caller catches 404s.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn
from urllib.parse import unquote, urlparse

from exporthub.settings import Settings

if TYPE_CHECKING:
    import pyarrow.fs as pafs

PARTIAL_DIR = ".partial"  # a job's private work folder; never served, deleted when the job ends
CHUNK = 1 << 20


class StorageError(OSError):
    """The file store refused or failed an operation (an ``OSError``: the runner fails the job)."""


class UploadMismatch(StorageError):
    """A file read back from the store is not the file that was put (size or sha256 differ)."""


class BadKey(StorageError):
    """A storage key that names nothing inside the store (``..``, absolute, empty, NUL, a symlink out)."""


@dataclass(frozen=True)
class ObjectInfo:
    """A stored file: its key, size in bytes and modification time (ns since the epoch)."""

    key: str
    size: int
    mtime_ns: int


def job_prefix(slug: str, export_type: str, job_id: int) -> str:
    """The key prefix of one job's files: grouped by project and type, as the UI shows them."""
    return f"{slug}/{export_type}/{job_id}"


def file_key(slug: str, export_type: str, job_id: int, name: str) -> str:
    """Where a job's file lives in the store: the one place that decides it."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise BadKey(f"not a file name: {name!r}")
    return f"{job_prefix(slug, export_type, job_id)}/{name}"


def check_key(key: str) -> list[str]:
    """The parts of a relative key; raises :class:`BadKey` for one that could leave the store."""
    if not isinstance(key, str) or not key or "\x00" in key or key.startswith(("/", "\\")) or "\\" in key:
        raise BadKey(f"unusable storage key: {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadKey(f"unusable storage key: {key!r}")
    return parts


def sha256_of(fh: BinaryIO) -> tuple[int, str]:
    """(size, sha256 hex) of what is left to read in ``fh``."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


class FileStore(ABC):
    """What every caller (runner, downloads, retention, Remove, publish, restore) uses."""

    url: str
    work_root: Path  # local folder under which jobs' work folders live

    @abstractmethod
    def _transfer(self, local: Path, key: str) -> str | None:
        """Move or upload the finished local file to ``key`` (the backend's own step); the sha256 of
        the bytes when the backend hashed them as it copied them, else ``None``."""

    def put_hashed(self, local: Path, key: str) -> tuple[ObjectInfo, str]:
        """:meth:`put` for a file whose sha256 is not known yet: hashes it first, then puts it verified
        by the read-back. Returns what was stored and its sha256 (what the files table records)."""
        with open(local, "rb") as fh:
            size, digest = sha256_of(fh)
        return self.put(local, key, size=size, sha256=digest), digest

    def put(self, local: Path, key: str, *, size: int, sha256: str) -> ObjectInfo:
        """Put a finished local file under ``key`` and verify it by reading it back; the local file is
        gone afterwards. Raises :class:`UploadMismatch` (after deleting the object) when the stored
        size or sha256 is not ``size``/``sha256``, :class:`StorageError`/``OSError`` on failure."""
        check_key(key)
        self._transfer(local, key)
        info = self.stat(key)
        if info is None or info.size != size:
            self._discard(key, f"stored size {None if info is None else info.size} != {size}")
        fh, _ = self.open(key)
        with fh:
            got_size, got_sha = sha256_of(fh)
        if got_size != size or got_sha != sha256:
            self._discard(key, "stored file differs from the one written (sha256)")
        return info

    def _discard(self, key: str, why: str) -> NoReturn:
        """Delete what was stored under ``key`` and raise :class:`UploadMismatch` saying ``why``."""
        self.delete(key)
        raise UploadMismatch(f"{key}: {why}")

    @abstractmethod
    def open(self, key: str) -> tuple[BinaryIO, ObjectInfo]:
        """The stored file opened for reading, with what it is as opened. ``FileNotFoundError`` if it
        is missing or not a regular file; :class:`BadKey` for a key outside the store."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and mtime of a stored file, ``None`` when there is none (:class:`BadKey` as above)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete a stored file; a missing one is no error."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every stored file under ``prefix/`` (a job's files); a missing prefix is no error."""

    @abstractmethod
    def iter_files(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored file under ``prefix`` (all of them for ``""``), in no particular order."""

    @abstractmethod
    def location(self, key: str) -> str:
        """Where an operator finds the file: a local path, or the object's URL."""

    def read_bytes(self, key: str) -> bytes:
        fh, _ = self.open(key)
        with fh:
            return fh.read()

    def copy_to(self, key: str, target: Path) -> ObjectInfo:
        """Copy a stored file to a local path (fsynced); returns what was copied."""
        fh, info = self.open(key)
        with fh, open(target, "wb") as out:
            shutil.copyfileobj(fh, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        return info


class ObjectStore(FileStore):
    """Files as objects (S3 and what else ``pyarrow.fs`` takes) under ``<bucket>/<prefix>/``."""

    def __init__(self, fs: pafs.FileSystem, url: str, work_root: Path) -> None:
        parsed = urlparse(url)
        self.fs, self.url, self.work_root = fs, url, work_root
        self.base = f"{parsed.netloc}{unquote(parsed.path)}".rstrip("/")

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.base}/{key}"

    def _upload(self, local: Path, path: str) -> None:
        with open(local, "rb") as src, self.fs.open_output_stream(path) as dst:
            for chunk in iter(lambda: src.read(8 * CHUNK), b""):
                dst.write(chunk)

    def _transfer(self, local: Path, key: str) -> str | None:
        self._upload(local, self._path(key))
        local.unlink(missing_ok=True)
        return None

    def open(self, key: str) -> tuple[BinaryIO, ObjectInfo]:
        info = self.stat(key)
        if info is None:
            raise FileNotFoundError(key)
        try:
            fh = self.fs.open_input_stream(self._path(key))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileNotFoundError(f"{key}: {exc}") from None
        return fh, info

    def stat(self, key: str) -> ObjectInfo | None:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self._path(key))
        if info.type != pafs.FileType.File:
            return None
        return ObjectInfo(key, int(info.size or 0), int(info.mtime_ns or 0))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._path(key))

    def delete_prefix(self, prefix: str) -> None:
        for info in list(self.iter_files(prefix)):
            self.delete(info.key)

    def iter_files(self, prefix: str = "") -> Iterator[ObjectInfo]:
        import pyarrow.fs as pafs

        base = self._path(prefix) if prefix else self.base
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                yield ObjectInfo(info.path[len(self.base) + 1:], int(info.size or 0), int(info.mtime_ns or 0))

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"


_stores: dict[tuple[str, str | None, str], FileStore] = {}
_stores_lock = threading.Lock()


def get_store(settings: Settings) -> FileStore:
    """The file store ``EXPORTHUB_FILES_URL`` names (the local files folder by default)."""
    cache_key = (settings.files_url, settings.s3_endpoint_url, str(settings.files_dir))
    with _stores_lock:
        store = _stores.get(cache_key)
        if store is None:
            parsed = urlparse(settings.files_url)
            if parsed.scheme == "file":
                from exporthub.storage_local import LocalStore

                store = LocalStore(Path(unquote(parsed.path)))
            else:
                from exporthub.lake.catalog import filesystem

                store = ObjectStore(filesystem(settings, settings.files_url), settings.files_url,
                                    settings.files_dir)
            _stores[cache_key] = store
        return store


def work_folder(settings: Settings, slug: str, export_type: str, job_id: int) -> Path:
    """A job's private local work folder, where its exporter writes (on the store's file system when
    the store is local, so that putting a file is a rename)."""
    return get_store(settings).work_root / job_prefix(slug, export_type, job_id) / PARTIAL_DIR


def delete_job(settings: Settings, slug: str, export_type: str, job_id: int) -> None:
    """Delete a job's stored files and its work folder (after the commit that decided it)."""
    store = get_store(settings)
    store.delete_prefix(job_prefix(slug, export_type, job_id))
    folder = work_folder(settings, slug, export_type, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()

