"""The background worker: the Huey instance, its one job task, housekeeping, and the consumer.

``SqliteHuey`` under the data dir by default; ``RedisHuey`` when ``EXPORTHUB_REDIS_URL`` is set.
Huey only carries a job id: the job table is the truth (DESIGN.md).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer

from exporthub import maintenance, retention, runner
from exporthub.db import get_database
from exporthub.settings import Settings, get_settings

log = logging.getLogger("exporthub.worker")


def make_huey(settings: Settings) -> Huey:
    if settings.redis_url:
        return RedisHuey(settings.queue_name, url=settings.redis_url, utc=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(settings.queue_name, filename=str(settings.huey_path), utc=True, timeout=30)


huey = make_huey(get_settings())


class HueyDispatcher:
    """The domain's :class:`~exporthub.dispatch.Dispatcher`, backed by the Huey queue."""

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        if eta is not None and eta > datetime.now(UTC):
            # Huey with utc=True expects naive UTC times.
            run_job_task.schedule((job_id,), eta=eta.astimezone(UTC).replace(tzinfo=None))
        else:
            run_job_task(job_id)


@huey.task()
def run_job_task(job_id: int) -> str | None:
    settings = get_settings()
    status = runner.run_job(get_database(settings), settings, job_id, dispatcher=HueyDispatcher())
    return None if status is None else str(status)


@huey.periodic_task(crontab(minute="*"))
def housekeeping_task() -> None:
    """A backstop for workers without the housekeeping thread (the consumer runs one every few seconds)."""
    settings = get_settings()
    maintenance.tick(get_database(settings), settings, HueyDispatcher())


@huey.periodic_task(crontab(minute="7"))
def retention_task() -> None:
    settings = get_settings()
    retention.cleanup(get_database(settings), settings)


def _housekeeping_loop(stop: threading.Event, settings: Settings) -> None:
    db = get_database(settings)
    dispatcher = HueyDispatcher()
    while not stop.wait(settings.reaper_interval_seconds):
        try:
            maintenance.tick(db, settings, dispatcher)
        except Exception:  # keep going: the next tick retries
            log.exception("housekeeping failed")


def run_consumer(settings: Settings | None = None) -> None:
    """Run the consumer until SIGINT (let jobs finish) or SIGTERM (fail running jobs cleanly)."""
    settings = settings or get_settings()
    db = get_database(settings)
    maintenance.tick(db, settings, HueyDispatcher())
    stop = threading.Event()
    threading.Thread(target=_housekeeping_loop, args=(stop, settings), daemon=True, name="housekeeping").start()
    consumer = Consumer(
        huey,
        workers=settings.worker_threads,
        worker_type="thread",
        periodic=True,
        initial_delay=0.05,
        backoff=1.15,
        max_delay=settings.queue_max_delay_seconds,  # Huey's default backs off to 10 s
        scheduler_interval=1,
    )
    try:
        consumer.run()
    finally:
        stop.set()
        # Thread workers cannot be killed; after SIGTERM, interrupt their jobs so each one ends
        # failed (with its partial output deleted) instead of being left "running".
        stopped = runner.interrupt_running("worker stopped (shutdown signal)")
        deadline = time.monotonic() + 20
        while runner.running_job_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopped:
            log.warning("interrupted jobs on shutdown: %s", stopped)
