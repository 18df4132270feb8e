"""Write what the baselines need to read a project's lake: ``python -m benchmarks.spec OUT PROJECT``.

The lake's files come from :func:`exporthub.lake.snapshot`, so the baselines read exactly what an
export reads; the users (which live in the metadata DB) go to a Parquet file beside ``OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select


def main(out: Path, slug: str) -> None:
    from exporthub import lake
    from exporthub.context import users_table
    from exporthub.db import get_database
    from exporthub.models import Project, User
    from exporthub.settings import get_settings

    settings = get_settings()
    db = get_database(settings)
    with db.read() as s:
        timezone = s.scalar(select(Project.timezone).where(Project.slug == slug))
        users = [
            {"user_id": u.id, "username": u.username, "display_name": u.display_name, "email": u.email,
             "hourly_rate": u.hourly_rate, "active": u.active, "deleted_at": u.deleted_at,
             "can_log_in": u.password_hash is not None}
            for u in s.scalars(select(User).order_by(User.id))
        ]
    users_path = out.with_name("baseline-users.parquet")
    pq.write_table(users_table(users), users_path)
    snap = lake.snapshot(settings, slug)
    scans = pq.ParquetDataset(list(snap.files["scans"])).read(columns=["scan_id"]).num_rows
    spec = {"files": {t: list(f) for t, f in snap.files.items()}, "users": str(users_path),
            "timezone": timezone, "threads": settings.duckdb_threads, "xlsx_rows": scans}
    out.write_text(json.dumps(spec, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
