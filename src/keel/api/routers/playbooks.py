"""Playbooks, rollback and retraining over REST.

Every route declares its permission; the services check again against the model's team.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.governance import promotion_out
from keel.api.routers.jobs import job_out
from keel.schemas.governance import PromotionOut
from keel.schemas.jobs import JobOut
from keel.schemas.playbooks import (
    DryRunOut,
    PlannedActionOut,
    PlaybookIn,
    PlaybookOut,
    PlaybookTestIn,
    RetrainIn,
    RetrainingJobIn,
    RetrainingJobOut,
    RetrainRunOut,
    RollbackIn,
)
from keel.services.backend import Backend
from keel.services.job_kinds import queue_retrain

BackendDep = Annotated[Backend, Depends(get_backend)]
router = APIRouter(prefix=API_PREFIX, tags=["playbooks"])


def _playbook_out(stored: object) -> PlaybookOut:
    return PlaybookOut.model_validate(stored, from_attributes=True)


def _job_out(job: object) -> RetrainingJobOut:
    return RetrainingJobOut.model_validate(job, from_attributes=True)


def _run_out(run: object) -> RetrainRunOut:
    return RetrainRunOut.model_validate(run, from_attributes=True)


@router.post("/playbooks", status_code=201, summary="Apply a playbook (YAML; a new version)")
def apply_playbook(body: PlaybookIn, backend: BackendDep, caller: Writer) -> PlaybookOut:
    return _playbook_out(backend.playbooks.apply(caller, body.source, body.filename))


@router.get("/playbooks", summary="The playbooks in force (each name's newest version)")
def list_playbooks(backend: BackendDep, _: Reader) -> list[PlaybookOut]:
    return [_playbook_out(p) for p in backend.playbooks.list()]


@router.post("/playbooks/test", summary="Dry run: what a playbook would do for an incident")
def test_playbook(body: PlaybookTestIn, backend: BackendDep, caller: Writer) -> DryRunOut:
    plan = backend.playbooks.test(caller, body.source, body.incident_id, body.filename)
    return DryRunOut(
        playbook=plan.playbook,
        incident_id=body.incident_id,
        matches=plan.matches,
        reason=plan.reason,
        actions=[
            PlannedActionOut(index=a.index, action=a.action, would=a.would) for a in plan.actions
        ],
    )


@router.post("/models/{name}/rollback", summary="Move production back to the previous version")
def rollback(name: str, body: RollbackIn, backend: BackendDep, caller: Writer) -> PromotionOut:
    promotion = backend.governance.rollback(
        caller, name, reason=body.reason, incident_id=body.incident_id
    )
    return promotion_out(promotion)


@router.put(
    "/models/{name}/retraining-job",
    summary="Define the model's retraining job (a command: admins; a webhook: team writers)",
)
def set_retraining_job(
    name: str, body: RetrainingJobIn, backend: BackendDep, caller: Writer
) -> RetrainingJobOut:
    job = backend.retraining.set_job(
        caller,
        name,
        command=body.command,
        webhook=body.webhook,
        code_paths=body.code_paths,
        memory_mb=body.memory_mb,
        timeout_s=body.timeout_s,
        window_days=body.window_days,
        schedule_every_s=body.schedule_every_s,
    )
    return _job_out(job)


@router.get("/models/{name}/retraining-job", summary="The model's retraining job")
def get_retraining_job(name: str, backend: BackendDep, _: Reader) -> RetrainingJobOut:
    return _job_out(backend.retraining.job(name))


@router.post(
    "/models/{name}/retrain",
    status_code=202,
    summary="Queue a run of the retraining job now (202: follow the job)",
)
def retrain(name: str, body: RetrainIn, backend: BackendDep, caller: Writer) -> JobOut:
    job = queue_retrain(backend.jobs, backend.retraining, caller, name, body.incident_id)
    return job_out(job)


@router.get(
    "/models/{name}/retrain-runs",
    summary="Every retrain run of the model (readers of the model's team and admins)",
)
def retrain_runs(name: str, backend: BackendDep, caller: Reader) -> list[RetrainRunOut]:
    return [_run_out(r) for r in backend.retraining.runs(caller, name)]
