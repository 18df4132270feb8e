"""What a backup must pass before a restore writes anything: sizes, then every value, as an import would.

A backup's manifest only proves that its entries were not altered after it was made, not that they
were made by Exporthub: anyone can write a zip with a matching manifest. So a restore treats the
archive as untrusted input, in two steps that both run before anything is unpacked to disk:

1. :func:`check_sizes` reads the zip's directory only: the number of entries, each entry's declared
   size against its limit (the metadata entries are read into memory, so they get small fixed limits;
   lake files get ``settings.restore_max_entry_bytes``), and the total against
   ``settings.restore_max_total_bytes``. A decompressing reader never yields more than the declared
   size, so nothing larger is ever unpacked.
2. :func:`check_contents` validates every value the restore will use: the project's name, slug,
   timezone and status, every username (the same rules as ``users add``: no ``cli:`` prefix, at most
   64 characters, no markup), roles, job statuses and types, times, numbers, and the schema of every
   lake file (the lake's own column names and types, read from the parquet footer).

Each problem is a :class:`BackupInvalid` that names the entry and the value; the restore turns it
into one refused audit event and leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, overload

import pyarrow as pa
import pyarrow.parquet as pq

from exporthub.backup_format import (
    EXPORT_SESSIONS_ENTRY,
    JOBS_ENTRY,
    MANIFEST,
    MEMBERSHIPS_ENTRY,
    PROJECT_ENTRY,
    USERS_ENTRY,
    Manifest,
    parse_lake_entry,
)
from exporthub.errors import BackupInvalid, InvalidValue
from exporthub.lake import SCHEMAS
from exporthub.settings import Settings
from exporthub.states import JobStatus, ProjectStatus
from exporthub.validation import (
    EMAIL_RE,
    validate_role,
    validate_slug,
    validate_timezone,
    validate_username,
)

MAX_ENTRIES = 100_000
# Read whole into memory (json.loads): small on purpose. The JSON Lines entries are streamed.
METADATA_LIMITS: dict[str, int] = {
    MANIFEST: 256 * 1024**2,
    PROJECT_ENTRY: 1024**2,
    MEMBERSHIPS_ENTRY: 16 * 1024**2,
    USERS_ENTRY: 64 * 1024**2,
    JOBS_ENTRY: 1024**3,
    EXPORT_SESSIONS_ENTRY: 1024**3,
}
MAX_NAME = 200  # projects.name, users.display_name
MAX_LINE = 1024**2  # one job or export session
_EXPORT_TYPE = re.compile(r"\A[a-z0-9_-]{1,64}\Z")
_MAX_INT = 2**63 - 1


def _size(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB" if n < 1024**3 else f"{n / 1024**3:,.1f} GB"


def check_sizes(path: Path, settings: Settings) -> None:
    """Refuse an archive whose directory promises too many or too large entries (nothing is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise BackupInvalid(f"{Path(path).name} is not a readable zip archive ({exc})") from None
    if len(infos) > MAX_ENTRIES:
        raise BackupInvalid(f"the archive has {len(infos):,} entries; a backup has at most {MAX_ENTRIES:,}")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise BackupInvalid("the archive names one entry twice")
    total = 0
    for info in infos:
        limit = METADATA_LIMITS.get(info.filename)
        if limit is None:
            limit = settings.restore_max_entry_bytes if parse_lake_entry(info.filename) else 0
        if info.file_size > limit:
            allowed = f"at most {_size(limit)}" if limit else "none (not a backup entry)"
            raise BackupInvalid(f"entry {info.filename[:200]!r} unpacks to {_size(info.file_size)}; allowed: {allowed}")
        total += info.file_size
    if total > settings.restore_max_total_bytes:
        raise BackupInvalid(f"the archive unpacks to {_size(total)}; a restore takes at most "
                            f"{_size(settings.restore_max_total_bytes)} (EXPORTHUB_RESTORE_MAX_TOTAL_BYTES)")


def check_contents(path: Path, manifest: Manifest) -> None:
    """Validate every value the restore will read; raises :class:`BackupInvalid` on the first problem."""
    with zipfile.ZipFile(path) as archive:
        _check_project(_json(archive, PROJECT_ENTRY))
        _check_users(_json(archive, USERS_ENTRY))
        for i, m in enumerate(_list(_json(archive, MEMBERSHIPS_ENTRY), MEMBERSHIPS_ENTRY)):
            where = f"{MEMBERSHIPS_ENTRY} entry {i + 1}"
            _valid(where, validate_username, _text(where, m, "username", 64))
            _valid(where, validate_role, _text(where, m, "role", 32))
        for i, j in enumerate(_jsonl(archive, JOBS_ENTRY)):
            _check_job(f"{JOBS_ENTRY} line {i + 1}", j)
        for i, e in enumerate(_jsonl(archive, EXPORT_SESSIONS_ENTRY)):
            where = f"{EXPORT_SESSIONS_ENTRY} line {i + 1}"
            for key in ("job_id", "zone_id", "watermark_scan_id", "scan_count"):
                _int(where, e, key)
            _export_type(where, e)
            _time(where, e, "created_at")
        for name in manifest.entries:
            parsed = parse_lake_entry(name)
            if parsed is not None:
                _check_lake_file(archive, name, parsed[0])


# ---------------------------------------------------------------------- metadata


def _json(archive: zipfile.ZipFile, entry: str) -> Any:
    try:
        return json.loads(archive.read(entry))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupInvalid(f"{entry} is not valid JSON ({exc})") from None


def _jsonl(archive: zipfile.ZipFile, entry: str) -> Iterator[dict[str, Any]]:
    with archive.open(entry) as fh:
        for number, line in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), start=1):
            if len(line) > MAX_LINE:
                raise BackupInvalid(f"{entry} line {number} is longer than {MAX_LINE // 1024**2} MB")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BackupInvalid(f"{entry} line {number} is not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise BackupInvalid(f"{entry} line {number} is not a JSON object")
            yield row


def _list(value: Any, entry: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BackupInvalid(f"{entry} is not a list of JSON objects")
    return value


def _valid(where: str, check: Any, value: str) -> str:
    try:
        return str(check(value))
    except InvalidValue as exc:
        raise BackupInvalid(f"{where}: {exc.message}") from None


@overload
def _text(where: str, row: dict[str, Any], key: str, limit: int) -> str: ...
@overload
def _text(where: str, row: dict[str, Any], key: str, limit: int, *, optional: bool) -> str | None: ...
def _text(where: str, row: dict[str, Any], key: str, limit: int, *, optional: bool = False) -> str | None:
    value = row.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise BackupInvalid(
            f"{where}: {key} must be printable text of 1 to {limit} characters, got {str(value)[:80]!r}")
    return value


def _int(
    where: str, row: dict[str, Any], key: str, *, optional: bool = False, low: int = 0, high: int = _MAX_INT
) -> int | None:
    value = row.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BackupInvalid(f"{where}: {key} must be a whole number from {low} to {high}, got {str(value)[:40]!r}")
    return value


def _time(where: str, row: dict[str, Any], key: str, *, optional: bool = True) -> None:
    value = row.get(key)
    if value is None and optional:
        return
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BackupInvalid(f"{where}: {key} must be an ISO 8601 time with an offset, got {str(value)[:40]!r}")


def _export_type(where: str, row: dict[str, Any]) -> None:
    value = row.get("export_type")
    if not isinstance(value, str) or not _EXPORT_TYPE.match(value):
        raise BackupInvalid(f"{where}: export_type must be a lower-case name, got {str(value)[:80]!r}")


def _check_project(project: Any) -> None:
    where = PROJECT_ENTRY
    if not isinstance(project, dict):
        raise BackupInvalid(f"{where} is not a JSON object")
    _valid(where, validate_slug, _text(where, project, "slug", 64) or "")
    _text(where, project, "name", MAX_NAME)
    _valid(where, validate_timezone, _text(where, project, "timezone", 64) or "")
    status = project.get("status")
    if status not in set(ProjectStatus):
        raise BackupInvalid(f"{where}: unknown project status {str(status)[:40]!r}; "
                            f"the statuses are: {', '.join(ProjectStatus)}")
    for key in ("created_at", "closed_at", "published_at"):
        _time(where, project, key)


def _check_users(value: Any) -> None:
    names: set[str] = set()
    ids: set[int] = set()
    for i, u in enumerate(_list(value, USERS_ENTRY)):
        where = f"{USERS_ENTRY} entry {i + 1}"
        user_id = _int(where, u, "id", low=1, high=2**31 - 1)
        name = _valid(where, validate_username, _text(where, u, "username", 64) or "")
        if name in names or user_id in ids:
            raise BackupInvalid(f"{where}: user {name!r} (id {user_id}) appears twice")
        names.add(name)
        ids.add(user_id or 0)
        _text(where, u, "display_name", MAX_NAME, optional=True)
        email = _text(where, u, "email", MAX_NAME, optional=True)
        if email is not None and not EMAIL_RE.match(email):
            raise BackupInvalid(f"{where}: invalid email address {email[:80]!r}")
        for key in ("active", "in_lake"):
            if not isinstance(u.get(key, False), bool):
                raise BackupInvalid(f"{where}: {key} must be true or false")
        _time(where, u, "deleted_at")
        rate = u.get("hourly_rate", 0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate < 0:
            raise BackupInvalid(f"{where}: hourly_rate must be a number of at least 0, got {str(rate)[:40]!r}")


def _check_job(where: str, j: dict[str, Any]) -> None:
    _int(where, j, "id", low=1)
    _int(where, j, "parent_id", optional=True, low=1)
    _int(where, j, "progress", optional=True, high=100)
    _int(where, j, "attempt", optional=True, high=1_000_000)
    if j.get("status") not in set(JobStatus):
        raise BackupInvalid(f"{where}: unknown job status {str(j.get('status'))[:40]!r}")
    _export_type(where, j)
    _valid(where, validate_username, _text(where, j, "username", 64) or "")
    for key in ("created_at", "run_at", "started_at", "finished_at", "removed_at"):
        _time(where, j, key, optional=key != "created_at")
    if not isinstance(j.get("variables") or {}, dict):
        raise BackupInvalid(f"{where}: variables must be a JSON object")
    error = j.get("error")
    if error is not None and (not isinstance(error, str) or len(error) > 100_000):
        raise BackupInvalid(f"{where}: error must be text of at most 100,000 characters")


# ---------------------------------------------------------------------- lake files


def _check_lake_file(archive: zipfile.ZipFile, entry: str, table: str) -> None:
    """The parquet footer of one lake entry must carry exactly the lake table's columns and types."""
    try:
        with archive.open(entry) as fh:
            schema = pq.ParquetFile(fh).schema_arrow
    except (pa.ArrowException, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise BackupInvalid(f"{entry} is not a readable Parquet file ({exc})") from None
    expected = SCHEMAS[table]
    got = [(f.name, f.type) for f in schema]
    want = [(f.name, f.type) for f in expected]
    if got != want:
        missing = [n for n, _ in want if n not in dict(got)]
        odd = [f"{n}: {t}" for n, t in got if dict(want).get(n) != t]
        raise BackupInvalid(
            f"{entry} does not have the {table} table's schema"
            + (f"; missing columns: {', '.join(missing)}" if missing else "")
            + (f"; unexpected columns or types: {', '.join(odd)[:300]}" if odd else "")
        )
