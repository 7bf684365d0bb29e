"""A monitor run on request is a job: queued after the checks a synchronous run made (a refused
request queues nothing), run by a worker, its result the run's status and points; run again for
the same window, it replaces the window's points instead of adding to them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.services.governed_credit import DANA, MODEL, ROOT, register, set_up

from keel.domain.jobs import JobState
from keel.domain.monitoring import Check, Monitor
from keel.domain.permissions import Grant, Principal, Role
from keel.errors import InvalidInput, KeelError, NotFound, PermissionDenied
from keel.services.backend import Backend
from keel.services.job_kinds import MONITOR_RUN, queue_monitor_run
from keel.worker.loop import JobRunner

AT = datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
READER = Principal("rita", grants=(Grant(Role.VIEWER, "risk"),))


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    set_up(empty_backend)
    register(empty_backend, seed=1)
    empty_backend.monitoring.create(
        ROOT, Monitor(model=MODEL, name="ops", checks=(Check.OPERATIONS,)), now=AT
    )
    return empty_backend


def _run(backend: Backend, at: datetime) -> dict[str, object]:
    job = queue_monitor_run(backend.jobs, backend.monitoring, DANA, MODEL, at=at)
    assert job.kind == MONITOR_RUN and job.state == JobState.QUEUED
    assert JobRunner(backend.jobs).run_pending() == 1
    done = backend.jobs.store.get(job.id)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.result is not None
    return done.result


def test_a_monitor_run_job_records_the_window_once_however_often_it_runs(
    backend: Backend,
) -> None:
    first = _run(backend, AT)
    points = first["points"]
    assert isinstance(points, list) and points
    assert first["status"] == "no_data"  # no traffic logged: nothing to measure
    assert {p["check"] for p in points} == {"operations"}
    window = {(p["window_start"], p["window_end"]) for p in points}
    assert window == {("2026-11-30T04:00:00+00:00", "2026-11-30T05:00:00+00:00")}
    stored = _kept(backend)
    assert len(stored) == len(points)

    again = _run(backend, AT + timedelta(minutes=10))  # the same newest complete window
    assert again["points"] == points
    assert _kept(backend) == stored


def _kept(backend: Backend) -> list[tuple[object, ...]]:
    return [
        (p.window_start, p.metric, p.value, p.status)
        for p in backend.monitoring.series(MODEL, Check.OPERATIONS)
    ]


@pytest.mark.parametrize(
    ("who", "kwargs", "error"),
    [
        (DANA, {"model": "nope"}, NotFound),
        (DANA, {"monitor_id": 999}, NotFound),
        (DANA, {"at": datetime(2026, 11, 30, 5, 30)}, InvalidInput),
        (READER, {}, PermissionDenied),
    ],
    ids=["unknown-model", "unknown-monitor", "naive-time", "reader"],
)
def test_a_refused_monitor_run_queues_nothing(
    backend: Backend, who: Principal, kwargs: dict[str, object], error: type[KeelError]
) -> None:
    arguments: dict[str, object] = {"model": MODEL, **kwargs}
    model = str(arguments.pop("model"))
    with pytest.raises(error) as refused:
        queue_monitor_run(backend.jobs, backend.monitoring, who, model, **arguments)  # type: ignore[arg-type]
    if error is InvalidInput:
        assert refused.value.details["field"] == "at"
    assert backend.jobs.store.list_jobs() == []
