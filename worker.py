"""The background worker: the Huey queue, its one job task, and the consumer with its housekeeping.

``SqliteHuey`` under the data dir by default; ``RedisHuey`` when ``EXPORTHUB_REDIS_URL`` is set.
Huey only carries a job id: the job table is the truth (DESIGN.md). Huey's result store is off (a
task's return value was never read), and so are Huey's periodic tasks: every consumer's scheduler
would enqueue its own copy. Periodic work runs from each worker's housekeeping thread instead, once
per period across all workers (:mod:`exporthub.periodic`).

Shutdown drains: SIGTERM stops intake, lets running jobs finish within
``EXPORTHUB_SHUTDOWN_GRACE_SECONDS`` and hands the rest back to the queue for another worker.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

import redis
from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from exporters import REGISTRY
from exporthub import maintenance, periodic, retention, runner, workers
from exporthub.db import Database, get_database
from exporthub.settings import Settings, get_settings

log = logging.getLogger("exporthub.worker")


class QueueHealth:
    """Whether this process can reach its queue, with back-off and quiet logging while it cannot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ok = True
        self.detail: str | None = None
        self._failures = 0
        self._last_logged = float("-inf")

    def succeeded(self) -> None:
        with self._lock:
            if not self.ok:
                log.warning("the queue is reachable again")
            self.ok, self.detail, self._failures = True, None, 0

    def failed(self, exc: Exception) -> float:
        """Record a failure; returns how long to back off (1 s doubling to 10 s)."""
        with self._lock:
            self._failures += 1
            detail = f"queue unreachable: {exc}"
            now = time.monotonic()
            if self.ok or now - self._last_logged >= 60:  # one line when it breaks, then one a minute
                log.error("%s (retrying with back-off; jobs wait in the database meanwhile)", detail)
                self._last_logged = now
            self.ok, self.detail = False, detail
            return float(min(10, 2 ** (self._failures - 1)))


QUEUE = QueueHealth()


class ResilientRedisHuey(RedisHuey):  # type: ignore[misc]
    """RedisHuey whose consumer side backs off quietly while Redis is unreachable, instead of logging a
    traceback several times a second. Enqueueing still raises: the domain's ``hand_over`` handles it."""

    def dequeue(self) -> Any:
        try:
            task = super().dequeue()
        except redis.RedisError as exc:
            time.sleep(QUEUE.failed(exc))
            return None
        QUEUE.succeeded()
        return task

    def read_schedule(self, timestamp: Any = None) -> Any:
        try:
            return super().read_schedule(timestamp)
        except redis.RedisError as exc:
            QUEUE.failed(exc)
            return []


