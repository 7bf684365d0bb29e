"""The kinds of job Keel queues, and the handler a worker runs for each.

| kind         | queued by                                     | handler does                     |
|--------------|-----------------------------------------------|----------------------------------|
| ``gate-run`` | ``POST .../versions/{v}/gates/run``           | `Governance.run_gates`           |
| ``retrain``  | ``POST /models/{name}/retrain``, the schedule | `Retraining.trigger`             |
| ``monitor-run`` | ``POST /models/{name}/monitors/run``       | `Monitoring.run`                 |
| ``compliance-export`` | ``POST /models/{name}/documents/exports`` | `ComplianceDocuments.render` |

Handlers run as the principal who asked (the API checked their permission when it queued the
job; the worker acts for them, so the audit trail names them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keel.domain.governance import PipelineStatus
from keel.domain.jobs import Job
from keel.domain.lifecycle import VersionStatus
from keel.domain.monitoring import MetricPoint, worst
from keel.domain.names import check_name
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.errors import Conflict, InvalidInput
from keel.services.compliance import MEDIA_TYPES, ComplianceDocuments
from keel.services.governance import Governance
from keel.services.jobs import Handler, JobContext, Jobs
from keel.services.monitoring import Monitoring
from keel.services.retraining import Retraining

GATE_RUN = "gate-run"
RETRAIN = "retrain"
MONITOR_RUN = "monitor-run"
COMPLIANCE_EXPORT = "compliance-export"


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


def monitor_run(monitoring: Monitoring) -> Handler:
    """Run ``payload['model']``'s monitors (or ``payload['monitor']``) over the newest window
    complete at ``payload['at']`` (the time of the request). Idempotent: a window evaluated
    again has its points replaced, and the incidents its alerts open are keyed."""

    def handle(context: JobContext) -> Mapping[str, Any]:
        job = context.job
        model = str(job.payload["model"])
        context.progress(f"running the monitors of {model}")
        points = monitoring.run(
            _acting_for(context),
            model,
            now=datetime.fromisoformat(str(job.payload["at"])),
            monitor_id=job.payload.get("monitor"),
        )
        return {"status": str(worst([p.status for p in points])), "points": _points(points)}

    return handle


def _points(points: list[MetricPoint]) -> list[dict[str, Any]]:
    """The points as the API's ``RunOut`` spells them (the job's result is that answer)."""
    return [
        {
            "model": p.model,
            "version": p.version,
            "monitor_id": p.monitor_id,
            "window_start": p.window_start.isoformat(),
            "window_end": p.window_end.isoformat(),
            "check": str(p.check),
            "column": p.column,
            "metric": p.metric,
            "value": p.value,
            "threshold": p.threshold,
            "status": str(p.status),
        }
        for p in points
    ]


def compliance_export(compliance: ComplianceDocuments) -> Handler:
    """Build and render ``payload['model']`` version ``payload['version']``'s technical
    documentation as ``payload['format']``; the job's result holds the document. It records
    nothing, so a retry is harmless."""

    def handle(context: JobContext) -> Mapping[str, Any]:
        payload = context.job.payload
        model, version, fmt = str(payload["model"]), int(payload["version"]), str(payload["format"])
        context.progress(f"documenting {model} v{version} ({fmt})")
        document = compliance.technical_documentation(model, version)
        return {
            "model": document.model,
            "version": document.version,
            "format": fmt,
            "gaps": len(document.gaps),
            "media_type": MEDIA_TYPES[fmt],
            "filename": f"{document.model}-v{document.version}-technical-documentation.{fmt}",
            "document": compliance.render(document, fmt),
        }

    return handle


def register_kinds(
    jobs: Jobs,
    governance: Governance,
    retraining: Retraining,
    monitoring: Monitoring | None = None,
    compliance: ComplianceDocuments | None = None,
) -> None:
    jobs.handle(GATE_RUN, gate_run(governance))
    jobs.handle(RETRAIN, retrain(retraining))
    if monitoring is not None:
        jobs.handle(MONITOR_RUN, monitor_run(monitoring))
    if compliance is not None:
        jobs.handle(COMPLIANCE_EXPORT, compliance_export(compliance))


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


def queue_monitor_run(
    jobs: Jobs,
    monitoring: Monitoring,
    by: Principal,
    model: str,
    *,
    at: datetime | None = None,
    monitor_id: int | None = None,
) -> Job:
    """Check what `Monitoring.run` checks first, then queue the run; without ``at`` the window
    is the newest complete at the time of the request, not when a worker gets to it."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput(
            "The 'at' time must carry a time zone (e.g. 2026-03-01T12:00:00Z).", {"field": "at"}
        )
    monitoring.runnable(by, model, monitor_id)
    owner = monitoring.registry.get_model(check_name(model, "model"))
    when = (at or datetime.now(UTC)).astimezone(UTC)
    payload = {"model": owner.name, "at": when.isoformat(), "monitor": monitor_id}
    return jobs.submit(by, MONITOR_RUN, payload, team=owner.team)


def queue_compliance_export(
    jobs: Jobs,
    compliance: ComplianceDocuments,
    by: Principal,
    model: str,
    *,
    version: int | None = None,
    fmt: str = "html",
) -> Job:
    """Check what the export checks first (read access, model, version, format), then queue
    it; without ``version`` it documents the version in production (else the newest) at the
    time of the request."""
    authorize(by, Permission.READ)
    name, chosen = compliance.export_target(model, version, fmt)
    team = compliance.registry.get_model(name).team
    payload = {"model": name, "version": chosen, "format": fmt}
    return jobs.submit(by, COMPLIANCE_EXPORT, payload, team=team)


def queue_retrain(
    jobs: Jobs, retraining: Retraining, by: Principal, model: str, incident_id: int | None
) -> Job:
    """Check what `Retraining.trigger` checks first, then queue the retraining run."""
    owner, _ = retraining.check_trigger(by, model)
    payload = {"model": owner.name, "trigger": "manual", "incident_id": incident_id}
    return jobs.submit(by, RETRAIN, payload, team=owner.team)
