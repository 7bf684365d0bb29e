"""The worker's monitor job: run every scheduled monitor whose next window has settled, and
re-judge the windows that late labels touched."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from keel.domain.monitoring import Status
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.services.monitoring import Monitoring
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.monitors")

# The worker acts for the server itself; its runs appear in the audit trail under this name.
WORKER = Principal("keel-worker", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
# How often the worker asks "is any monitor due?" (a cheap indexed query); monitors themselves
# run once per window, when it has settled.
CHECK_EVERY_SECONDS = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def monitor_job(
    monitoring: Monitoring,
    *,
    every_seconds: float = CHECK_EVERY_SECONDS,
    clock: Callable[[], datetime] = _utc_now,
) -> Job:
    """A `Job` that runs the due monitors at ``clock()`` and logs what they found."""

    def run() -> None:
        at = clock()
        points = monitoring.run_due(WORKER, now=at)
        rejudged = monitoring.rejudge_late_labels(WORKER, now=at)
        if rejudged:
            log.info("late labels: %d metric points judged again", len(rejudged))
        points = [*points, *rejudged]
        alerts = [p for p in points if p.status == Status.ALERT]
        if points:
            log.info("monitors recorded %d metric points, %d alerts", len(points), len(alerts))
        for point in alerts:
            log.warning(
                "monitor alert: %s v%d %s %s %s=%s (threshold %s)",
                point.model,
                point.version,
                point.check,
                point.column or "-",
                point.metric,
                point.value,
                point.threshold,
            )

    return Job("monitors", every_seconds, run)
