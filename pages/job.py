"""Job details: status and timings, variables, files, child jobs, the error and the log."""

from __future__ import annotations

from ui import job_details
from ui.session import page_context

ctx = page_context()
job_id = job_details.pick_job(ctx)
if job_id is not None:
    job_details.show(ctx, job_id)
