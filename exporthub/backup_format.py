"""The project backup archive: its layout, shared by the ``backup`` export and restore, and its check.

A backup is a zip with:

- ``lake/<table>/part-*.parquet``: each lake table's data files of the backed-up snapshot, byte for
  byte (Iceberg data files are plain Parquet), numbered in id order;
- ``metadata/project.json``, ``metadata/memberships.json`` (username and role),
  ``metadata/users.json`` (every user the project references: members, job owners and the people in
  the lake, flagged ``in_lake``; never a password hash), ``metadata/jobs.jsonl`` and
  ``metadata/export_sessions.jsonl`` (JSON Lines, so neither side holds them in memory);
- ``manifest.json``, written last: the format and version, the source project, the row count and
  snapshot id of each lake table, and the size and sha256 of every other entry.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from exporthub.errors import BackupCorrupted
from exporthub.lake import TABLES

FORMAT = "exporthub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROJECT_ENTRY = "metadata/project.json"
MEMBERSHIPS_ENTRY = "metadata/memberships.json"
USERS_ENTRY = "metadata/users.json"
JOBS_ENTRY = "metadata/jobs.jsonl"
EXPORT_SESSIONS_ENTRY = "metadata/export_sessions.jsonl"
METADATA_ENTRIES = (PROJECT_ENTRY, MEMBERSHIPS_ENTRY, USERS_ENTRY, JOBS_ENTRY, EXPORT_SESSIONS_ENTRY)
CHUNK = 1 << 20

# Strict names: a restore writes lake entries to disk, so nothing like "../" may ever pass.
_LAKE_ENTRY = re.compile(r"\Alake/(" + "|".join(TABLES) + r")/(part-[A-Za-z0-9._-]+\.parquet)\Z")


def lake_entry(table: str, part_name: str) -> str:
    """The archive name of one lake part file."""
    return f"lake/{table}/{part_name}"


def parse_lake_entry(name: str) -> tuple[str, str] | None:
    """``(table, part file name)`` for a lake entry name, ``None`` for any other name."""
    match = _LAKE_ENTRY.match(name)
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Manifest:
    source_project: str
    lake_rows: dict[str, int]
    entries: dict[str, tuple[int, str]]  # name -> (size, sha256)


def sha256_of(stream: IO[bytes]) -> tuple[int, str]:
    """Size and hex sha256 of a binary stream, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def verify_backup(path: Path) -> Manifest:
    """Check the archive against its manifest: every entry present, listed, and with its sha256.

    Reads every entry once, in constant memory. Raises :class:`BackupCorrupted` naming the first
    problem (not a zip, no manifest, unknown format, a missing, extra or altered entry).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BackupCorrupted(f"{Path(path).name} is not a readable zip archive ({exc})") from None
    with archive:
        manifest = _read_manifest(archive)
        names = set(archive.namelist()) - {MANIFEST}
        missing, extra = set(manifest.entries) - names, names - set(manifest.entries)
        if missing:
            raise BackupCorrupted(f"entry {sorted(missing)[0]} is listed in the manifest but missing")
        if extra:
            raise BackupCorrupted(f"entry {sorted(extra)[0]} is not listed in the manifest")
        for name, (size, sha) in manifest.entries.items():
            try:
                with archive.open(name) as fh:
                    got = sha256_of(fh)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                # A flipped byte usually trips the zip's own CRC check before ours.
                raise BackupCorrupted(f"entry {name} cannot be read ({exc})") from None
            if got != (size, sha):
                raise BackupCorrupted(f"entry {name} does not match its sha256 in the manifest")
    return manifest


def _read_manifest(archive: zipfile.ZipFile) -> Manifest:
    try:
        data = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise BackupCorrupted(f"no {MANIFEST} in the archive") from None
    except (zipfile.BadZipFile, zlib.error, ValueError) as exc:
        raise BackupCorrupted(f"{MANIFEST} cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupCorrupted("this is not an Exporthub project backup")
    if data.get("version") != FORMAT_VERSION:
        raise BackupCorrupted(f"unsupported backup version {data.get('version')!r}")
    try:
        entries = {str(e["name"]): (int(e["size"]), str(e["sha256"])) for e in data["entries"]}
        lake_rows = {str(k): int(v) for k, v in data["lake_rows"].items()}
        source = str(data["project"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupCorrupted(f"{MANIFEST} is malformed ({exc})") from None
    for name in entries:
        if name not in METADATA_ENTRIES and parse_lake_entry(name) is None:
            raise BackupCorrupted(f"unexpected entry name {name!r}")
    for name in METADATA_ENTRIES:
        if name not in entries:
            raise BackupCorrupted(f"{name} is missing from the manifest")
    return Manifest(source_project=source, lake_rows=lake_rows, entries=entries)
