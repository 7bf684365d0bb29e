"""Wire models for DORA delivery metrics, each number with the events behind it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from keel.schemas.base import WireOut


class DeploymentOut(WireOut):
    model: str
    team: str
    version: int
    at: datetime
    registered_at: datetime
    lead_time_hours: float
    promotion_id: int | None
    canary_id: int | None


class FailureOut(WireOut):
    deployment: DeploymentOut
    cause: str = Field(description="P1 incident, P2 incident, rollback or aborted canary.")
    started_at: datetime
    recovered_at: datetime | None
    recovery_hours: float | None
    incident_id: int | None
    rollback_id: int | None


class DoraOut(WireOut):
    scope: str
    start: datetime
    end: datetime
    deployment_count: int
    deployments_per_week: float
    frequency: str = Field(description="Four Keys bucket: Daily, Weekly, Monthly or Yearly.")
    lead_time_hours: float | None = Field(description="Median, version registered -> production.")
    lead_time: str | None
    commit_lead_time_hours: float | None
    change_failure_rate: float | None
    change_failure: str | None
    recovery_hours: float | None = Field(description="Median failed deployment recovery time.")
    recovery: str | None
    rework_rate: float | None
    deployments: list[DeploymentOut]
    failures: list[FailureOut]
    rework: list[DeploymentOut]
