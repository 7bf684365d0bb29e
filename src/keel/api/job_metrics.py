"""The job queue on ``/metrics``: depth and the oldest queued job's age, per job kind.

Read from the database at scrape time (one grouped query), so every API replica reports the
same, shared queue. Every known kind is reported, 0 when none is queued, so an alert on the
age never sees a series vanish.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from keel.services.jobs import Jobs


class JobQueueMetrics(Collector):
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def collect(self) -> Iterable[GaugeMetricFamily]:
        queued = GaugeMetricFamily(
            "keel_jobs_queued", "Jobs waiting for a worker, by kind.", labels=["kind"]
        )
        oldest = GaugeMetricFamily(
            "keel_job_oldest_age_seconds",
            "Seconds the oldest queued job of each kind has waited (0 when none waits).",
            labels=["kind"],
        )
        depth = {d.kind: d for d in self.jobs.queue_depth()}
        for kind in sorted(set(self.jobs.kinds) | set(depth)):
            found = depth.get(kind)
            queued.add_metric([kind], float(found.queued) if found else 0.0)
            oldest.add_metric([kind], found.oldest_age_seconds if found else 0.0)
        yield queued
        yield oldest


def install_job_metrics(registry: CollectorRegistry, jobs: Jobs) -> None:
    registry.register(JobQueueMetrics(jobs))
