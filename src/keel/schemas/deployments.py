"""Wire models for deployments, their timelines, serving plans, shadow reports and exports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.schemas.base import WireIn, WireOut


class DeployIn(WireIn):
    """Start a deployment. ``plan`` is the plan file's content (YAML or JSON, parsed by the
    client); ``justification`` breaks glass (admins only) for a version whose gates fail."""

    version: Annotated[int, Field(ge=1)]
    strategy: Annotated[str, Field(max_length=32)]
    plan: dict[str, Any] | None = None
    justification: Annotated[str, Field(max_length=10_000)] | None = None


class MoveIn(WireIn):
    reason: Annotated[str, Field(max_length=2000)] = ""


class DeploymentOut(WireOut):
    id: int
    model: str
    strategy: str
    state: str
    version: int
    stable_version: int | None
    weight: float
    step: int
    steps: int
    plan: dict[str, Any]
    reason: str
    break_glass: bool
    incident_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    switched_at: datetime | None
    blue_until: datetime | None


class DeploymentEventOut(WireOut):
    id: int
    at: datetime
    kind: str
    actor: str
    details: dict[str, Any]


class ArmOut(WireOut):
    name: str
    version: int
    weight: float


class ServingPlanOut(WireOut):
    live: list[ArmOut]
    shadow: ArmOut | None
    revision: int
    paused: bool
    route_key: dict[str, str] | None


class DeploymentDetailOut(DeploymentOut):
    events: list[DeploymentEventOut]
    serving: ServingPlanOut | None


class ShadowReportOut(WireOut):
    model: str
    stable_version: int
    shadow_version: int
    start: datetime
    end: datetime
    pairs: int
    agreement: float | None
    score_difference: float | None
    latency_difference_ms: float | None
    labelled_pairs: int
    performance_metric: str | None
    stable_performance: float | None
    shadow_performance: float | None


class ExportOut(WireOut):
    format: str
    manifests: str
