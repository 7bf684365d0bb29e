"""Alert rules of a model, and the incidents they open: list, show, acknowledge, resolve,
comment, post-mortem, and response times (MTTA/MTTR)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.alerts import AlertRule
from keel.domain.incidents import Incident
from keel.schemas.base import Id
from keel.schemas.incidents import (
    AlertRuleIn,
    AlertRuleOut,
    AlertRulesApplyIn,
    CommentIn,
    IncidentActionIn,
    IncidentOut,
    IncidentStatsOut,
    PostmortemIn,
    TimelineEntryOut,
)
from keel.services.alerts import Alerts
from keel.services.backend import Backend
from keel.services.incidents import Incidents

router = APIRouter(prefix=API_PREFIX, tags=["incidents"])


def get_alerts(backend: Annotated[Backend, Depends(get_backend)]) -> Alerts:
    return backend.alerts


def get_incidents(backend: Annotated[Backend, Depends(get_backend)]) -> Incidents:
    return backend.incidents


AlertsDep = Annotated[Alerts, Depends(get_alerts)]
IncidentsDep = Annotated[Incidents, Depends(get_incidents)]


def rule_out(rule: AlertRule) -> AlertRuleOut:
    assert rule.id is not None
    return AlertRuleOut(
        id=rule.id,
        model=rule.model,
        name=rule.name,
        version=rule.version,
        check=rule.check,
        column=rule.column,
        metric=rule.metric,
        comparison=rule.comparison,
        threshold=rule.threshold,
        windows=rule.windows,
        severity=rule.severity,
        labels=dict(rule.labels),
        auto_resolve=rule.auto_resolve,
        monitor_id=rule.monitor_id,
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def incident_out(incident: Incident) -> IncidentOut:
    return IncidentOut(
        id=incident.id,
        key=incident.key,
        model=incident.model,
        version=incident.version,
        rule_id=incident.rule_id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        labels=dict(incident.labels),
        check=incident.check,
        column=incident.column,
        assignee=incident.assignee,
        opened_at=incident.opened_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        postmortem=incident.postmortem,
        drill_id=incident.drill_id,
        timeline=[
            TimelineEntryOut(
                at=e.at, actor=e.actor, kind=e.kind, message=e.message, details=dict(e.details)
            )
            for e in incident.timeline
        ],
    )


# -- alert rules -------------------------------------------------------------------------------


@router.get("/models/{name}/alert-rules", summary="A model's alert rules")
def list_rules(name: str, alerts: AlertsDep, _: Reader) -> list[AlertRuleOut]:
    return [rule_out(r) for r in alerts.list_rules(name)]


@router.post("/models/{name}/alert-rules", status_code=201, summary="Add an alert rule")
def create_rule(name: str, body: AlertRuleIn, alerts: AlertsDep, caller: Writer) -> AlertRuleOut:
    (rule,) = alerts.apply_new(caller, name, body.model_dump(mode="json"))
    return rule_out(rule)


@router.put(
    "/models/{name}/alert-rules",
    summary="Create or update (by name) a list of alert rules, all or nothing",
)
def apply_rules(
    name: str, body: AlertRulesApplyIn, alerts: AlertsDep, caller: Writer
) -> list[AlertRuleOut]:
    return [rule_out(r) for r in alerts.apply(caller, name, body.rules)]


@router.get("/alert-rules/{rule_id}", summary="Show an alert rule")
def get_rule(rule_id: Id, alerts: AlertsDep, _: Reader) -> AlertRuleOut:
    return rule_out(alerts.get_rule(rule_id))


@router.delete("/alert-rules/{rule_id}", status_code=204, summary="Delete an alert rule")
def delete_rule(rule_id: Id, alerts: AlertsDep, caller: Writer) -> Response:
    alerts.delete_rule(caller, rule_id)
    return Response(status_code=204)


# -- incidents ---------------------------------------------------------------------------------


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    incidents: IncidentsDep,
    caller: Reader,
    model: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[
        str | None, Query(description="triggered, acknowledged, resolved, or open")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    drill: Annotated[
        bool, Query(description="true: only drills' incidents; false (default): real ones")
    ] = False,
) -> list[IncidentOut]:
    listed = incidents.list(
        model=model, team=team, status=status, by=caller, limit=limit, drill=drill
    )
    return [incident_out(i) for i in listed]


@router.get("/incidents/stats", summary="MTTA and MTTR of a model's or team's incidents")
def incident_stats(
    incidents: IncidentsDep,
    caller: Reader,
    model: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[str | None, Query(max_length=128)] = None,
) -> IncidentStatsOut:
    times = incidents.stats(model=model, team=team, by=caller)
    return IncidentStatsOut(
        model=model,
        team=team,
        incidents=times.incidents,
        open=times.open,
        acknowledged=times.acknowledged,
        resolved=times.resolved,
        mtta_seconds=times.mtta_seconds,
        mttr_seconds=times.mttr_seconds,
    )


@router.get("/incidents/{incident_id}", summary="Show an incident with its timeline")
def get_incident(incident_id: Id, incidents: IncidentsDep, caller: Reader) -> IncidentOut:
    return incident_out(incidents.get_visible(caller, incident_id))


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge an incident")
def acknowledge(
    incident_id: Id, incidents: IncidentsDep, caller: Writer, body: IncidentActionIn | None = None
) -> IncidentOut:
    comment = body.comment if body else ""
    return incident_out(incidents.acknowledge(caller, incident_id, comment))


@router.post("/incidents/{incident_id}/resolve", summary="Resolve an incident")
def resolve(
    incident_id: Id, incidents: IncidentsDep, caller: Writer, body: IncidentActionIn | None = None
) -> IncidentOut:
    comment = body.comment if body else ""
    return incident_out(incidents.resolve(caller, incident_id, comment))


@router.post("/incidents/{incident_id}/comments", status_code=201, summary="Comment on an incident")
def comment(
    incident_id: Id, body: CommentIn, incidents: IncidentsDep, caller: Writer
) -> IncidentOut:
    return incident_out(incidents.comment(caller, incident_id, body.text))


@router.put("/incidents/{incident_id}/postmortem", summary="Attach the post-mortem (markdown)")
def postmortem(
    incident_id: Id, body: PostmortemIn, incidents: IncidentsDep, caller: Writer
) -> IncidentOut:
    return incident_out(incidents.set_postmortem(caller, incident_id, body.markdown))
