"""The worker's budget job: check this month's budgets hourly; each alert is raised once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from keel.services.costs import CostService
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.budgets")

BUDGETS_EVERY_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def budget_job(
    costs: CostService,
    *,
    every_seconds: float = BUDGETS_EVERY_SECONDS,
    clock: Callable[[], datetime] = _utc_now,
) -> Job:
    """A `Job` that checks every budget for the month of ``clock()`` (nothing without budgets)."""

    def run() -> None:
        if not costs.budgets():
            return
        now = clock()
        for alert in costs.check_budgets(now.strftime("%Y-%m"), as_of=now.date()):
            log.info("budget %s: %s (%s)", alert.budget.name, alert.signal, alert.event_type)

    return Job("budget-checks", every_seconds, run)
