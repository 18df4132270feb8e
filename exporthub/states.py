"""Job states as data: the enum, the named sets and the allowed transitions."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    WAITING = "waiting"  # scheduled for later, or waiting on child jobs
    READY = "ready"  # queued: a worker may pick it up
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# "One active job per (project, type)" covers these; the partial unique index uses the same list.
ACTIVE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.WAITING, JobStatus.READY, JobStatus.RUNNING})
# Finished jobs never change state again; they can only be removed (hidden) or retried (as a new job).
FINISHED_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
)
CANCELLABLE_STATUSES = ACTIVE_STATUSES
REMOVABLE_STATUSES = FINISHED_STATUSES
# A completed job is not retried: its files are still there, start a new export instead.
RETRYABLE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})

# The law exporthub.lifecycle enforces: every status change is one conditional UPDATE from a state to
# one of the states listed for it here.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # A waiting job becomes ready when it is due and its children completed; it fails with a child.
    JobStatus.WAITING: frozenset({JobStatus.READY, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.READY: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # running -> ready: a draining worker hands its job back, so another worker runs it (attempt + 1).
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.READY}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


class ProjectStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    PUBLISHED = "published"  # counts as closed


CLOSED_PROJECT_STATUSES: frozenset[ProjectStatus] = frozenset({ProjectStatus.CLOSED, ProjectStatus.PUBLISHED})


class LogLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
