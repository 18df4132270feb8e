"""Housekeeping that keeps the job table honest: the reaper, due schedules, stranded parents and the
queue sweep. It only finds candidates; every status change is :mod:`exporthub.lifecycle`'s.

It runs once per ``EXPORTHUB_REAPER_INTERVAL_SECONDS`` across all processes (:mod:`exporthub.periodic`):
on workers whose queue is reachable, and from the web app, so that a killed sole worker never leaves a
job ``running`` with nobody to notice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from exporthub import lifecycle, periodic
from exporthub.db import Database
from exporthub.dispatch import Dispatcher, hand_over
from exporthub.job_files import delete_stored
from exporthub.runner import after_job_finished, default_worker_id
from exporthub.settings import Settings

log = logging.getLogger(__name__)

WORKER_LOST = lifecycle.WORKER_LOST
# A ready job nobody claimed for this long is handed to the queue again (the queue may have lost it).
REQUEUE_AFTER_SECONDS = 30.0  # the default of EXPORTHUB_REQUEUE_AFTER_SECONDS
HOUSEKEEPING = "housekeeping"


@dataclass(frozen=True)
class TickResult:
    reaped: list[int]
    promoted: list[int]
    requeued: list[int]


def reap_stale(db: Database, settings: Settings, dispatcher: Dispatcher) -> list[int]:
    """Fail running jobs silent for longer than the lease with "worker lost" (each exactly once, whoever
    else reaps or finishes at the same moment), then delete their folders and settle their parents."""
    with db.read() as s:
        candidates = lifecycle.stale_leases(s, settings.job_lease_seconds)
    reaped: list[int] = []
    for lease in candidates:
        won = lifecycle.reap(db, lease, settings.job_lease_seconds)
        if won is None:
            continue
        # Nothing in a reaped job's folder was recorded (besides the private work folder, maybe an output
        # a killed worker renamed into place just before it could record it): the commit above decided
        # that, so now the folder goes.
        delete_stored(settings, [], [(won.project_slug, won.export_type, won.job_id)])
        log.warning("job %s: %s", won.job_id, WORKER_LOST)
        after_job_finished(db, won.job_id, dispatcher)
        reaped.append(won.job_id)
    return reaped


def promote_due(db: Database, dispatcher: Dispatcher) -> list[int]:
    """Scheduled jobs whose time came become ready and are queued (a backstop for the queue's eta)."""
    woken: list[int] = []
    with db.read() as s:
        candidates = lifecycle.due_candidates(s)
    for job_id in candidates:
        with db.write() as s:
            if lifecycle.promote(s, job_id):
                woken.append(job_id)
            else:  # a parent: its children decide (failed, or ready once they all completed)
                wake = lifecycle.settle_parent(s, job_id)
                if wake is not None:
                    woken.append(wake)
    hand_over(dispatcher, woken)
    return woken


def settle_stranded_parents(db: Database, dispatcher: Dispatcher) -> list[int]:
    """Parents still waiting although none of their children is active (a worker died between a child's
    end and waking its parent): fail them or hand them to the queue, as their children decide."""
    woken: list[int] = []
    with db.read() as s:
        candidates = lifecycle.waiting_parents(s)
    for parent_id in candidates:
        with db.write() as s:
            wake = lifecycle.settle_parent(s, parent_id)
        if wake is not None:
            woken.append(wake)
    hand_over(dispatcher, woken)
    return woken


class _QueueDown(Exception):
    pass


def requeue_stale_ready(
    db: Database, dispatcher: Dispatcher, after_seconds: float = REQUEUE_AFTER_SECONDS
) -> list[int]:
    """Hand ready jobs that nobody claimed back to the queue (it may have lost them), each at most once
    per ``after_seconds`` across all processes. A process that cannot reach the queue rolls
    its stamp back, so it never takes the turn from one that can."""
    try:
        with db.write() as s:
            ids = lifecycle.mark_requeued(s, older_than_seconds=after_seconds)
            if ids and not hand_over(dispatcher, ids):
                raise _QueueDown
    except _QueueDown:
        return []
    return ids


def tick(db: Database, settings: Settings, dispatcher: Dispatcher) -> TickResult:
    """One round of housekeeping (whoever calls it; see :func:`tick_if_due` for the singleton)."""
    return TickResult(
        reaped=reap_stale(db, settings, dispatcher),
        promoted=promote_due(db, dispatcher) + settle_stranded_parents(db, dispatcher),
        requeued=requeue_stale_ready(db, dispatcher, settings.requeue_after_seconds),
    )


def tick_once_per_period(db: Database, settings: Settings, dispatcher: Dispatcher,
                         holder: str | None = None) -> TickResult | None:
    """:func:`tick` if no process ran it within the last reaper interval (``None`` otherwise)."""
    return periodic.run_if_due(db, HOUSEKEEPING, settings.reaper_interval_seconds, holder or default_worker_id(),
                               lambda: tick(db, settings, dispatcher))


_last_try = float("-inf")
_try_lock = threading.Lock()


def tick_if_due(
    db: Database, settings: Settings, dispatcher: Dispatcher, *, now: float | None = None
) -> TickResult | None:
    """For the web app, which calls it on every script run: housekeeping while anyone has the app open,
    even when no worker is left to notice a killed one.

    Costs a clock read when this process asked within the interval; otherwise one conditional update
    decides whether this process runs the period's tick. Returns ``None`` when it did not run. Errors
    are logged, never raised to the page.
    """
    global _last_try
    now = time.monotonic() if now is None else now
    if now - _last_try < settings.reaper_interval_seconds or not _try_lock.acquire(blocking=False):
        return None
    try:
        _last_try = now
        return tick_once_per_period(db, settings, dispatcher)
    except Exception:  # housekeeping must never break a page; the next due call retries
        log.exception("housekeeping from the web app failed")
        return None
    finally:
        _try_lock.release()
