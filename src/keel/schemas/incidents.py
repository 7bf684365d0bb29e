"""Wire models for alert rules and incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.domain.alerts import Comparison
from keel.domain.incidents import IncidentStatus, Severity
from keel.domain.monitoring import Check
from keel.schemas.base import Id, WireIn, WireOut

RuleName = Annotated[str, Field(max_length=128)]


class AlertRuleIn(WireIn):
    name: RuleName
    check: Check
    version: Id | None = Field(default=None, description="Left out: every version's points.")
    column: str | None = Field(default=None, max_length=256)
    metric: str | None = Field(default=None, max_length=64)
    comparison: Comparison = Field(
        default=Comparison.STATUS,
        description="'>', '>=', '<', '<=' against threshold, or 'status' (the point's verdict "
        "is alert).",
    )
    threshold: float | None = None
    windows: int = Field(default=2, description="Consecutive windows the condition must hold.")
    severity: Severity = Severity.P3
    labels: dict[str, str] = Field(default_factory=dict)
    auto_resolve: bool = True


class AlertRulesApplyIn(WireIn):
    """Rules to create or update by name (others of the model are left as they are)."""

    rules: list[dict[str, Any]] = Field(max_length=200)


class AlertRuleOut(WireOut):
    id: int
    model: str
    name: str
    version: int | None
    check: Check
    column: str | None
    metric: str | None
    comparison: Comparison
    threshold: float | None
    windows: int
    severity: Severity
    labels: dict[str, str]
    auto_resolve: bool
    monitor_id: int | None
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None


class TimelineEntryOut(WireOut):
    at: datetime
    actor: str
    kind: str
    message: str
    details: dict[str, Any]


class IncidentOut(WireOut):
    id: int
    key: str
    model: str
    version: int | None
    rule_id: int | None
    title: str
    severity: Severity
    status: IncidentStatus
    labels: dict[str, str]
    check: str | None
    column: str | None
    assignee: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    postmortem: str
    timeline: list[TimelineEntryOut] = Field(default_factory=list)
    drill_id: int | None = Field(default=None, description="Set on a drill's incident.")


class IncidentActionIn(WireIn):
    comment: str = Field(default="", max_length=10_000)


class CommentIn(WireIn):
    text: str = Field(max_length=10_000)


class PostmortemIn(WireIn):
    markdown: str = Field(max_length=200_000)


class IncidentStatsOut(WireOut):
    model: str | None
    team: str | None
    incidents: int
    open: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None
