"""The seam between the job engine and a queue.

The domain only needs to say "job N can run (at time T)". ``worker.py`` implements this with Huey;
tests and ``--inline`` runs use :class:`RecordingDispatcher` or :class:`NullDispatcher`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Dispatcher(Protocol):
    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        """Hand the job id to a worker, now or at ``eta``. Must be safe to call twice for one job."""
        ...


class NullDispatcher:
    """Drops every job on the floor: for inline runs, where the caller runs the job itself."""

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        return None


class RecordingDispatcher:
    """Remembers what was enqueued; lets tests drive the engine with no queue at all."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[int, datetime | None]] = []

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        self.enqueued.append((job_id, eta))
