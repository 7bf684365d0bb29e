"""Incident drills: run one (a job), list and show reports, acknowledge and resolve the drill's
incident, and schedule drills."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.jobs import job_out
from keel.domain.drills import Drill, DrillSchedule
from keel.schemas.base import Id
from keel.schemas.drills import (
    DrillActionIn,
    DrillIn,
    DrillOut,
    DrillScheduleIn,
    DrillScheduleOut,
    PlaybookStepOut,
)
from keel.schemas.jobs import JobOut
from keel.services.backend import Backend
from keel.services.drill_jobs import queue_drill

BackendDep = Annotated[Backend, Depends(get_backend)]
router = APIRouter(prefix=API_PREFIX, tags=["drills"])


def drill_out(drill: Drill) -> DrillOut:
    return DrillOut(
        id=drill.id,
        model=drill.model,
        scenario=str(drill.scenario),
        alias=drill.alias,
        version=drill.version,
        live=drill.live,
        status=str(drill.status),
        requested_by=drill.requested_by,
        scheduled=drill.scheduled,
        started_at=drill.started_at,
        detected_at=drill.detected_at,
        paged_at=drill.paged_at,
        acknowledged_at=drill.acknowledged_at,
        resolved_at=drill.resolved_at,
        time_to_detect_s=drill.time_to_detect_s,
        time_to_page_s=drill.time_to_page_s,
        time_to_acknowledge_s=drill.time_to_acknowledge_s,
        time_to_resolve_s=drill.time_to_resolve_s,
        detection_wait_s=drill.detection_wait_s,
        incident_id=drill.incident_id,
        job_id=drill.job_id,
        rules_fired=list(drill.rules_fired),
        points=[dict(p) for p in drill.points],
        steps=[
            PlaybookStepOut(playbook=s.playbook, action=s.action, outcome=s.outcome, would=s.would)
            for s in drill.steps
        ],
        failures=list(drill.failures),
    )


def _schedule_out(schedule: DrillSchedule) -> DrillScheduleOut:
    return DrillScheduleOut(
        id=schedule.id,
        model=schedule.model,
        scenario=str(schedule.scenario),
        alias=schedule.alias,
        every_days=schedule.every_days,
        created_by=schedule.created_by,
        created_at=schedule.created_at,
    )


@router.post(
    "/models/{name}/drills",
    status_code=202,
    summary="Run an incident drill (202: follow the job; its result names the drill)",
)
def run_drill(name: str, body: DrillIn, backend: BackendDep, caller: Writer) -> JobOut:
    job = queue_drill(
        backend.jobs, backend.drills, caller, name, body.scenario, live=body.live, alias=body.alias
    )
    return job_out(job)


@router.get("/drills", summary="Drills and their reports, newest first")
def list_drills(
    backend: BackendDep,
    caller: Reader,
    model: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DrillOut]:
    return [drill_out(d) for d in backend.drills.list(caller, model=model, limit=limit)]


@router.get("/drills/{drill_id}", summary="A drill's report")
def get_drill(drill_id: Id, backend: BackendDep, caller: Reader) -> DrillOut:
    return drill_out(backend.drills.get(caller, drill_id))


@router.post("/drills/{drill_id}/ack", summary="Acknowledge the drill's incident")
def acknowledge_drill(
    drill_id: Id, backend: BackendDep, caller: Writer, body: DrillActionIn | None = None
) -> DrillOut:
    comment = body.comment if body else ""
    return drill_out(backend.drills.acknowledge(caller, drill_id, comment))


@router.post("/drills/{drill_id}/resolve", summary="Resolve the drill's incident (ends the drill)")
def resolve_drill(
    drill_id: Id, backend: BackendDep, caller: Writer, body: DrillActionIn | None = None
) -> DrillOut:
    comment = body.comment if body else ""
    return drill_out(backend.drills.resolve(caller, drill_id, comment))


@router.get("/drill-schedules", summary="Scheduled drills")
def list_schedules(backend: BackendDep, caller: Reader) -> list[DrillScheduleOut]:
    return [_schedule_out(s) for s in backend.drills.schedules(caller)]


@router.put(
    "/models/{name}/drill-schedules/{scenario}",
    summary="Run a drill of this scenario every N days (replaces the model's schedule for it)",
)
def schedule_drill(
    name: str, scenario: str, body: DrillScheduleIn, backend: BackendDep, caller: Writer
) -> DrillScheduleOut:
    return _schedule_out(
        backend.drills.schedule(caller, name, scenario, body.every_days, body.alias)
    )


@router.delete(
    "/models/{name}/drill-schedules/{scenario}",
    status_code=204,
    summary="Stop a scheduled drill",
)
def unschedule_drill(name: str, scenario: str, backend: BackendDep, caller: Writer) -> Response:
    backend.drills.unschedule(caller, name, scenario)
    return Response(status_code=204)
