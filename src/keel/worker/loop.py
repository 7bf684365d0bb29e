"""The worker: scheduled work (monitors, webhooks, SLOs, retention, retraining schedules, audit
checkpoints) and the job queue.

`keel worker` runs one as its own process; `keel up` runs one beside the API unless told
``--no-worker``. Several may run at once (replicas, separate worker hosts):

- scheduled work runs once per period across all of them: a worker runs a piece of work only if
  it claimed (name, period start) first (`PeriodClaims`), so two replicas never record the same
  monitor window or queue the same scheduled retraining twice;
- queued jobs are claimed one at a time with a lease (`keel.services.jobs`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from keel.worker.scheduled import Job

if TYPE_CHECKING:
    from keel.services.backend import Backend
    from keel.services.jobs import Jobs

log = logging.getLogger("keel.worker")

__all__ = ["Job", "JobRunner", "PeriodClaims", "Worker", "scheduled_jobs", "worker_name"]


def worker_name() -> str:
    """This worker's name in leases and claims: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _wall() -> datetime:
    return datetime.now(UTC)


class PeriodClaims(Protocol):
    def claim_period(self, name: str, period_start: datetime, owner: str) -> bool: ...


@dataclass
class Worker:
    """Runs scheduled jobs. Without ``periods`` every due job runs here (one process alone);
    with them, a job runs in a period only where its claim for that period succeeded."""

    jobs: list[Job] = field(default_factory=list)
    tick_seconds: float = 1.0
    periods: PeriodClaims | None = None
    name: str = field(default_factory=worker_name)
    wall: Callable[[], datetime] = _wall
    ticks: int = 0
    last_tick: datetime | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _due: dict[str, float] = field(default_factory=dict)
    _tried: dict[str, datetime] = field(default_factory=dict)

    def run_once(self, now: float) -> list[str]:
        """Run every job that is due at monotonic time ``now``; return the names that ran."""
        ran: list[str] = []
        for job in self.jobs:
            if self.periods is None:
                if now < self._due.get(job.name, 0.0):
                    continue
                self._due[job.name] = now + job.every_seconds
            elif not self._claimed(job):
                continue
            try:
                job.run()
            except Exception:
                # One failing job must not stop the others; the traceback goes to the log.
                log.exception("worker job %s failed", job.name)
            ran.append(job.name)
        self.ticks += 1
        self.last_tick = datetime.now(UTC)
        return ran

    def _claimed(self, job: Job) -> bool:
        """Try each period once: the first tick of a new period asks for its claim."""
        assert self.periods is not None
        every = max(job.every_seconds, 1.0)
        at = self.wall()
        start = datetime.fromtimestamp(at.timestamp() // every * every, UTC)
        if self._tried.get(job.name) == start:
            return False
        self._tried[job.name] = start
        try:
            return self.periods.claim_period(job.name, start, self.name)
        except Exception:
            log.exception("claiming %s for %s failed", job.name, start.isoformat())
            return False

    def run_forever(self, clock: Callable[[], float]) -> None:
        while not self._stop.is_set():
            self.run_once(clock())
            self._stop.wait(self.tick_seconds)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class JobRunner:
    """Claims and runs queued jobs one at a time until stopped; between jobs it polls."""

    jobs: Jobs
    name: str = field(default_factory=worker_name)
    poll_seconds: float = 0.5
    done: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run_pending(self) -> int:
        """Run queued jobs until none is claimable (or stopped); return how many ran."""
        ran = 0
        while not self._stop.is_set():
            try:
                job = self.jobs.run_next(self.name)
            except Exception:
                # The database went away for a moment: try again at the next poll.
                log.exception("claiming a job failed")
                return ran
            if job is None:
                return ran
            ran += 1
            self.done += 1
            log.info("job %d (%s) %s", job.id, job.kind, job.state.value)
        return ran

    def run_forever(self) -> None:
        while not self._stop.is_set():
            self.run_pending()
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()


def scheduled_jobs(backend: Backend) -> list[Job]:
    """The scheduled work every worker runs (`keel up` starts one beside the API)."""
    from keel.worker.audit import checkpoint_job
    from keel.worker.budgets import budget_job
    from keel.worker.deployments import deployment_job
    from keel.worker.drills import drill_job
    from keel.worker.monitors import monitor_job
    from keel.worker.notifications import delivery_job, slo_job
    from keel.worker.retention import retention_job
    from keel.worker.retraining import retraining_job

    return [
        monitor_job(backend.monitoring, every_seconds=backend.settings.monitor_check_seconds),
        delivery_job(backend.notifications),
        slo_job(backend.slos),
        retraining_job(backend.jobs, backend.retraining),
        retention_job(backend.telemetry),
        checkpoint_job(backend.audit, every_minutes=backend.settings.audit_checkpoint_minutes),
        budget_job(backend.costs),
        Job("forget-periods", FORGET_EVERY_SECONDS, lambda: _forget_periods(backend)),
        deployment_job(backend.deployments),
        drill_job(backend.jobs, backend.drills),
    ]


# Period claims matter only while their period is current; a day's worth is kept for reading.
FORGET_EVERY_SECONDS = 3600.0
KEEP_PERIODS = timedelta(days=1)


def _forget_periods(backend: Backend) -> None:
    backend.jobs.store.forget_periods_before(_wall() - KEEP_PERIODS)
