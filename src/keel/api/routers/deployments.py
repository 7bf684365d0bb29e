"""Deployments over REST: start, watch, pause, resume, abort, promote, shadow reports, export.

Every route declares its permission; the service checks again against the model's team.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.deployments import Deployment
from keel.domain.traffic import Arm, ServingPlan
from keel.schemas.deployments import (
    ArmOut,
    DeployIn,
    DeploymentDetailOut,
    DeploymentEventOut,
    DeploymentOut,
    ExportOut,
    MoveIn,
    ServingPlanOut,
    ShadowReportOut,
)
from keel.services.backend import Backend

BackendDep = Annotated[Backend, Depends(get_backend)]
router = APIRouter(prefix=API_PREFIX, tags=["deployments"])


def deployment_out(found: Deployment) -> DeploymentOut:
    return DeploymentOut(
        id=found.id,
        model=found.model,
        strategy=str(found.strategy),
        state=str(found.state),
        version=found.candidate,
        stable_version=found.stable,
        weight=found.weight,
        step=found.step,
        steps=len(found.plan.steps),
        plan=found.plan.to_dict(found.strategy),
        reason=found.reason,
        break_glass=found.break_glass,
        incident_id=found.incident_id,
        created_by=found.created_by,
        created_at=found.created_at,
        updated_at=found.updated_at,
        switched_at=found.switched_at,
        blue_until=found.blue_until,
    )


def _arm(arm: Arm) -> ArmOut:
    return ArmOut(name=str(arm.name), version=arm.version, weight=arm.weight)


def serving_out(plan: ServingPlan | None) -> ServingPlanOut | None:
    if plan is None:
        return None
    key = plan.route_key
    return ServingPlanOut(
        live=[_arm(a) for a in plan.live],
        shadow=None if plan.shadow is None else _arm(plan.shadow),
        revision=plan.revision,
        paused=plan.paused,
        route_key=None if key is None else {str(key.source): key.name},
    )


@router.post(
    "/models/{name}/deployments",
    status_code=201,
    summary="Deploy a version: direct, canary, blue-green or shadow (409 lists the blockers)",
)
def deploy(name: str, body: DeployIn, backend: BackendDep, caller: Writer) -> DeploymentOut:
    found = backend.deployments.deploy(
        caller, name, body.version, body.strategy, body.plan, justification=body.justification
    )
    return deployment_out(found)


@router.get("/models/{name}/deployments", summary="The model's deployments, newest first")
def list_model_deployments(name: str, backend: BackendDep, _: Reader) -> list[DeploymentOut]:
    return [deployment_out(d) for d in backend.deployments.list(name)]


@router.get("/deployments", summary="Every deployment, newest first (active only on request)")
def list_deployments(
    backend: BackendDep, _: Reader, active: Annotated[bool, Query()] = False
) -> list[DeploymentOut]:
    return [deployment_out(d) for d in backend.deployments.list(active_only=active)]


@router.get(
    "/models/{name}/deployment",
    summary="The model's newest deployment, its timeline and what serves now",
)
def show_deployment(name: str, backend: BackendDep, _: Reader) -> DeploymentDetailOut:
    found = backend.deployments.latest(name)
    return DeploymentDetailOut(
        **deployment_out(found).model_dump(),
        events=[
            DeploymentEventOut(
                id=e.id, at=e.at, kind=e.kind, actor=e.actor, details=dict(e.details)
            )
            for e in backend.deployments.events(found.id)
        ],
        serving=serving_out(backend.deployments.serving_plan(found.model)),
    )


@router.post("/models/{name}/deployment/pause", summary="Pause the rollout where it is")
def pause(name: str, body: MoveIn, backend: BackendDep, caller: Writer) -> DeploymentOut:
    return deployment_out(backend.deployments.pause(caller, name, body.reason))


@router.post("/models/{name}/deployment/resume", summary="Resume a paused rollout")
def resume(name: str, backend: BackendDep, caller: Writer) -> DeploymentOut:
    return deployment_out(backend.deployments.resume(caller, name))


@router.post("/models/{name}/deployment/abort", summary="Abort: all traffic back to stable")
def abort(name: str, body: MoveIn, backend: BackendDep, caller: Writer) -> DeploymentOut:
    return deployment_out(backend.deployments.abort(caller, name, body.reason))


@router.post(
    "/models/{name}/deployment/promote",
    summary="Promote the candidate now (through the gates), skipping the remaining steps",
)
def promote(name: str, backend: BackendDep, caller: Writer) -> DeploymentOut:
    return deployment_out(backend.deployments.promote(caller, name))


@router.get(
    "/models/{name}/deployment/shadow",
    summary="The newest shadow's pairs: agreement, score, latency and performance differences",
)
def shadow(name: str, backend: BackendDep, _: Reader) -> ShadowReportOut:
    return ShadowReportOut(**asdict(backend.deployments.shadow_report(name)))


@router.get(
    "/models/{name}/deployment/export",
    summary="Kubernetes manifests of the newest deployment (kserve or argo-rollouts)",
)
def export(
    name: str,
    backend: BackendDep,
    _: Reader,
    format: Annotated[str, Query(max_length=32)] = "kserve",
) -> ExportOut:
    return ExportOut(format=format, manifests=backend.deployments.export(name, format))
