"""The job list reads a page of a project's history through an index, never by sorting all of it.

The live list asks for a page of jobs every two seconds per open browser. Ordered by id with only a
``(project_id, created_at)`` index, the database had to sort the project's whole history on every
call; ``ix_jobs_project_id`` (migration 0006) hands the rows over in order. These tests capture the
exact statement ``JobService.list`` sends and ask each database for its plan.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, insert, text

from exporthub.db import Database, forget_databases
from exporthub.models import Job, Membership, Project, User
from tests._hubs import make_hub

HISTORY = 3_000


def _seed_history(db: Database) -> None:
    """Two projects with a long history each, so a plan that sorts the history has something to sort."""
    with db.write() as s:
        user = User(username="analyst", display_name="A", active=True, is_admin=False, hourly_rate=0)
        projects = [Project(slug=f"p{i}", name=f"P{i}", timezone="UTC", status="open") for i in (1, 2)]
        s.add_all([user, *projects])
        s.flush()
        s.add_all([Membership(user_id=user.id, project_id=p.id, role="analyst") for p in projects])
        rows = [
            {"project_id": projects[i % 2].id, "export_type": "scans", "status": "completed", "progress": 100,
             "variables": {}, "user_id": user.id, "cancel_requested": False, "export_sessions_reset": False,
             "attempt": 1}
            for i in range(HISTORY * 2)
        ]
        s.execute(insert(Job), rows)


def _list_statement(db: Database, service, **filters) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "FROM jobs" in statement and "ORDER BY jobs.id DESC" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        assert len(service.list("analyst", "p1", **filters)) == 10
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(seen) == 1, seen
    return seen[0]


FILTERS = [{"limit": 10}, {"limit": 10, "top_level_only": True}, {"limit": 10, "offset": 40, "top_level_only": True}]


@pytest.mark.parametrize("filters", FILTERS)
def test_sqlite_plan_pages_through_the_index_without_sorting(tmp_path, monkeypatch, filters):
    hub = make_hub(tmp_path, monkeypatch)
    _seed_history(hub.db)
    with hub.db.write() as s:
        s.execute(text("ANALYZE"))
    statement, params = _list_statement(hub.db, hub.service(), **filters)
    raw = hub.db.engine.raw_connection()
    try:
        plan = [row[-1] for row in raw.cursor().execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()]
    finally:
        raw.close()
    forget_databases()
    assert not any("TEMP B-TREE" in step for step in plan), plan  # a sort of every matching row
    assert any("ix_jobs_project_id" in step for step in plan), plan


@pytest.mark.postgres
@pytest.mark.parametrize("filters", FILTERS)
def test_postgresql_plan_pages_through_the_index_without_sorting(tmp_path, monkeypatch, pg_url, filters):
    hub = make_hub(tmp_path, monkeypatch, DATABASE_URL=pg_url, SECRET_KEY="x" * 32)
    _seed_history(hub.db)
    with hub.db.write() as s:
        s.execute(text("ANALYZE jobs"))
    statement, params = _list_statement(hub.db, hub.service(), **filters)
    raw = hub.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"EXPLAIN {statement}", params)
        plan = [row[0] for row in cursor.fetchall()]
    finally:
        raw.close()
    forget_databases()
    # PostgreSQL may walk the primary key backwards and filter by project instead (it knows how the
    # projects share the history); either way the rows come out in order and nothing is sorted.
    assert not any("Sort" in step for step in plan), plan
    assert any("Index Scan Backward" in step for step in plan), plan
