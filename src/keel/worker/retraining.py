"""The worker's retraining job: the schedule trigger of each model's retraining job."""

from __future__ import annotations

from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.services.retraining import Retraining
from keel.worker.loop import Job

SCHEDULER = Principal("keel-scheduler", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
EVERY_SECONDS = 60.0


def retraining_job(retraining: Retraining) -> Job:
    """Every minute, run the retraining jobs whose schedule interval has passed."""

    def run() -> None:
        retraining.run_due(SCHEDULER)

    return Job("retraining", EVERY_SECONDS, run)
