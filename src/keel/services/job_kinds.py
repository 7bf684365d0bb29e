"""The kinds of job Keel queues, and the handler a worker runs for each.

| kind         | queued by                                     | handler does                     |
|--------------|-----------------------------------------------|----------------------------------|
| ``gate-run`` | ``POST .../versions/{v}/gates/run``           | `Governance.run_gates`           |
| ``retrain``  | ``POST /models/{name}/retrain``, the schedule | `Retraining.trigger`             |

Handlers run as the principal who asked (the API checked their permission when it queued the
job; the worker acts for them, so the audit trail names them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keel.domain.governance import PipelineStatus
from keel.domain.jobs import Job
from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.errors import Conflict
from keel.services.governance import Governance
from keel.services.jobs import Handler, JobContext, Jobs
from keel.services.retraining import Retraining

GATE_RUN = "gate-run"
RETRAIN = "retrain"


def _acting_for(context: JobContext) -> Principal:
    """The requester, with the grant the API already checked for them when it queued the job."""
    name = str(context.job.payload.get("requested_by") or context.job.created_by)
    return Principal(name, PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))


def gate_run(governance: Governance) -> Handler:
    """Run gates 1-3 of ``payload['model']`` version ``payload['version']``.

    Idempotent: when an earlier attempt of this job already stored gate results (evaluated by
    the requester since the job first started), the retry returns the pipeline as it stands.
    """

    def handle(context: JobContext) -> Mapping[str, Any]:
        job = context.job
        model, version = str(job.payload["model"]), int(job.payload["version"])
        by = _acting_for(context)
        if job.attempts > 1 and job.started_at is not None:
            started: datetime = job.started_at
            earlier = [
                r
                for r in governance.gate_results(model, version)
                if r.evaluated_by == by.name and r.evaluated_at >= started
            ]
            if earlier:
                return _pipeline(governance.status(model, version), reused=True)
        context.progress(f"running the gates of {model} v{version}")
        context.check()
        return _pipeline(governance.run_gates(by, model, version), reused=False)

    return handle


def _pipeline(status: PipelineStatus, *, reused: bool) -> dict[str, Any]:
    return {
        "model": status.model,
        "version": status.version,
        "gates": {str(s.gate): str(s.outcome) for s in status.gates},
        "promotable": bool(status.promotable),
        "from_earlier_attempt": reused,
    }


def retrain(retraining: Retraining) -> Handler:
    """Run ``payload['model']``'s retraining job; a retry never registers a second version."""

    def handle(context: JobContext) -> Mapping[str, Any]:
        job = context.job
        model = str(job.payload["model"])
        context.progress(f"retraining {model}")
        run = retraining.trigger(
            _acting_for(context),
            model,
            trigger=str(job.payload.get("trigger") or "manual"),
            incident_id=job.payload.get("incident_id"),
            job_key=f"job-{job.id}",
            before_effect=context.check,
        )
        return {
            "model": run.model,
            "retrain_run": run.id,
            "status": run.status,
            "registered_version": run.registered_version,
            "reason": run.reason,
        }

    return handle


def register_kinds(jobs: Jobs, governance: Governance, retraining: Retraining) -> None:
    jobs.handle(GATE_RUN, gate_run(governance))
    jobs.handle(RETRAIN, retrain(retraining))


def queue_gate_run(
    jobs: Jobs, governance: Governance, by: Principal, model: str, version: int
) -> Job:
    """Check what `Governance.run_gates` checks first (a refused request queues nothing), then
    queue the gate run."""
    owner = governance.registry.get_model(check_name(model, "model"))
    authorize(by, Permission.WRITE, owner.team)
    found = governance.registry.get_version(owner.name, version)
    if found.status == VersionStatus.ARCHIVED:
        raise Conflict(
            f"{owner.name} version {version} is archived (rejected or withdrawn); its "
            "candidacy is over. Register a new version.",
            {"model": owner.name, "version": version},
        )
    return jobs.submit(by, GATE_RUN, {"model": owner.name, "version": version}, team=owner.team)


def queue_retrain(
    jobs: Jobs, retraining: Retraining, by: Principal, model: str, incident_id: int | None
) -> Job:
    """Check what `Retraining.trigger` checks first, then queue the retraining run."""
    owner, _ = retraining.check_trigger(by, model)
    payload = {"model": owner.name, "trigger": "manual", "incident_id": incident_id}
    return jobs.submit(by, RETRAIN, payload, team=owner.team)
