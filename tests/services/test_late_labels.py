"""Labels after the window, over a real backend (SQLite and PostgreSQL) and real telemetry files,
with the worker's clock injected: a window judged before its labels arrived says no_data; when
the labels land, the worker's monitor job judges that window again (its points replaced, no
window added) and the alert rules see the new value. Labels for a window past the horizon are
stored but do not re-judge it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from keel.config import Settings
from keel.domain.alerts import AlertRule, Comparison
from keel.domain.incidents import IncidentStatus
from keel.domain.monitoring import Check, MetricPoint, Monitor, Schedule, Status
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.worker.loop import Worker
from keel.worker.monitors import WORKER, monitor_job

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT, nullable=False),
        Column("churned", ColumnType.BOOLEAN, ColumnRole.TARGET),
    )
)
HOUR = timedelta(hours=1)
ROWS = 200
# A fixed hour well inside the default 90-day retention and 7-day label horizon.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    opened.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    return opened


def log_hour(backend: Backend, hour: datetime, prefix: str) -> None:
    """ROWS predictions in ``hour``, ids ``<prefix>0..``, alternately True and False."""
    table = pa.table(
        {
            "prediction_id": [f"{prefix}{i}" for i in range(ROWS)],
            "ts": pa.array(
                [hour + timedelta(seconds=10 * i) for i in range(ROWS)],
                pa.timestamp("us", tz="UTC"),
            ),
            "prediction": [i % 2 == 0 for i in range(ROWS)],
            "income": [50.0] * ROWS,
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)


def log_labels(backend: Backend, prefix: str) -> None:
    """Labels for every prediction of ``prefix``: right for the first half, wrong after."""
    labels = [(i % 2 == 0) == (i < ROWS // 2) for i in range(ROWS)]
    table = pa.table({"prediction_id": [f"{prefix}{i}" for i in range(ROWS)], "label": labels})
    backend.telemetry.log_labels(ADMIN, "churn", table)


def accuracy(backend: Backend, window_start: datetime) -> list[MetricPoint]:
    return [
        p
        for p in backend.monitoring.series("churn", Check.PERFORMANCE)
        if p.window_start == window_start and p.metric in ("accuracy", "labelled_rows")
    ]


def test_late_labels_rejudge_a_judged_window_and_alerts_see_them(backend: Backend) -> None:
    backend.monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.PERFORMANCE,), schedule=Schedule(delay_minutes=5)),
        now=T0 + timedelta(minutes=30),
    )
    backend.alerts.create_rule(
        ADMIN,
        AlertRule(
            model="churn",
            name="accuracy-floor",
            check=Check.PERFORMANCE,
            metric="accuracy",
            comparison=Comparison.LT,
            threshold=0.9,
            windows=1,
        ),
    )
    log_hour(backend, T0, "a")
    clock = [T0 + HOUR + timedelta(minutes=6)]
    worker = Worker(jobs=[monitor_job(backend.monitoring, every_seconds=0, clock=lambda: clock[0])])
    worker.run_once(0.0)
    worker.run_once(1.0)
    # Judged before any label arrived: no data, nothing to alert on.
    [judged] = accuracy(backend, T0)
    assert (judged.metric, judged.value, judged.status) == ("labelled_rows", 0, Status.NO_DATA)
    assert backend.incidents.list(model="churn") == []

    log_labels(backend, "a")
    clock[0] += timedelta(minutes=1)
    worker.run_once(2.0)
    rejudged = {p.metric: p for p in accuracy(backend, T0)}
    assert sorted(rejudged) == ["accuracy", "labelled_rows"]  # replaced, not duplicated
    assert rejudged["labelled_rows"].value == ROWS
    assert rejudged["accuracy"].value == pytest.approx(0.5)
    windows = {(p.window_start, p.window_end) for p in backend.monitoring.series("churn")}
    assert windows == {(T0, T0 + HOUR)}
    (incident,) = backend.incidents.list(model="churn")
    assert incident.check == "performance" and incident.status == IncidentStatus.TRIGGERED

    # Judged once per arrival: later ticks leave the window alone.
    worker.run_once(3.0)
    rejudges = backend.audit.events(ADMIN, action="monitor.rejudge")
    assert [(e.actor, e.details["window_end"]) for e in rejudges] == [
        (WORKER.name, (T0 + HOUR).isoformat())
    ]
    assert backend.monitoring.store.relabelled() == []


def test_labels_past_the_horizon_are_stored_but_do_not_rejudge(backend: Backend) -> None:
    backend.monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.PERFORMANCE,), schedule=Schedule(enabled=False)),
    )
    log_hour(backend, T0, "a")
    backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=6))
    log_labels(backend, "a")

    # The worker looks eight days after the window ended: past the 7-day horizon.
    assert backend.monitoring.rejudge_late_labels(WORKER, now=T0 + HOUR + timedelta(days=8)) == []
    [judged] = accuracy(backend, T0)
    assert (judged.metric, judged.status) == ("labelled_rows", Status.NO_DATA)
    assert backend.audit.events(ADMIN, action="monitor.rejudge") == []
    # The labels are kept: a manual run of the window counts them.
    stored = backend.telemetry.labelled_predictions("churn", 1, T0, T0 + HOUR)
    assert stored.num_rows == ROWS
    backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=30))
    assert {p.metric: p.value for p in accuracy(backend, T0)}["accuracy"] == pytest.approx(0.5)


def test_labels_for_a_window_not_judged_yet_mark_nothing(backend: Backend) -> None:
    backend.monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.PERFORMANCE,), schedule=Schedule(delay_minutes=5)),
        now=T0 - timedelta(minutes=30),
    )
    log_hour(backend, T0, "a")
    log_labels(backend, "a")
    assert backend.monitoring.store.relabelled() == []


@pytest.mark.parametrize("raw", ["0", "-2", "a week"])
def test_a_bad_label_horizon_is_refused_naming_the_variable(raw: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="KEEL_LABEL_HORIZON_DAYS"):
        Settings.load(data_dir=tmp_path, env={"KEEL_LABEL_HORIZON_DAYS": raw})


def test_the_label_horizon_comes_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, env={"KEEL_LABEL_HORIZON_DAYS": "3"})
    opened = Backend.open(settings)
    try:
        assert opened.monitoring.label_horizon == timedelta(days=3)
    finally:
        opened.close()
    assert Settings.load(data_dir=tmp_path, env={}).label_horizon_days == 7
