"""Monitors, their runs, and the metric series and verdicts they record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.jobs import job_out
from keel.domain.monitoring import (
    Check,
    MetricPoint,
    Monitor,
    MonitorChanges,
    Schedule,
    Thresholds,
    Window,
)
from keel.schemas.base import Id
from keel.schemas.jobs import JobOut
from keel.schemas.monitoring import (
    MetricPointOut,
    MonitorIn,
    MonitoringStatusOut,
    MonitorOut,
    MonitorPatch,
    RunIn,
    ScheduleSpec,
)
from keel.services.backend import Backend
from keel.services.job_kinds import queue_monitor_run
from keel.services.monitoring import Monitoring

router = APIRouter(prefix=API_PREFIX, tags=["monitoring"])


def get_monitoring(backend: Annotated[Backend, Depends(get_backend)]) -> Monitoring:
    return backend.monitoring


MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]


def monitor_out(monitor: Monitor) -> MonitorOut:
    assert monitor.id is not None and monitor.created_at and monitor.updated_at
    return MonitorOut(
        id=monitor.id,
        model=monitor.model,
        name=monitor.name,
        version=monitor.version,
        checks=list(monitor.checks),
        window=monitor.window.name,
        window_minutes=monitor.window.minutes,
        reference_version=monitor.reference_version,
        thresholds=monitor.thresholds.to_dict(),
        schedule=ScheduleSpec(
            enabled=monitor.schedule.enabled, delay_minutes=monitor.schedule.delay_minutes
        ),
        last_window_end=monitor.last_window_end,
        next_due_at=monitor.next_due_at,
        created_by=monitor.created_by,
        created_at=monitor.created_at,
        updated_at=monitor.updated_at,
    )


def point_out(point: MetricPoint) -> MetricPointOut:
    return MetricPointOut(
        model=point.model,
        version=point.version,
        monitor_id=point.monitor_id,
        window_start=point.window_start,
        window_end=point.window_end,
        check=point.check,
        column=point.column,
        metric=point.metric,
        value=point.value,
        threshold=point.threshold,
        status=point.status,
    )


def monitor_in(model: str, body: MonitorIn) -> Monitor:
    return Monitor(
        model=model,
        name=body.name,
        version=body.version,
        checks=tuple(body.checks),
        window=Window.parse(body.window),
        reference_version=body.reference_version,
        thresholds=Thresholds.from_dict(body.thresholds),
        schedule=Schedule(enabled=body.schedule.enabled, delay_minutes=body.schedule.delay_minutes),
    )


def monitor_changes(body: MonitorPatch) -> MonitorChanges:
    given = body.model_fields_set
    return MonitorChanges(
        checks=tuple(body.checks) if body.checks is not None else None,
        window=Window.parse(body.window) if body.window is not None else None,
        version=body.version,
        clear_version="version" in given and body.version is None,
        reference_version=body.reference_version,
        clear_reference_version="reference_version" in given and body.reference_version is None,
        thresholds=Thresholds.from_dict(body.thresholds) if body.thresholds is not None else None,
        schedule=Schedule(enabled=body.schedule.enabled, delay_minutes=body.schedule.delay_minutes)
        if body.schedule is not None
        else None,
    )


@router.post("/models/{name}/monitors", status_code=201, summary="Define a monitor on a model")
def create_monitor(
    name: str, body: MonitorIn, monitoring: MonitoringDep, caller: Writer
) -> MonitorOut:
    return monitor_out(monitoring.create(caller, monitor_in(name, body)))


@router.get("/models/{name}/monitors", summary="A model's monitors")
def list_monitors(name: str, monitoring: MonitoringDep, _: Reader) -> list[MonitorOut]:
    return [monitor_out(m) for m in monitoring.list_monitors(name)]


@router.get("/monitors/{monitor_id}", summary="Show a monitor")
def get_monitor(monitor_id: Id, monitoring: MonitoringDep, _: Reader) -> MonitorOut:
    return monitor_out(monitoring.get(monitor_id))


@router.patch("/monitors/{monitor_id}", summary="Change a monitor")
def update_monitor(
    monitor_id: Id, body: MonitorPatch, monitoring: MonitoringDep, caller: Writer
) -> MonitorOut:
    return monitor_out(monitoring.update(caller, monitor_id, monitor_changes(body)))


@router.delete("/monitors/{monitor_id}", status_code=204, summary="Delete a monitor")
def delete_monitor(monitor_id: Id, monitoring: MonitoringDep, caller: Writer) -> Response:
    monitoring.delete(caller, monitor_id)
    return Response(status_code=204)


@router.post(
    "/models/{name}/monitors/run",
    status_code=202,
    summary="Queue a run of a model's monitors over their newest complete window; 202: follow "
    "the job (its result is the run: status and points)",
)
def run_monitors(
    name: str,
    backend: Annotated[Backend, Depends(get_backend)],
    caller: Writer,
    body: RunIn | None = None,
) -> JobOut:
    body = body or RunIn()
    job = queue_monitor_run(
        backend.jobs, backend.monitoring, caller, name, at=body.at, monitor_id=body.monitor
    )
    return job_out(job)


@router.get("/models/{name}/metrics", summary="A model's metric series, oldest window first")
def metrics(
    name: str,
    monitoring: MonitoringDep,
    _: Reader,
    check: Check | None = None,
    column: Annotated[str | None, Query(max_length=256)] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="Only windows ending after this time.")
    ] = None,
) -> list[MetricPointOut]:
    series = monitoring.series(name, check, column, since, metric=metric)
    return [point_out(p) for p in series]


@router.get(
    "/models/{name}/monitoring/status",
    summary="The newest verdict of every check, column and metric",
)
def monitoring_status(name: str, monitoring: MonitoringDep, _: Reader) -> MonitoringStatusOut:
    status = monitoring.latest(name)
    return MonitoringStatusOut(
        model=status.model, status=status.status, points=[point_out(p) for p in status.points]
    )
