"""Monitors over a real backend (SQLite and PostgreSQL) and real telemetry files: definitions
are audited and validated, runs record metric points per window, the worker's tick runs what is
due exactly once, and re-running a window replaces its points."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from keel.domain.monitoring import (
    Check,
    DriftOverride,
    Monitor,
    MonitorChanges,
    Schedule,
    Status,
    Thresholds,
    Window,
)
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput, PermissionDenied
from keel.services.backend import Backend
from keel.store.sql.monitoring import ANY_LAST_END
from keel.worker.loop import Worker
from keel.worker.monitors import WORKER, monitor_job

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
OUTSIDER = Principal("otto", grants=(Grant(Role.CONTRIBUTOR, "growth"),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT, nullable=False),
        Column("plan", ColumnType.STRING, nullable=False),
        Column("churned", ColumnType.BOOLEAN, ColumnRole.TARGET),
    )
)
HOUR = timedelta(hours=1)
# A fixed hour well inside the default 90-day retention.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_team(ADMIN, "growth")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    opened.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    rng = np.random.default_rng(5)
    reference = pa.table(
        {"income": rng.normal(50, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
    )
    opened.telemetry.set_reference(ADMIN, "churn", 1, reference)
    return opened


def log_hour(backend: Backend, hour: datetime, rows: int, *, shift: float = 0.0) -> None:
    """``rows`` predictions spread over ``hour``; ``shift`` moves income by that many std."""
    # Seeded by the hour's place in the test, never by the clock: the same data every run.
    rng = np.random.default_rng([1000 + round((hour - T0) / HOUR), rows])
    offsets = np.sort(rng.uniform(0, 3600, rows))
    table = pa.table(
        {
            "ts": pa.array(
                [hour + timedelta(seconds=float(s)) for s in offsets], pa.timestamp("us", tz="UTC")
            ),
            "prediction": rng.random(rows) < 0.3,
            "income": rng.normal(50 + 10 * shift, 10, rows),
            "plan": rng.choice(["a", "b", "c"], rows),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)


def audit_actions(backend: Backend) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in backend.audit.events(ADMIN, subject_type="monitor")]


def test_definitions_are_audited(backend: Backend) -> None:
    monitoring = backend.monitoring
    created = monitoring.create(ADMIN, Monitor(model="churn", checks=(Check.DRIFT,)), now=T0)
    assert created.id is not None and created.next_due_at is not None
    changed = monitoring.update(
        ADMIN, created.id, MonitorChanges(window=Window(1440), checks=(Check.DRIFT, Check.QUALITY))
    )
    assert changed.window.name == "daily" and changed.checks == (Check.DRIFT, Check.QUALITY)
    assert [m.id for m in monitoring.list_monitors("churn")] == [created.id]
    monitoring.delete(ADMIN, created.id)
    assert monitoring.list_monitors("churn") == []
    assert audit_actions(backend) == [
        ("monitor.create", "root"),
        ("monitor.update", "root"),
        ("monitor.delete", "root"),
    ]
    update = backend.audit.events(ADMIN, action="monitor.update")[0]
    assert update.details["changed"] == {
        "checks": ["drift", "quality"],
        "window_minutes": 1440,
    }


@pytest.mark.parametrize(
    ("monitor", "field"),
    [
        (Monitor(model="churn", version=7), "version"),
        (Monitor(model="churn", reference_version=3), "reference_version"),
        (
            Monitor(model="churn", thresholds=Thresholds(drift={"age": DriftOverride("psi")})),
            "thresholds.drift.age",
        ),
        (
            Monitor(model="churn", thresholds=Thresholds(drift={"plan": DriftOverride("ks")})),
            "thresholds.drift.plan.method",
        ),
        (Monitor(model="churn", name="two words"), "name"),
    ],
)
def test_a_bad_definition_writes_nothing(backend: Backend, monitor: Monitor, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        backend.monitoring.create(ADMIN, monitor)
    assert caught.value.details["field"] == field
    assert backend.monitoring.list_monitors("churn") == []
    assert audit_actions(backend) == []


def test_only_writers_of_the_models_team_define_monitors(backend: Backend) -> None:
    with pytest.raises(PermissionDenied, match="risk"):
        backend.monitoring.create(OUTSIDER, Monitor(model="churn"))
    assert backend.monitoring.list_monitors("churn") == []


def test_a_run_records_points_per_window_and_a_rerun_replaces_them(backend: Backend) -> None:
    for back in range(4, 0, -1):
        log_hour(backend, T0 - back * HOUR, 200)
    log_hour(backend, T0, 2000, shift=1.0)  # ten times the traffic, and income drifted
    monitoring = backend.monitoring
    monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.DRIFT, Check.QUALITY), schedule=Schedule(False)),
    )
    at = T0 + HOUR + timedelta(minutes=1)
    first = monitoring.run(ADMIN, "churn", now=at)
    found = {(p.check, p.column, p.metric): p for p in first}
    assert found[(Check.DRIFT, "income", "wasserstein")].status == Status.ALERT
    assert found[(Check.DRIFT, "plan", "share_difference")].status == Status.OK
    assert found[(Check.QUALITY, None, "rows")].value == 2000
    zscore = found[(Check.QUALITY, None, "row_count_zscore")]
    assert zscore.status == Status.ALERT and zscore.value is not None and zscore.value > 3
    assert {(p.window_start, p.window_end) for p in first} == {(T0, T0 + HOUR)}

    again = monitoring.run(ADMIN, "churn", now=at)
    assert len(monitoring.series("churn")) == len(first) == len(again)
    runs = [e for e in backend.audit.events(ADMIN, action="monitor.run")]
    assert len(runs) == 2 and runs[0].details["alert"] >= 2

    status = monitoring.latest("churn")
    assert status.status == Status.ALERT
    assert {(p.check, p.column, p.metric) for p in status.points} == set(found)


def test_a_worker_tick_runs_each_due_window_once(backend: Backend) -> None:
    log_hour(backend, T0, 500, shift=1.0)
    monitoring = backend.monitoring
    created = monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.DRIFT,), schedule=Schedule(delay_minutes=5)),
        now=T0 + timedelta(minutes=30),
    )
    # A new monitor is due at once for the newest settled window (the hour before).
    assert created.next_due_at == T0 + timedelta(minutes=30)
    clock = [T0 + HOUR + timedelta(minutes=4)]
    worker = Worker(jobs=[monitor_job(monitoring, every_seconds=0, clock=lambda: clock[0])])

    # 4 minutes after the hour: only the hour before T0 has settled, and it had no traffic.
    assert worker.run_once(0.0) == ["monitors"]
    first = monitoring.series("churn")
    assert {(p.window_start, p.window_end) for p in first} == {(T0 - HOUR, T0)}
    assert {p.status for p in first} == {Status.NO_DATA}
    assert monitoring.get(created.id or 0).next_due_at == T0 + HOUR + timedelta(minutes=5)

    clock[0] = T0 + HOUR + timedelta(minutes=6)
    worker.run_once(1.0)
    recorded = monitoring.series("churn", since=T0)
    assert {(p.window_start, p.window_end) for p in recorded} == {(T0, T0 + HOUR)}
    assert any(p.column == "income" and p.status == Status.ALERT for p in recorded)
    moved = monitoring.get(created.id or 0)
    assert moved.last_window_end == T0 + HOUR
    assert moved.next_due_at == T0 + 2 * HOUR + timedelta(minutes=5)

    worker.run_once(2.0)  # same clock: nothing new is due
    assert len(monitoring.series("churn")) == len(first) + len(recorded)
    runs = backend.audit.events(ADMIN, action="monitor.run")
    assert [(e.actor, e.details["window_end"]) for e in runs] == [
        (WORKER.name, T0.isoformat()),
        (WORKER.name, (T0 + HOUR).isoformat()),
    ]


def test_of_two_workers_racing_for_a_window_one_records_it(backend: Backend) -> None:
    monitoring = backend.monitoring
    monitor = monitoring.create(ADMIN, Monitor(model="churn", checks=(Check.OPERATIONS,)))
    window = (T0, T0 + HOUR)
    points = monitoring.evaluate(monitor, window)
    store = monitoring.store
    claims = [
        store.record_run(
            monitor,
            window,
            points,
            actor=WORKER.name,
            expect_last_end=None,
            last_window_end=window[1],
            next_due_at=None,
        )
        for _ in range(2)
    ]
    assert claims == [True, False]
    assert len(monitoring.series("churn")) == len(points)
    # A manual run does not claim: it always records, replacing the window's points.
    assert store.record_run(
        monitor,
        window,
        points,
        actor="root",
        expect_last_end=ANY_LAST_END,
        last_window_end=window[1],
        next_due_at=None,
    )
    assert len(monitoring.series("churn")) == len(points)


def test_without_telemetry_every_check_says_no_data(backend: Backend) -> None:
    monitoring = backend.monitoring
    monitoring.create(ADMIN, Monitor(model="churn", schedule=Schedule(False)))
    points = monitoring.run(ADMIN, "churn", now=T0)
    checks = {p.check for p in points}
    assert checks == {Check.DRIFT, Check.QUALITY, Check.PERFORMANCE, Check.OPERATIONS}
    assert {p.status for p in points if p.metric not in ("rows", "rejected_rows")} == {
        Status.NO_DATA
    }
    assert monitoring.latest("churn").status == Status.NO_DATA


def test_a_check_that_cannot_use_the_data_does_not_stop_the_others(backend: Backend) -> None:
    # Three classes with a score: ROC AUC needs a binary target, so performance cannot run.
    rows = 90
    table = pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(rows)],
            "ts": pa.array(
                [T0 + timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "prediction": [i % 3 for i in range(rows)],
            "score": [0.5] * rows,
            "income": [50.0] * rows,
            "plan": ["a"] * rows,
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)
    labels = pa.table({"prediction_id": [f"p{i}" for i in range(rows)], "label": [2] * rows})
    backend.telemetry.log_labels(ADMIN, "churn", labels)
    monitoring = backend.monitoring
    monitoring.create(
        ADMIN,
        Monitor(
            model="churn",
            checks=(Check.PERFORMANCE, Check.OPERATIONS),
            schedule=Schedule(False),
        ),
    )
    points = monitoring.run(ADMIN, "churn", now=T0 + HOUR)
    performance = [p for p in points if p.check == Check.PERFORMANCE]
    assert [(p.metric, p.status) for p in performance] == [("check_failed", Status.NO_DATA)]
    rows_seen = [p.value for p in points if p.check == Check.OPERATIONS and p.metric == "rows"]
    assert rows_seen == [rows]


def test_a_tail_only_drift_alerts_on_a_point_named_for_the_tail(backend: Backend) -> None:
    hour, rows = T0, 2000
    rng = np.random.default_rng(7)
    income = rng.normal(50, 10, rows)
    income[rng.permutation(rows)[:30]] = 92.0  # 1.5% land beyond the reference's max
    table = pa.table(
        {
            "ts": pa.array(
                [hour + timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "prediction": rng.random(rows) < 0.3,
            "income": income,
            "plan": rng.choice(["a", "b", "c"], rows),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)
    backend.monitoring.create(
        ADMIN, Monitor(model="churn", checks=(Check.DRIFT,), schedule=Schedule(False))
    )
    points = backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=1))
    found = {(p.column, p.metric): p for p in points}
    tail = found[("income", "tail_share")]
    assert tail.status == Status.ALERT
    assert tail.value == pytest.approx(0.015) and tail.threshold == 0.01
    assert ("income", "wasserstein") not in found  # Wasserstein alone stayed under 0.1
    assert found[("plan", "share_difference")].status == Status.OK


def test_a_shift_under_outliers_alerts_on_a_point_named_for_the_ks_statistic(
    backend: Backend,
) -> None:
    rng = np.random.default_rng(8)
    rows = 1000  # both sides keep their raw values: Wasserstein and KS are exact

    def income(shift: float) -> np.ndarray:
        values = rng.normal(50 + shift, 10, rows)
        values[: rows // 20] = np.where(np.arange(rows // 20) % 2, -1e4, 1e4)  # 5% outliers
        return values

    reference = pa.table({"income": income(0.0), "plan": rng.choice(["a", "b", "c"], rows)})
    backend.telemetry.set_reference(ADMIN, "churn", 1, reference)
    table = pa.table(
        {
            "ts": pa.array(
                [T0 + timedelta(seconds=3 * i) for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "prediction": rng.random(rows) < 0.3,
            "income": income(5.0),  # the bulk moved by half its spread; the outliers did not
            "plan": rng.choice(["a", "b", "c"], rows),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)
    backend.monitoring.create(
        ADMIN, Monitor(model="churn", checks=(Check.DRIFT,), schedule=Schedule(False))
    )
    points = backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=1))
    found = {(p.column, p.metric): p for p in points}
    ks = found[("income", "ks_statistic")]
    assert ks.status == Status.ALERT and ks.threshold == 0.1
    assert ks.value is not None and ks.value > 0.1
    # The outliers make the standard deviation huge, so Wasserstein over it stays tiny.
    assert ("income", "wasserstein") not in found


def test_new_plans_in_a_high_cardinality_column_alert_on_a_point_named_for_them(
    backend: Backend,
) -> None:
    rng = np.random.default_rng(9)
    rows = 5000
    weights = 1.0 / np.arange(1, 5001)
    plans = np.array([f"plan-{i}" for i in range(5000)])  # far more than the profile's top 50

    def table(plan: np.ndarray, start: datetime, step: int) -> pa.Table:
        return pa.table(
            {
                "ts": pa.array(
                    [start + timedelta(seconds=step * i) for i in range(rows)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "prediction": rng.random(rows) < 0.3,
                "income": rng.normal(50, 10, rows),
                "plan": plan,
            }
        )

    reference = table(rng.choice(plans, rows, p=weights / weights.sum()), T0 - HOUR, 0)
    backend.telemetry.set_reference(ADMIN, "churn", 1, reference.drop(["ts", "prediction"]))
    current = rng.choice(plans, rows, p=weights / weights.sum())
    # 8% of customers are on plans launched this week: they land in `other` beside half the
    # rows, which moves `other` by under 5 points; only the reference's seen set tells them apart.
    launched = rng.random(rows) < 0.08
    current[launched] = rng.choice(["launch-a", "launch-b", "launch-c"], int(launched.sum()))
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table(current, T0, 0))
    backend.monitoring.create(
        ADMIN, Monitor(model="churn", checks=(Check.DRIFT,), schedule=Schedule(False))
    )
    points = backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=1))
    found = {(p.column, p.metric): p for p in points}
    new = found[("plan", "new_categories")]
    assert new.status == Status.ALERT and new.threshold == 0.05
    assert new.value is not None and new.value == pytest.approx(0.08, abs=0.03)
    assert found[("income", "wasserstein")].status == Status.OK
