"""The choices of the ``zones``, ``areas`` and ``users`` filters, from the project itself.

Used by :meth:`JobService.validate <exporthub.jobs.JobService.validate>` (an export's dynamic
options) and by the statistics page, so both offer and accept the same values.
"""

from __future__ import annotations

import duckdb
from sqlalchemy import select

from exporthub import lake
from exporthub.db import Database
from exporthub.models import Membership, Project, User
from exporthub.settings import Settings


def zone_codes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Live zone codes, sorted (the same list the ``zones`` variable accepts)."""
    return [r[0] for r in con.execute("SELECT code FROM zones WHERE NOT deleted ORDER BY code").fetchall()]


def area_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every area a zone names (deleted zones too: "include deleted" can reach them), sorted."""
    rows = con.execute("SELECT DISTINCT area FROM zones WHERE area IS NOT NULL ORDER BY area").fetchall()
    return [r[0] for r in rows]


def active_user_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Ids of users with any scan, zone session or cost in the lake."""
    rows = con.execute(
        "SELECT user_id FROM zone_sessions UNION SELECT user_id FROM scans "
        "UNION SELECT user_id FROM costs WHERE user_id IS NOT NULL"
    ).fetchall()
    return {int(r[0]) for r in rows if r[0] is not None}


def usernames(db: Database, slug: str, ids_with_activity: set[int]) -> dict[str, str]:
    """Username -> display name of users with activity or a membership in the project, by username."""
    with db.read() as s:
        project_id = s.scalar(select(Project.id).where(Project.slug == slug))
        members = set(s.scalars(select(Membership.user_id).where(Membership.project_id == project_id)))
        wanted = ids_with_activity | members
        users = s.execute(select(User.id, User.username, User.display_name).order_by(User.username)).all()
    return {u.username: (u.display_name or u.username) for u in users if u.id in wanted}


def project_areas(settings: Settings, slug: str) -> list[str]:
    """:func:`area_names` on a fresh connection over the project's lake."""
    con, _ = lake.open_project(settings, slug)
    try:
        return area_names(con)
    finally:
        con.close()


def project_usernames(db: Database, settings: Settings, slug: str) -> list[str]:
    """:func:`usernames` (keys only) on a fresh connection over the project's lake."""
    con, _ = lake.open_project(settings, slug)
    try:
        ids = active_user_ids(con)
    finally:
        con.close()
    return list(usernames(db, slug, ids))
