"""DORA delivery metrics of a model, a team or the portfolio."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.delivery import DEFAULT_FAILURE_DAYS, Deployment, DoraMetrics, Failure
from keel.schemas.delivery import DeploymentOut, DoraOut, FailureOut
from keel.services.backend import Backend
from keel.services.delivery import Delivery

router = APIRouter(prefix=API_PREFIX, tags=["delivery"])


def get_delivery(backend: Annotated[Backend, Depends(get_backend)]) -> Delivery:
    return backend.delivery


DeliveryDep = Annotated[Delivery, Depends(get_delivery)]


def deployment_out(d: Deployment) -> DeploymentOut:
    return DeploymentOut(
        model=d.model,
        team=d.team,
        version=d.version,
        at=d.at,
        registered_at=d.registered_at,
        lead_time_hours=(d.at - d.registered_at).total_seconds() / 3600,
        promotion_id=d.promotion_id,
        canary_id=d.canary_id,
    )


def failure_out(f: Failure) -> FailureOut:
    return FailureOut(
        deployment=deployment_out(f.deployment),
        cause=f.cause,
        started_at=f.started_at,
        recovered_at=f.recovered_at,
        recovery_hours=f.recovery_hours,
        incident_id=f.incident_id,
        rollback_id=f.rollback_id,
    )


def dora_out(m: DoraMetrics) -> DoraOut:
    return DoraOut(
        scope=m.scope,
        start=m.start,
        end=m.end,
        deployment_count=len(m.deployments),
        deployments_per_week=m.deployments_per_week,
        frequency=m.frequency,
        lead_time_hours=m.lead_time_hours,
        lead_time=m.lead_time,
        commit_lead_time_hours=m.commit_lead_time_hours,
        change_failure_rate=m.change_failure_rate,
        change_failure=m.change_failure,
        recovery_hours=m.recovery_hours,
        recovery=m.recovery,
        rework_rate=m.rework_rate,
        deployments=[deployment_out(d) for d in m.deployments],
        failures=[failure_out(f) for f in m.failures],
        rework=[deployment_out(d) for d in m.rework],
    )


@router.get("/dora", summary="DORA metrics of a model, a team or (neither) the portfolio")
def dora(
    delivery: DeliveryDep,
    _: Reader,
    model: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[str | None, Query(max_length=128)] = None,
    start: Annotated[
        datetime | None, Query(description="Period start (default: 90 days before end).")
    ] = None,
    end: Annotated[datetime | None, Query(description="Period end (default: now).")] = None,
    failure_days: Annotated[
        int, Query(ge=1, le=90, description="Days after a deployment a failure counts against it.")
    ] = DEFAULT_FAILURE_DAYS,
) -> DoraOut:
    metrics = delivery.metrics(
        model=model, team=team, start=start, end=end, failure_days=failure_days
    )
    return dora_out(metrics)
