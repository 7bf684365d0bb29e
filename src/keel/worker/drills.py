"""The worker's drill job: queue each scheduled drill once per schedule period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from keel.services.drill_jobs import queue_scheduled
from keel.services.drills import Drills
from keel.services.jobs import Jobs
from keel.worker.scheduled import Job

# Queuing is idempotent (keyed by schedule and period), so looking often costs little.
EVERY_SECONDS = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def drill_job(jobs: Jobs, drills: Drills, *, clock: Callable[[], datetime] = _utc_now) -> Job:
    """Queue the drills whose schedule period began."""

    def run() -> None:
        queue_scheduled(jobs, drills, clock())

    return Job("drills", EVERY_SECONDS, run)
