"""Helpers shared by the hub page's tests (pages/exports.py)."""

from __future__ import annotations


def _run_scans(hub, user: str = "analyst", **variables):
    service = hub.service()
    job = service.start(user, "demo-open", "scans", {"format": "csv", **variables})
    hub.run_queued()
    return service.get(user, job.id)
