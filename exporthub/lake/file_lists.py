"""Each table's current file list, remembered per Iceberg metadata file, so a reader need not load pyiceberg.

Finding a table's live data files means loading its Iceberg metadata and reading its manifests: in a
one-shot process (``exporthub export … --inline``, a CLI check) importing pyiceberg alone costs ~0.4 s of
CPU, more than DuckDB's whole copy of 200,000 rows. Yet an Iceberg metadata file never changes once
written: every commit writes a new one and moves the catalog's ``metadata_location`` to it. So the
current snapshot and file list *of one metadata file* can be kept for good, and a reader that finds the
catalog still pointing at a metadata file it has seen needs one SQL query, not pyiceberg.

The lists live as small JSON files under ``<data_dir>/cache/lake-files`` (per machine: each host fills its
own), named ``<slug>.<table>.<hash of the metadata location>.json``, written atomically (temp file, then
rename) by whichever reader loaded the table first. Writing one for a table deletes that table's older
lists: only the current one is ever asked for. A list that is missing, unreadable or about another
location is a miss, never an error: the caller loads the table with pyiceberg as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from exporthub.db import get_database
from exporthub.lake.catalog import CATALOG_NAME
from exporthub.settings import Settings


def metadata_locations(settings: Settings, slug: str) -> dict[str, str]:
    """Table name -> its current metadata location, read from the catalog's own table (tables never
    written to are absent). The same row pyiceberg's ``load_table`` reads first."""
    db = get_database(settings)
    with db.read_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, metadata_location FROM iceberg_tables "
                "WHERE catalog_name = :catalog AND table_namespace = :slug AND metadata_location IS NOT NULL"
            ),
            {"catalog": CATALOG_NAME, "slug": slug},
        ).all()
    return {str(name): str(location) for name, location in rows}


def cache_dir(settings: Settings) -> Path:
    return settings.data_dir / "cache" / "lake-files"


def _path(settings: Settings, slug: str, table: str, location: str) -> Path:
    digest = hashlib.sha256(location.encode()).hexdigest()[:32]
    return cache_dir(settings) / f"{slug}.{table}.{digest}.json"


def recall(settings: Settings, slug: str, table: str, location: str) -> dict[str, Any] | None:
    """The remembered snapshot of ``location`` (see :func:`remember` for its keys), or None."""
    try:
        kept = json.loads(_path(settings, slug, table, location).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("metadata_location") != location:
        return None
    return kept


def remember(
    settings: Settings, slug: str, table: str, location: str, *,
    snapshot_id: int | None, committed_at: datetime | None, files: list[Mapping[str, Any]],
) -> None:
    """Keep the current snapshot of ``location`` and its files; drop the table's older lists. Best
    effort: a cache that cannot be written costs the next reader pyiceberg, nothing else."""
    folder = cache_dir(settings)
    target = _path(settings, slug, table, location)
    body = {
        "metadata_location": location,
        "snapshot_id": snapshot_id,
        "committed_at": committed_at.isoformat() if committed_at else None,
        "files": [dict(f) for f in files],
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(body, out, separators=(",", ":"))
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    for older in folder.glob(f"{slug}.{table}.*.json"):
        if older != target:
            with contextlib.suppress(OSError):
                older.unlink()
