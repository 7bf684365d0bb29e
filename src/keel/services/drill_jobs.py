"""Drills as jobs: ``POST /models/{name}/drills`` and the drill schedules queue a ``drill`` job,
and a worker runs it (`Drills.run`), reporting each stage as the job's progress."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keel.domain.drills import PRODUCTION
from keel.domain.jobs import Job
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.services.drills import Drills
from keel.services.jobs import Handler, JobContext, Jobs

DRILL = "drill"
SCHEDULER = Principal("keel-scheduler", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))


def _acting_for(context: JobContext) -> Principal:
    """The requester, with the grant the API already checked for them when it queued the job."""
    name = str(context.job.payload.get("requested_by") or context.job.created_by)
    return Principal(name, PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))


def drill_handler(drills: Drills) -> Handler:
    """Run the drill ``payload`` asks for; a retry returns the drill the first attempt began."""

    def handle(context: JobContext) -> Mapping[str, Any]:
        payload = context.job.payload
        context.check()
        drill = drills.run(
            _acting_for(context),
            str(payload["model"]),
            str(payload["scenario"]),
            live=bool(payload.get("live")),
            alias=str(payload.get("alias") or PRODUCTION),
            scheduled=bool(payload.get("scheduled")),
            job_id=context.job.id,
            progress=context.progress,
        )
        return {
            "drill": drill.id,
            "model": drill.model,
            "status": str(drill.status),
            "incident": drill.incident_id,
            "failures": list(drill.failures),
        }

    return handle


def register_drill_kind(jobs: Jobs, drills: Drills) -> None:
    jobs.handle(DRILL, drill_handler(drills))


def queue_drill(
    jobs: Jobs,
    drills: Drills,
    by: Principal,
    model: str,
    scenario: str,
    *,
    live: bool = False,
    alias: str = PRODUCTION,
) -> Job:
    """Check the request as `Drills.run` will (a refused request queues nothing), then queue it."""
    found, parsed, _ = drills.check_request(by, model, scenario, live=live, alias=alias)
    payload = {"model": found.name, "scenario": str(parsed), "live": live, "alias": alias}
    return jobs.submit(by, DRILL, payload, team=found.team)


def queue_scheduled(jobs: Jobs, drills: Drills, now: datetime) -> list[Job]:
    """Queue the scheduled drills whose period began (once per schedule and period)."""
    queued = []
    for schedule, period in drills.due(now):
        owner = drills.registry.get_model(schedule.model)
        payload = {
            "model": schedule.model,
            "scenario": str(schedule.scenario),
            "live": False,
            "alias": schedule.alias,
            "scheduled": True,
        }
        queued.append(
            jobs.submit(
                SCHEDULER,
                DRILL,
                payload,
                team=owner.team,
                idempotency_key=f"drill:schedule:{schedule.id}:{period.isoformat()}",
            )
        )
    return queued
