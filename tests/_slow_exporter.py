"""A test-only export type for the process tests: it works for ``seconds`` (checking cancellation like a
writer does), then writes one small csv and records one export session, so every end state of the
engine (files, sessions, logs) can be checked without depending on the speed of a real export.

Registered in worker and CLI processes through ``EXPORTHUB_EXTRA_EXPORTERS=tests._slow_exporter``,
with a config that has a ``slow`` entry (:func:`write_config`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from exporters.registry import BaseExporter
from exporthub.context import ExportSessionRecord, JobContext
from exporthub.settings import _SHIPPED_EXPORT_CONFIG


class SlowExporter(BaseExporter):
    export_type = "slow"
    formats = ("csv",)
    uses_lake = False

    def run(self, ctx: JobContext) -> None:
        seconds = float(ctx.variables.get("seconds") or 0)
        end = time.monotonic() + seconds
        path = ctx.output_path("csv")
        with open(path, "w", encoding="utf-8") as out:
            out.write("job\n")
            linger = float(ctx.variables.get("linger") or 0)  # seconds it goes on after a cancel request
            while time.monotonic() < end:
                if ctx.cancel_event.is_set() and linger > 0:  # like a writer finishing its batch first
                    time.sleep(linger)
                    linger = 0
                ctx.progress(100 * (1 - (end - time.monotonic()) / seconds))  # checks cancellation
                time.sleep(0.05)
            out.write(f"{ctx.job_id}\n")
        ctx.record_export_sessions([ExportSessionRecord(zone_id=1, watermark_scan_id=ctx.job_id, scan_count=1)])


EXPORTER = SlowExporter()


def write_config(path: Path) -> Path:
    """The shipped export config plus the ``slow`` type, written to ``path``."""
    config = json.loads(_SHIPPED_EXPORT_CONFIG.read_text(encoding="utf-8"))
    config["slow"] = {
        "title": "Slow", "group": "Test", "allowWhenProjectNotClosed": True,
        "exportVariables": [{"key": "seconds", "title": "Seconds", "type": "number", "value": 1, "min": 0,
                             "max": 600},
                            {"key": "linger", "title": "Linger", "type": "number", "value": 0, "min": 0,
                             "max": 60}],
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path
