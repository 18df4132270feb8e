"""The local backend of the file store: a folder, where a file goes in by an fsynced, atomic rename.

:class:`LocalStore` implements :class:`~exporthub.storage.FileStore` (keys, verification and the object
store live in :mod:`exporthub.storage`, which still exports ``LocalStore`` by name). Its
:meth:`LocalStore.put_hashed` reads a file once instead of twice; a key never leaves the folder, symlinks
included.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat as stat_mod
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from exporthub.storage import CHUNK, PARTIAL_DIR, BadKey, FileStore, ObjectInfo, check_key, sha256_of


def _hashing_copy(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` (fsynced) and return the sha256 of the bytes written, in one pass."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(8 * CHUNK), b""):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


class LocalStore(FileStore):
    """Files in a local folder; ``put`` is an fsynced atomic rename (a copy across file systems)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work_root = root
        self.url = root.as_uri()

    def path(self, key: str) -> Path:
        """The file a key names, resolved; :class:`BadKey` when it would leave the folder (symlinks too)."""
        check_key(key)
        root = self.root.resolve()
        try:
            path = (root / key).resolve(strict=False)
        except (OSError, RuntimeError, ValueError) as exc:
            raise BadKey(f"unusable storage key: {exc}") from None
        if path == root or not path.is_relative_to(root):
            raise BadKey("storage key points outside the files folder")
        return path

    def _transfer(self, local: Path, key: str) -> str | None:
        from exporthub.lake import fsync_dir

        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(local, "rb+") as fh:
            os.fsync(fh.fileno())
        copied = None
        try:
            os.replace(local, final)
        except OSError:  # another file system (EXDEV): copy beside the target, then rename
            tmp = final.with_name(f".put-{final.name}-{threading.get_ident()}")
            try:
                copied = _hashing_copy(local, tmp)
                os.replace(tmp, final)
                local.unlink(missing_ok=True)
            finally:
                tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)
        return copied

    def put_hashed(self, local: Path, key: str) -> tuple[ObjectInfo, str]:
        """One read instead of two: a rename on one file system moves no bytes, so the file is hashed
        once where it is stored, after checking it is the very file that was written (same device,
        inode and size, the file held open meanwhile); a copy across file systems hashes the bytes as
        it writes them. (The object store keeps :meth:`FileStore.put_hashed`: hash, upload, read
        back.) Raises
        :class:`UploadMismatch` (after deleting the file) when what is stored is not that file."""
        check_key(key)
        with open(local, "rb") as held:  # held open: its inode cannot be reused by another file meanwhile
            before = os.fstat(held.fileno())
            copied = self._transfer(local, key)
            info = self.stat(key)
            if info is None or info.size != before.st_size:
                self._discard(key, f"stored size {None if info is None else info.size} != {before.st_size}")
            if copied is not None:
                return info, copied
            stored = os.stat(self.path(key))
            if (stored.st_dev, stored.st_ino) != (before.st_dev, before.st_ino):
                self._discard(key, "the stored file is not the one written")
            size, digest = sha256_of(held)
        if size != info.size:
            self._discard(key, f"stored size {size} != {info.size}")
        return info, digest

    def open(self, key: str) -> tuple[BinaryIO, ObjectInfo]:
        try:
            fd = os.open(self.path(key), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(key) from None
        except OSError as exc:  # ELOOP: swapped for a symlink
            raise FileNotFoundError(f"{key}: {exc}") from None
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            raise FileNotFoundError(f"{key}: not a regular file")
        return os.fdopen(fd, "rb"), ObjectInfo(key, st.st_size, st.st_mtime_ns)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            st = path.lstat()
        except (OSError, ValueError):
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime_ns) if stat_mod.S_ISREG(st.st_mode) else None

    def delete(self, key: str) -> None:
        with contextlib.suppress(IsADirectoryError):
            self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self.path(prefix)
        for entry in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
            if entry.name != PARTIAL_DIR:  # the work folder belongs to the runner and retention
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()

    def iter_files(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != PARTIAL_DIR]
            for name in filenames:
                full = Path(dirpath) / name
                try:
                    st = full.lstat()
                except OSError:
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    yield ObjectInfo(full.relative_to(self.root).as_posix(), st.st_size, st.st_mtime_ns)

    def location(self, key: str) -> str:
        return str(self.path(key))
