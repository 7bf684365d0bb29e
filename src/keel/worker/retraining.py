"""The worker's retraining job: the schedule trigger of each model's retraining job.

It queues a ``retrain`` job per (model, schedule period), keyed by both: however many workers
look, each period's scheduled retraining is queued, and so run, once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.services.job_kinds import RETRAIN
from keel.services.jobs import Jobs
from keel.services.retraining import Retraining
from keel.worker.scheduled import Job

SCHEDULER = Principal("keel-scheduler", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
# Queuing is idempotent (keyed by period), so looking often costs one indexed read per model.
EVERY_SECONDS = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def retraining_job(
    jobs: Jobs, retraining: Retraining, *, clock: Callable[[], datetime] = _utc_now
) -> Job:
    """Queue the retraining jobs whose schedule period began (once per model and period)."""

    def run() -> None:
        for model, period in retraining.due_periods(clock()):
            owner = retraining.registry.get_model(model)
            jobs.submit(
                SCHEDULER,
                RETRAIN,
                {"model": model, "trigger": "schedule", "period_start": period.isoformat()},
                team=owner.team,
                idempotency_key=f"retrain:schedule:{model}:{period.isoformat()}",
            )

    return Job("retraining", EVERY_SECONDS, run)
