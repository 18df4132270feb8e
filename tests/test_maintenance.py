"""Housekeeping: ready jobs nobody claimed are handed back to the queue, once per window."""

from __future__ import annotations

from datetime import timedelta

from exporthub.maintenance import REQUEUE_AFTER_SECONDS, requeue_stale_ready
from exporthub.models import Job, utcnow

REQUEUE_AFTER = timedelta(seconds=REQUEUE_AFTER_SECONDS)


def _age(hub, job_id: int, by: timedelta) -> None:
    with hub.db.write() as s:
        job = s.get(Job, job_id)
        job.created_at -= by
        if job.requeued_at is not None:
            job.requeued_at -= by


def test_an_unclaimed_ready_job_is_requeued_once_per_window(demo_hub):
    job = demo_hub.service().start("analyst", "demo-open", "scans", {"format": "csv"})
    demo_hub.dispatcher.enqueued.clear()
    assert requeue_stale_ready(demo_hub.db, demo_hub.dispatcher) == []  # too young
    _age(demo_hub, job.id, REQUEUE_AFTER + timedelta(seconds=1))
    assert requeue_stale_ready(demo_hub.db, demo_hub.dispatcher) == [job.id]
    assert requeue_stale_ready(demo_hub.db, demo_hub.dispatcher) == []  # not again within the window
    _age(demo_hub, job.id, REQUEUE_AFTER + timedelta(seconds=1))
    assert requeue_stale_ready(demo_hub.db, demo_hub.dispatcher) == [job.id]
    assert demo_hub.dispatcher.enqueued == [(job.id, None), (job.id, None)]
    with demo_hub.db.read() as s:
        assert s.get(Job, job.id).requeued_at > utcnow() - timedelta(seconds=5)


def test_a_requeued_job_still_runs_once(demo_hub):
    from exporthub.states import JobStatus

    job = demo_hub.service().start("analyst", "demo-open", "scans", {"format": "csv"})
    assert demo_hub.run(job.id) is JobStatus.COMPLETED
    assert demo_hub.run(job.id) is None  # a duplicate queue message finds nothing to claim


def test_a_process_that_cannot_reach_the_queue_never_takes_the_requeue_turn(demo_hub):
    class Down:
        def enqueue(self, job_id, *, eta=None):  # type: ignore[no-untyped-def]
            raise ConnectionError("redis is down")

    job = demo_hub.service().start("analyst", "demo-open", "scans", {"format": "csv"})
    _age(demo_hub, job.id, REQUEUE_AFTER + timedelta(seconds=1))
    assert requeue_stale_ready(demo_hub.db, Down()) == []
    with demo_hub.db.read() as s:
        assert s.get(Job, job.id).requeued_at is None  # rolled back: a healthy process gets it at once
    assert requeue_stale_ready(demo_hub.db, demo_hub.dispatcher) == [job.id]
