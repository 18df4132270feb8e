"""Zip an output file when it is too large to download comfortably."""

from __future__ import annotations

import zipfile
from pathlib import Path

from exporters._result import removing_on_error


def zip_if_large(path: Path, threshold_bytes: int) -> Path:
    """Replace ``path`` by ``<name>.zip`` beside it if the file is larger than ``threshold_bytes``.

    Returns the zip's path (the original is deleted), or ``path`` unchanged when it is small enough.
    Streams in chunks, so memory stays constant for any size; ZIP64 is used past 4 GiB. A failure
    leaves the original in place and no partial zip. Raises ``FileNotFoundError`` if ``path`` is missing.
    """
    if path.stat().st_size <= threshold_bytes:
        return path
    zip_path = path.with_name(path.name + ".zip")
    partial = zip_path.with_name("." + zip_path.name + ".partial")
    with removing_on_error(partial):
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            # ZipFile.write copies the file in chunks and knows its size up front, so it picks ZIP64
            # itself; reading it into memory (writestr) would not be constant-memory.
            archive.write(path, arcname=path.name)
        partial.replace(zip_path)
    path.unlink()
    return zip_path
