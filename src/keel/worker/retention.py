"""The worker's retention job: delete raw telemetry older than each model's retention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from keel.services.telemetry import Telemetry
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.retention")

# Partitions are whole UTC dates, so an hourly pass deletes an expired day within the hour.
RETENTION_EVERY_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def retention_job(
    telemetry: Telemetry,
    *,
    every_seconds: float = RETENTION_EVERY_SECONDS,
    clock: Callable[[], datetime] = _utc_now,
) -> Job:
    """A `Job` that applies every model's telemetry retention at ``clock()`` (audited)."""

    def run() -> None:
        for model, removed in telemetry.apply_retention(clock()).items():
            log.info("retention removed %d date partitions of %s", len(removed), model)

    return Job("telemetry-retention", every_seconds, run)
