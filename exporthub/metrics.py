"""Prometheus metrics, read from the database at scrape time through ``prometheus-client``.

Every replica serves the same numbers (the job table is the truth), so a scrape of any web replica
sees the whole fleet: jobs by status and type, run durations, the queue and the workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from exporthub import workers
from exporthub.db import Database
from exporthub.health import QueueProbe
from exporthub.models import Job
from exporthub.settings import Settings
from exporthub.states import JobStatus

# Seconds from start to end of a run: the bucket bounds of the duration histogram.
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600)


class JobMetrics(Collector):
    def __init__(self, db: Database, settings: Settings, queue: QueueProbe | None = None) -> None:
        self.db, self.settings, self.queue = db, settings, queue

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("exporthub_jobs", "Jobs in the job table (not removed), by status and type",
                                 labels=["status", "type"])
        with self.db.read() as s:
            for status, export_type, count in s.execute(
                select(Job.status, Job.export_type, func.count()).where(Job.removed_at.is_(None))
                .group_by(Job.status, Job.export_type)
            ):
                jobs.add_metric([str(JobStatus(status)), export_type], int(count))
            finished = s.execute(
                select(Job.export_type, Job.started_at, Job.finished_at)
                .where(Job.status == JobStatus.COMPLETED, Job.started_at.is_not(None), Job.finished_at.is_not(None))
            ).all()
        yield jobs
        yield self._durations(finished)
        stats = workers.queue_stats(self.db)
        yield GaugeMetricFamily("exporthub_queue_ready_jobs", "Jobs ready and waiting for a worker", value=stats.ready)
        yield GaugeMetricFamily("exporthub_queue_oldest_ready_seconds", "How long the oldest ready job has waited",
                                value=stats.oldest_ready_seconds or 0.0)
        if self.queue is not None:
            try:
                pending = float(self.queue.pending())
            except Exception:  # an unreachable queue is a health problem, not a scrape error
                pending = float("nan")
            yield GaugeMetricFamily("exporthub_queue_pending_messages", "Messages in the queue", value=pending)
        by_state = GaugeMetricFamily("exporthub_workers", "Live workers by state", labels=["state"])
        fleet = workers.list_workers(self.db, self.settings)
        for state in (workers.RUNNING, workers.DRAINING, workers.UNHEALTHY):
            by_state.add_metric([state], sum(1 for w in fleet if w.state == state))
        yield by_state

    @staticmethod
    def _durations(rows: Sequence[tuple[str, object, object]]) -> Metric:
        histogram = GaugeHistogramMetricFamily(
            "exporthub_job_duration_seconds", "Run time of completed jobs still in the table, by type",
            labels=["type"])
        by_type: dict[str, list[float]] = {}
        for export_type, started, finished in rows:
            by_type.setdefault(export_type, []).append((finished - started).total_seconds())  # type: ignore[operator]
        for export_type, seconds in sorted(by_type.items()):
            buckets = [(str(bound), float(sum(1 for v in seconds if v <= bound))) for bound in DURATION_BUCKETS]
            buckets.append(("+Inf", float(len(seconds))))
            histogram.add_metric([export_type], buckets, gsum_value=sum(seconds))
        return histogram


def render(db: Database, settings: Settings, queue: QueueProbe | None = None) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobMetrics(db, settings, queue))
    return generate_latest(registry)
