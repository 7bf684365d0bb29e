"""Wire models for monitors and the metric points their runs record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.domain.monitoring import ALL_CHECKS, DEFAULT_CHECKS, Check, Status
from keel.schemas.base import Id, WireIn, WireOut

MonitorName = Annotated[str, Field(max_length=128)]
WindowSpec = Annotated[
    str | int,
    Field(description="'hourly', 'daily', or a window size in minutes (a multiple of 60)."),
]


class ScheduleSpec(WireIn):
    enabled: bool = Field(
        default=True, description="Whether the worker runs the monitor by itself."
    )
    delay_minutes: int = Field(
        default=5, description="How long after a window ends the worker waits for late rows."
    )


class MonitorIn(WireIn):
    name: MonitorName = "default"
    version: Id | None = Field(
        default=None,
        description="The version to watch; left out, the production alias, else newest.",
    )
    checks: list[Check] = Field(
        default_factory=lambda: list(DEFAULT_CHECKS), max_length=len(ALL_CHECKS)
    )
    window: WindowSpec = "hourly"
    reference_version: Id | None = Field(
        default=None,
        description="Whose reference profile to compare with; left out, the version's own.",
    )
    thresholds: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the defaults (docs/monitoring.md)."
    )
    schedule: ScheduleSpec = Field(default_factory=lambda: ScheduleSpec())


class MonitorPatch(WireIn):
    """Fields to change; those left out stay. ``version`` or ``reference_version`` set to null
    go back to following the live version / the version's own reference."""

    checks: list[Check] | None = Field(default=None, max_length=len(ALL_CHECKS))
    window: WindowSpec | None = None
    version: Id | None = None
    reference_version: Id | None = None
    thresholds: dict[str, Any] | None = None
    schedule: ScheduleSpec | None = None


class MonitorOut(WireOut):
    id: int
    model: str
    name: str
    version: int | None
    checks: list[Check]
    window: str
    window_minutes: int
    reference_version: int | None
    thresholds: dict[str, Any]
    schedule: ScheduleSpec
    last_window_end: datetime | None
    next_due_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class RunIn(WireIn):
    at: datetime | None = Field(
        default=None, description="Evaluate the newest window complete at this time (default: now)."
    )
    monitor: Id | None = Field(default=None, description="Run only this monitor (by id).")


class MetricPointOut(WireOut):
    model: str
    version: int
    monitor_id: int | None
    window_start: datetime
    window_end: datetime
    check: Check
    column: str | None
    metric: str
    value: float | None
    threshold: float | None
    status: Status


class RunOut(WireOut):
    status: Status
    points: list[MetricPointOut]


class MonitoringStatusOut(WireOut):
    model: str
    status: Status
    points: list[MetricPointOut]