def make_huey(settings: Settings) -> Huey:
    if settings.redis_url:
        # Short timeouts: an unreachable Redis must fail fast, not hang a start or a health check.
        pool = redis.ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
        return ResilientRedisHuey(settings.queue_name, connection_pool=pool, utc=True, results=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(settings.queue_name, filename=str(settings.huey_path), utc=True, timeout=30, results=False)


huey = make_huey(get_settings())


class HueyDispatcher:
    """The domain's :class:`~exporthub.dispatch.Dispatcher` (and queue probe), backed by the Huey queue."""

    def enqueue(self, job_id: int, *, eta: datetime | None = None) -> None:
        if eta is not None and eta > datetime.now(UTC):
            # Huey with utc=True expects naive UTC times. The job row's run_at is what counts: the runner
            # checks it on the database's clock, and housekeeping promotes it if this message is late.
            run_job_task.schedule((job_id,), eta=eta.astimezone(UTC).replace(tzinfo=None))
        else:
            run_job_task(job_id)

    def ping(self) -> None:
        """Raise when the queue cannot be reached."""
        if isinstance(huey, RedisHuey):
            huey.storage.conn.ping()
        else:
            huey.pending_count()

    def pending(self) -> int:
        """Messages waiting in the queue (ids of jobs to run)."""
        return int(huey.pending_count())


@huey.task()  # type: ignore[untyped-decorator]  # huey ships no types
def run_job_task(job_id: int) -> None:
    settings = get_settings()
    runner.run_job(get_database(settings), settings, job_id, dispatcher=HueyDispatcher(), registry=REGISTRY)


# ---------------------------------------------------------------------- the consumer


LAKE_MAINTENANCE = "lake-maintenance"  # its periodic_runs row
# A worker first asks for the lake's maintenance this long after it started: a fresh instance is not
# compacted at once by `exporthub up`, and a starting fleet does its own work first (on SQLite a
# compaction holds the one write lock while it commits).
LAKE_MAINTENANCE_FIRST_AFTER_SECONDS = 300.0


class _Worker:
    """One worker process: its id, its state, and the housekeeping thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database = get_database(settings)
        self.id = runner.default_worker_id()
        self.dispatcher = HueyDispatcher()
        self.draining = threading.Event()
        self.stop = threading.Event()
        self._lake_thread: threading.Thread | None = None
        self._started = time.monotonic()

    def state(self) -> tuple[str, str | None]:
        if not QUEUE.ok:
            return workers.UNHEALTHY, QUEUE.detail
        return (workers.DRAINING if self.draining.is_set() else workers.RUNNING), None

    def check_queue(self) -> None:
        try:
            self.dispatcher.ping()
        except Exception as exc:
            QUEUE.failed(exc)
        else:
            QUEUE.succeeded()

    def housekeeping_round(self) -> None:
        self.check_queue()
        workers.report(self.db, self.id, *self.state())
        if not QUEUE.ok or self.draining.is_set():
            return  # never take a periodic turn it cannot finish (it could not hand jobs to the queue)
        maintenance.tick_once_per_period(self.db, self.settings, self.dispatcher, holder=self.id)
        periodic.run_if_due(self.db, "retention", self.settings.retention_interval_seconds, self.id,
                            lambda: retention.cleanup(self.db, self.settings))
        periodic.run_if_due(self.db, "forget-workers", 3600, self.id, lambda: workers.forget_gone(self.db))
        if time.monotonic() - self._started >= LAKE_MAINTENANCE_FIRST_AFTER_SECONDS:
            self.maintain_lake()

    def maintain_lake(self) -> threading.Thread | None:
        """The lake's compaction and snapshot expiry (:func:`exporthub.lake.maintenance.maintain_all`),
        once per ``EXPORTHUB_LAKE_MAINTENANCE_INTERVAL_SECONDS`` across all workers. In a thread of its
        own: it can take minutes, and reaping and schedules must not wait for it. Returns the thread
        that asks for this period's run, or ``None`` while the previous one is still going."""
        if self._lake_thread is not None and self._lake_thread.is_alive():
            return None

        def run() -> None:
            from exporthub.lake.maintenance import maintain_all

            try:
                periodic.run_if_due(self.db, LAKE_MAINTENANCE, self.settings.lake_maintenance_interval_seconds,
                                    self.id, lambda: maintain_all(self.db, self.settings))
            except Exception:  # the next period retries
                log.exception("lake maintenance failed")

        self._lake_thread = threading.Thread(target=run, daemon=True, name="lake-maintenance")
        self._lake_thread.start()
        return self._lake_thread

    def housekeeping_loop(self) -> None:
        while not self.stop.wait(self.settings.reaper_interval_seconds):
            try:
                self.housekeeping_round()
            except Exception:  # keep going: the next round retries
                log.exception("housekeeping failed")


class _DrainingConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer with SIGTERM as the graceful signal, telling the worker when draining starts."""

    def __init__(self, worker: _Worker, **kwargs: Any) -> None:
        self._exporthub_worker = worker
        super().__init__(**kwargs)

    def _handle_signal(self, signum: int, frame: Any) -> None:
        super()._handle_signal(signum, frame)
        if signum == signal.SIGTERM:
            self._exporthub_worker.draining.set()


def run_consumer(settings: Settings | None = None) -> None:
    """Run the consumer until SIGTERM (drain: finish or hand back running jobs) or SIGINT."""
    settings = settings or get_settings()
    worker = _Worker(settings)
    workers.register(worker.db, worker.id, threads=settings.worker_threads)
    log.info("worker %s started (%d threads, grace %.0f s)", worker.id, settings.worker_threads,
             settings.shutdown_grace_seconds)
    try:
        worker.housekeeping_round()
    except Exception:
        log.exception("housekeeping failed")
    threading.Thread(target=worker.housekeeping_loop, daemon=True, name="housekeeping").start()
    consumer = _DrainingConsumer(
        worker,
        huey=huey,
        workers=settings.worker_threads,
        worker_type="thread",
        periodic=False,  # periodic work is the housekeeping thread's, once per period across workers
        initial_delay=0.05,
        backoff=1.15,
        max_delay=settings.queue_max_delay_seconds,  # Huey's default backs off to 10 s
        scheduler_interval=1,
        graceful_signal="TERM",
        shutdown_timeout=settings.shutdown_grace_seconds,
    )
    try:
        consumer.run()
    finally:
        worker.draining.set()
        # The grace period is over: hand every job still running back to the queue for another worker.
        handed = runner.interrupt_running(runner.HAND_BACK)
        deadline = time.monotonic() + 15
        while runner.running_job_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        if handed:
            log.warning("handed jobs back to the queue on shutdown: %s", handed)
        worker.stop.set()
        try:
            workers.report(worker.db, worker.id, workers.STOPPED)
        except Exception:
            log.exception("could not report the worker stopped")
