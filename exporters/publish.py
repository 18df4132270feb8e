"""Publish: a parent job that runs a closed project's report set, then publishes the files.

Starting it creates one child job per chosen report (the ``reports`` variable; its config entry lists
the reports one may publish and preselects the default set, scans, zones, cost and statistics) and the
parent itself as ``waiting``. A report type with no registered exporter fails the start loudly
("Unknown export type: …") instead of publishing an incomplete set. No worker waits: when the last
child completes the runner makes the parent ``ready``, and its run here

1. copies every child's files to ``<publish_dir>/<project>/<YYYYMMDD_HHMMSS>/<type>/``, checking each
   against the sha256 recorded when it was written, then renames the folder into place (readers never
   see half a publication);
2. writes ``index.json`` there (and as this job's own file): each file with its size, sha256 and
   source job;
3. marks the project ``published`` (status and ``published_at``), with an audit event.

A failed or cancelled child fails the parent (the runner does that); cancelling the parent cancels
its children (the job service does that).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exporters.registry import BaseExporter
from exporthub import audit
from exporthub.context import ChildSpec, JobContext
from exporthub.db import get_database
from exporthub.errors import InvalidVariable, ProjectNotClosed
from exporthub.lake import fsync_dir
from exporthub.models import Project, utcnow
from exporthub.states import CLOSED_PROJECT_STATUSES, JobStatus, ProjectStatus

_CHUNK = 1 << 20


def _copy_verified(source: Path, target: Path, expected_sha256: str) -> int:
    """Copy ``source`` to ``target``, fsync it, and check it still has the sha256 recorded for it."""
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    if digest.hexdigest() != expected_sha256:
        raise RuntimeError(f"{source.name} changed since its job wrote it (sha256 differs); not published")
    return size


def _target_folder(ctx: JobContext) -> Path:
    root = ctx.settings.publish_dir / ctx.project.slug
    folder = root / ctx.local_stamp()
    return folder if not folder.exists() else root / f"{ctx.local_stamp()}_{ctx.job_id}"


def _mark_published(ctx: JobContext, folder: Path, files: int) -> None:
    with get_database(ctx.settings).write() as s:
        project = s.get(Project, ctx.project.id)
        assert project is not None
        before = project.status
        if before not in CLOSED_PROJECT_STATUSES:
            # Reopened while the reports ran: its data may have changed since they were made.
            raise ProjectNotClosed("Project must be closed (it was reopened while publishing)")
        project.status = str(ProjectStatus.PUBLISHED)
        project.published_at = utcnow()
        audit.record(s, action="publish", actor=ctx.user, project=project.slug,
                     target=f"project:{project.slug}",
                     detail=f"status {before} -> published by job {ctx.job_id}: {files} files in {folder}")


class PublishExporter(BaseExporter):
    export_type = "publish"
    formats = ("json",)
    uses_lake = False

    def plan_children(self, variables: Mapping[str, Any], config_types: frozenset[str]) -> list[ChildSpec]:
        """One child per chosen report, with that type's default variables (validated by the service)."""
        reports = list(variables.get("reports") or [])
        if not reports:
            raise InvalidVariable("reports", "choose at least one report to publish")
        if self.export_type in reports:
            raise InvalidVariable("reports", "a publication cannot contain another publication")
        return [ChildSpec(export_type=report, variables={}) for report in reports]

    def run(self, ctx: JobContext) -> None:
        not_done = [c for c in ctx.children if c.status is not JobStatus.COMPLETED]
        if not ctx.children or not_done:
            raise RuntimeError("publish runs only after all its child jobs completed")
        files = [(child, f) for child in ctx.children for f in child.files]
        total = sum(f.size for _, f in files) or 1
        folder = _target_folder(ctx)
        partial = folder.with_name(f".{folder.name}.partial")
        index: list[dict[str, Any]] = []
        done = 0
        try:
            for child, f in files:
                ctx.check_cancelled()
                target = partial / child.type / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                done += _copy_verified(f.path, target, f.sha256)
                index.append({"path": f"{child.type}/{f.name}", "size": f.size, "sha256": f.sha256,
                              "export_type": child.type, "source_job_id": child.id})
                ctx.progress(90 * done / total)
            manifest = json.dumps({
                "project": ctx.project.slug, "project_name": ctx.project.name, "publish_job_id": ctx.job_id,
                "published_at": ctx.started_at.isoformat(), "published_by": ctx.user, "files": index,
            }, ensure_ascii=False, indent=2)
            (partial / "index.json").write_text(manifest + "\n", encoding="utf-8")
            for sub in [*{p.parent for p in partial.rglob("*") if p.is_file()}, partial]:
                fsync_dir(sub)
            ctx.check_cancelled()
            partial.rename(folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        try:
            ctx.output_path("json").write_text(manifest + "\n", encoding="utf-8")
            # Once the project is marked published a cancel can no longer undo it, so stop honouring one.
            ctx.point_of_no_return()
            _mark_published(ctx, folder, len(index))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        ctx.info(f"Published {len(index)} files from {len(ctx.children)} jobs to {folder}")
        ctx.progress(100)


EXPORTER = PublishExporter()
