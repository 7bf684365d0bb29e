"""What /metrics reads from the store, on SQLite and PostgreSQL: each check's newest window's
worst verdict, open incidents by severity, and each SLO's budget as last evaluated."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from keel.domain.incidents import Severity
from keel.domain.monitoring import Check, Monitor, Schedule, Status
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    for name in ("churn", "fraud"):
        opened.registry.create_model(ADMIN, Model(name=name, team="risk", owner="ana"))
        draft = VersionDraft(signature=Signature((Column("x", ColumnType.FLOAT),)))
        opened.registry.register_version(ADMIN, name, io.BytesIO(b"model"), "m.bin", draft)
    return opened


def log_requests(backend: Backend, at: datetime, rows: int, errors: int) -> None:
    table = pa.table(
        {
            "prediction": pa.array(np.ones(rows)),
            "x": pa.array(np.zeros(rows)),
            "ts": pa.array([at] * rows, pa.timestamp("us", tz="UTC")),
            "error": pa.array([("boom" if i < errors else None) for i in range(rows)], pa.string()),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)


def test_a_check_reports_its_newest_windows_worst_verdict(backend: Backend) -> None:
    backend.monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.OPERATIONS,), schedule=Schedule(enabled=False)),
    )
    # The newer window fails half its requests; an older window, judged afterwards, is clean.
    log_requests(backend, T0 + timedelta(minutes=10), rows=100, errors=50)
    log_requests(backend, T0 - timedelta(hours=5, minutes=-10), rows=100, errors=0)
    backend.monitoring.run(ADMIN, "churn", now=T0 + timedelta(hours=1, minutes=30))
    backend.monitoring.run(ADMIN, "churn", now=T0 - timedelta(hours=3))
    found = backend.model_metrics.read()
    assert [(v.model, v.version, v.check, v.status) for v in found.verdicts] == [
        ("churn", 1, "operations", Status.ALERT)
    ]
    assert found.verdicts[0].window_end == T0 + timedelta(hours=1)
    assert found.models == [("churn", "risk"), ("fraud", "risk")]


def test_open_incidents_are_counted_by_model_and_severity(backend: Backend) -> None:
    opened = {}
    for key, model, severity in [
        ("a", "churn", Severity.P1),
        ("b", "churn", Severity.P1),
        ("c", "churn", Severity.P3),
        ("d", "fraud", Severity.P2),
    ]:
        opened[key], _ = backend.incidents.trigger(
            ADMIN, key=key, model=model, version=None, title=f"incident {key}", severity=severity
        )
    backend.incidents.acknowledge(ADMIN, opened["b"].id)  # acknowledged is still open
    backend.incidents.resolve(ADMIN, opened["c"].id, "fixed")
    assert backend.model_metrics.read().open_incidents == {("churn", "P1"): 2, ("fraud", "P2"): 1}


def test_an_slo_reports_its_newest_evaluations_budget(backend: Backend) -> None:
    slo = backend.slos.create(
        ADMIN, "churn", name="availability", kind="availability", objective=0.99
    )
    assert backend.model_metrics.read().slo_budgets == []  # not evaluated yet
    log_requests(backend, T0, rows=1000, errors=5)  # 0.5% of a 1% budget: half left
    backend.slos.evaluate(ADMIN, slo.id, now=T0 + timedelta(minutes=1))
    # An evaluation "as of" an earlier moment (before any traffic) does not replace it.
    backend.slos.status(slo.id, now=T0 - timedelta(days=1))
    [budget] = backend.model_metrics.read().slo_budgets
    assert (budget.model, budget.slo, budget.kind, budget.objective) == (
        "churn",
        "availability",
        "availability",
        0.99,
    )
    assert budget.budget_remaining == pytest.approx(0.5)
    assert budget.evaluated_at == T0 + timedelta(minutes=1)
    # A newer evaluation does.
    log_requests(backend, T0 + timedelta(minutes=2), rows=1000, errors=15)
    backend.slos.evaluate(ADMIN, slo.id, now=T0 + timedelta(minutes=3))
    [budget] = backend.model_metrics.read().slo_budgets
    assert budget.budget_remaining == pytest.approx(0.0)
