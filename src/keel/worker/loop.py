"""The worker loop: runs scheduled jobs until told to stop.

Jobs (monitor runs, webhook deliveries, budget checks...) arrive with later features; the loop is
here so `keel up` already runs API, dashboard and worker in one process, and stops cleanly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.services.backend import Backend

log = logging.getLogger("keel.worker")


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], None]


@dataclass
class Worker:
    jobs: list[Job] = field(default_factory=list)
    tick_seconds: float = 1.0
    ticks: int = 0
    last_tick: datetime | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _due: dict[str, float] = field(default_factory=dict)

    def run_once(self, now: float) -> list[str]:
        """Run every job that is due at monotonic time ``now``; return the names that ran."""
        ran: list[str] = []
        for job in self.jobs:
            if now >= self._due.get(job.name, 0.0):
                self._due[job.name] = now + job.every_seconds
                try:
                    job.run()
                except Exception:
                    # One failing job must not stop the others; the traceback goes to the log.
                    log.exception("worker job %s failed", job.name)
                ran.append(job.name)
        self.ticks += 1
        self.last_tick = datetime.now(UTC)
        return ran

    def run_forever(self, clock: Callable[[], float]) -> None:
        while not self._stop.is_set():
            self.run_once(clock())
            self._stop.wait(self.tick_seconds)

    def stop(self) -> None:
        self._stop.set()


def scheduled_jobs(backend: Backend) -> list[Job]:
    """The jobs every worker runs (`keel up` starts one beside the API)."""
    from keel.worker.audit import checkpoint_job
    from keel.worker.deployments import deployment_job
    from keel.worker.monitors import monitor_job  # they import Job from here
    from keel.worker.notifications import delivery_job, slo_job
    from keel.worker.retention import retention_job
    from keel.worker.retraining import retraining_job

    return [
        monitor_job(backend.monitoring),
        delivery_job(backend.notifications),
        slo_job(backend.slos),
        retraining_job(backend.retraining),
        retention_job(backend.telemetry),
        checkpoint_job(backend.audit, every_minutes=backend.settings.audit_checkpoint_minutes),
        deployment_job(backend.deployments),
    ]
