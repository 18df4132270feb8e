"""The seam between the job engine and a queue.

The domain only needs to say "job N can run (at time T)". ``worker.py`` implements this with Huey;
tests and ``--inline`` runs use :class:`RecordingDispatcher` or :class:`NullDispatcher`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)


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


def hand_over(dispatcher: Dispatcher, job_ids: Iterable[int], *, eta: datetime | None = None) -> bool:
    """Enqueue committed jobs; ``False`` when the queue could not be reached.

    The job table is the truth and the jobs are committed already: a queue that is down must not
    turn a start into an error. Housekeeping hands ready jobs nobody claimed to the queue again.
    """
    ok = True
    for job_id in job_ids:
        try:
            dispatcher.enqueue(job_id, eta=eta)
        except Exception as exc:  # redis.ConnectionError and friends: the domain does not know Redis
            log.warning("could not hand job %s to the queue: %s", job_id, exc)
            ok = False
    return ok
