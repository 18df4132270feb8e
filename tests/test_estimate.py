"""JobService.estimate: the exporter's fast count with the same context a job gets, behind exports.view."""

from __future__ import annotations

import duckdb
import pytest
from sqlalchemy import func, select

from exporthub.errors import InvalidVariable, PermissionDenied
from exporthub.models import AuditEvent
from tests._lake import lake_sql


def _lake_count(hub, where: str = "NOT deleted") -> int:
    source = lake_sql(hub.settings, "demo-open", "scans")
    return int(
        duckdb.connect().execute(f"SELECT count(*) FROM {source} WHERE {where}").fetchone()[0]
    )


def _audit_count(hub) -> int:
    with hub.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)))


def test_estimate_counts_like_the_lake_and_writes_nothing(demo_hub):
    service = demo_hub.service()
    before = _audit_count(demo_hub)
    estimate = service.estimate("viewer", "demo-open", "scans", {"format": "csv"})
    assert estimate.rows == _lake_count(demo_hub) > 0
    assert estimate.approx_bytes > 0 and estimate.warnings == ()
    with_deleted = service.estimate("viewer", "demo-open", "scans", {"includeDeleted": True})
    assert with_deleted.rows == _lake_count(demo_hub, "TRUE") > estimate.rows
    assert _audit_count(demo_hub) == before
    assert service.list("viewer", "demo-open") == []


def test_estimate_sees_previous_export_sessions(demo_hub):
    service = demo_hub.service()
    job = service.start("analyst", "demo-open", "scans", {})
    demo_hub.run_queued()
    assert service.get("analyst", job.id).status == "completed"
    assert service.estimate("analyst", "demo-open", "scans", {"onlyNewSinceLastExport": True}).rows == 0
    service.reset_export_sessions("manager", job.id)
    again = service.estimate("analyst", "demo-open", "scans", {"onlyNewSinceLastExport": True})
    assert again.rows == _lake_count(demo_hub)


def test_estimate_needs_view_and_valid_variables(demo_hub):
    service = demo_hub.service()
    with pytest.raises(PermissionDenied):
        service.estimate("outsider", "demo-open", "scans", {})
    with pytest.raises(InvalidVariable) as info:
        service.estimate("viewer", "demo-open", "scans", {"format": "docx"})
    assert info.value.key == "format"
