"""The worker's deployment job: analyse every rollout in progress, advance, promote or abort it.

The job asks once a second (one indexed query for the active deployments); each canary is
measured only every `analysis.interval` of its plan, on the deployments service's clock (which
tests inject), so an abort reaches traffic within one interval plus the gateway's 1 s cache.
"""

from __future__ import annotations

import logging

from keel.services.deployments import Deployments
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.deployments")

CHECK_EVERY_SECONDS = 1.0


def deployment_job(deployments: Deployments, *, every_seconds: float = CHECK_EVERY_SECONDS) -> Job:
    """A `Job` that moves every active deployment along and logs what it did."""

    def run() -> None:
        for line in deployments.run_due():
            log.info("deployment: %s", line)

    return Job("deployments", every_seconds, run)
