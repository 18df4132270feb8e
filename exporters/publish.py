"""Publish: a parent job that runs a closed project's report set, then publishes the files.

Starting it creates one child job per chosen report (the ``reports`` variable; its config entry lists
the reports one may publish and preselects the default set, scans, zones, cost and statistics) and the
parent itself as ``waiting``. A report type with no registered exporter fails the start loudly
("Unknown export type: …") instead of publishing an incomplete set. No worker waits: when the last
child completes the lifecycle makes the parent ``ready``, and its run here

1. copies every child's files into this job's own files, checking each against the sha256 recorded
   when it was written, so the publication lives in the files store like any job's files (and the
   hub lists them on the publish job);
2. writes ``index.json`` beside them: each file with its size, sha256 and source job;
3. asks for the project to be marked ``published`` in the very transaction that completes this job:
   the project is published exactly when the job completed, and a project reopened meanwhile fails it.

A failed or cancelled child fails the parent; cancelling the parent cancels its children (both in
:mod:`exporthub.lifecycle`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from exporters.registry import BaseExporter
from exporthub.context import ChildSpec, JobContext
from exporthub.errors import InvalidVariable, ProjectNotClosed
from exporthub.states import CLOSED_PROJECT_STATUSES, JobStatus

_CHUNK = 1 << 20


def _copy_verified(source: BinaryIO, name: str, target: Path, expected_sha256: str) -> int:
    """Copy ``source`` (a stored file) to ``target``, fsync it, and check it still has the sha256
    recorded for it."""
    digest, size = hashlib.sha256(), 0
    with source as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    if digest.hexdigest() != expected_sha256:
        raise RuntimeError(f"{name} changed since its job wrote it (sha256 differs); not published")
    return size


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
        if ctx.project.status not in CLOSED_PROJECT_STATUSES:
            raise ProjectNotClosed("Project must be closed (it was reopened while its reports ran)")
        files = [(child, f) for child in ctx.children for f in child.files]
        total = sum(f.size for _, f in files) or 1
        index: list[dict[str, Any]] = []
        done = 0
        for child, f in files:
            ctx.check_cancelled()
            target = ctx.workdir / f.name
            if target.exists():
                raise RuntimeError(f"two reports produced a file named {f.name}; not published")
            done += _copy_verified(ctx.open_stored(f.storage_key), f.name, target, f.sha256)
            index.append({"name": f.name, "size": f.size, "sha256": f.sha256, "export_type": child.export_type,
                          "source_job_id": child.id})
            ctx.progress(90 * done / total)
        manifest = json.dumps({
            "project": ctx.project.slug, "project_name": ctx.project.name, "publish_job_id": ctx.job_id,
            "published_at": ctx.started_at.isoformat(), "published_by": ctx.user, "files": index,
        }, ensure_ascii=False, indent=2)
        ctx.output_path("json", stem="index").write_text(manifest + "\n", encoding="utf-8")
        ctx.publish_project_on_completion()
        ctx.info(f"Publishing {len(index)} files from {len(ctx.children)} jobs")
        ctx.progress(100)


EXPORTER = PublishExporter()
