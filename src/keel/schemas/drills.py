"""Wire models for incident drills and their schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.schemas.base import WireIn, WireOut


class DrillIn(WireIn):
    scenario: str = Field(
        max_length=32, description="drift, performance, latency, errors or bad-deploy."
    )
    live: bool = Field(
        default=False,
        description="Send the playbooks' notify steps for real (never on production).",
    )
    alias: str = Field(default="production", max_length=64, description="The alias to drill.")


class PlaybookStepOut(WireOut):
    playbook: str
    action: str
    outcome: str
    would: str


class DrillOut(WireOut):
    """A drill and its report; the times are seconds from the drill's start."""

    id: int
    model: str
    scenario: str
    alias: str
    version: int | None
    live: bool
    status: str
    requested_by: str
    scheduled: bool
    started_at: datetime
    detected_at: datetime | None
    paged_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    time_to_detect_s: float | None
    time_to_page_s: float | None
    time_to_acknowledge_s: float | None
    time_to_resolve_s: float | None
    detection_wait_s: float | None = Field(
        description="What detection waits for in production: the firing rule's windows."
    )
    incident_id: int | None
    job_id: int | None
    rules_fired: list[str]
    points: list[dict[str, Any]]
    steps: list[PlaybookStepOut]
    failures: list[str]


class DrillActionIn(WireIn):
    comment: str = Field(default="", max_length=10_000)


class DrillScheduleIn(WireIn):
    every_days: int = Field(description="Run the drill every this many days (1-366).")
    alias: str = Field(default="production", max_length=64)


class DrillScheduleOut(WireOut):
    id: int
    model: str
    scenario: str
    alias: str
    every_days: int
    created_by: str
    created_at: datetime
