"""``exporthub compact PROJECT``: lake maintenance of one project, as an audited operator action.

The work itself is :func:`exporthub.lake.maintenance.maintain_project`: compaction of small files as
``replace`` snapshots, then expiry of snapshots no reader needs and deletion of unreferenced files.
It is safe while jobs run and while imports commit (an import that commits first makes the
compaction start again on the new snapshot). The worker runs the same for every project on a
schedule (:func:`exporthub.lake.maintenance.maintain_all`).
"""

from __future__ import annotations

from exporthub import audit
from exporthub.access import get_project
from exporthub.authorization import Actor, actor_name, authorize
from exporthub.db import Database
from exporthub.errors import ExporthubError
from exporthub.lake.maintenance import MaintenanceReport, maintain_project
from exporthub.settings import Settings

__all__ = ["MaintenanceReport", "compact"]


def compact(db: Database, settings: Settings, actor: Actor, slug: str) -> MaintenanceReport:
    """Compact and expire the project's lake. Raises :class:`PermissionDenied` or :class:`NotFound`
    (or :class:`~exporthub.lake.commit.LakeConflict` when writers kept committing); one audit event."""
    try:
        with db.read() as s:
            authorize(s, actor)
            get_project(s, slug)
        report = maintain_project(db, settings, slug)
    except ExporthubError as exc:
        audit.record_refusal(db, exc, action="compact", actor=actor_name(actor), project=slug)
        raise
    with db.write() as s:
        audit.record(s, action="compact", actor=actor_name(actor), project=slug, detail=report.summary())
    return report
