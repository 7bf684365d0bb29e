"""The worker's notification jobs: send due webhook deliveries; evaluate SLO burn rates."""

from __future__ import annotations

import logging

from keel.services.notifications import Notifications
from keel.services.slos import Slos
from keel.worker.monitors import WORKER
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.notifications")
DELIVER_EVERY_SECONDS = 5.0
# The shortest burn-rate window is 5 minutes; looking every minute keeps a page timely.
SLO_EVERY_SECONDS = 60.0


def delivery_job(
    notifications: Notifications, *, every_seconds: float = DELIVER_EVERY_SECONDS
) -> Job:
    """A `Job` that POSTs every due webhook delivery (claimed, so several workers may run)."""

    def run() -> None:
        done = notifications.deliver_due()
        if done.attempted:
            log.info(
                "webhooks: %d attempted, %d delivered, %d to retry, %d dead",
                done.attempted,
                done.delivered,
                done.failed,
                done.dead,
            )

    return Job("webhook-deliveries", every_seconds, run)


def slo_job(slos: Slos, *, every_seconds: float = SLO_EVERY_SECONDS) -> Job:
    """A `Job` that evaluates every SLO's burn-rate rules (opening or resolving incidents)."""

    def run() -> None:
        slos.evaluate_all(WORKER)

    return Job("slo-burn-rates", every_seconds, run)
