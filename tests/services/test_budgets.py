"""Story 3 of issue 14: on a seasonal fixture the forecast's backtest error is reported and is
at most 10% MAPE; a forecast over budget opens one incident and sends one signed budget.*
webhook, however often the budgets are checked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.webhook_receiver import Receiver

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.domain.webhooks import verify
from keel.errors import InvalidInput, NotFound, PermissionDenied
from keel.services.backend import Backend
from keel.worker.budgets import budget_job
from keel.worker.loop import Worker

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
APPROVER = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
CONTRIBUTOR = Principal("cara", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
OTHER_APPROVER = Principal("otto", grants=(Grant(Role.APPROVER, "growth"),))
SECRET = "budget-hook-secret"
FIRST_DAY = date(2026, 8, 24)  # a Monday, eight weeks before the month is judged
AS_OF = date(2026, 10, 20)
WEEK = [100, 120, 130, 125, 110, 60, 50]  # weekdays busy, weekends quiet


def seasonal_bill(path: Path) -> Path:
    rng = np.random.default_rng(14)
    rows = [
        "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,"
        "ChargePeriodStart,ChargePeriodEnd,EffectiveCost,ServiceName,Tags\n"
    ]
    day = FIRST_DAY
    while day <= AS_OF:
        n = (day - FIRST_DAY).days
        amount = WEEK[n % 7] * (1 + 0.003 * n) + rng.normal(0, 3)
        start, end = (
            f"{day.isoformat()}T00:00:00Z",
            f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
        )
        period = f"{day.replace(day=1).isoformat()}T00:00:00Z"
        rows.append(
            f"{amount:.2f},USD,{period},{period},Usage,{start},{end},{amount:.2f},Compute,"
            '"{""keel-model"": ""churn""}"\n'
        )
        day += timedelta(days=1)
    path.write_text("".join(rows), encoding="utf-8")
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def backend(empty_backend: Backend, tmp_path: Path) -> Backend:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "growth")
    b.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    b.costs.import_focus(
        ADMIN, seasonal_bill(tmp_path / "bill.csv"), file_format="csv", filename="bill.csv"
    )
    return b


def test_the_forecast_backtests_within_ten_percent_and_alerts_once(
    backend: Backend, receiver: Receiver
) -> None:
    backend.notifications.subscribe(ADMIN, url=receiver.url, events=["budget.*"], secret=SECRET)
    budget = backend.costs.set_budget(APPROVER, "model", "churn", "3000", [100])

    [status] = backend.costs.budget_status("2026-10", as_of=AS_OF)
    spent = backend.costs.month_cost("2026-10", model="churn")
    assert status.spent == spent.quantize(Decimal("0.01"))
    assert status.thresholds_crossed == ()  # about 2,300 of 3,000 spent
    forecast = status.forecast
    assert forecast.backtest_mape is not None and forecast.backtest_mape <= 10.0
    assert forecast.method in ("holt_winters", "seasonal_arima", "seasonal_naive")
    assert forecast.low <= forecast.point <= forecast.high
    # The truth without noise: what is spent plus the remaining days of the generating pattern.
    truth = spent + sum(Decimal(str(WEEK[n % 7] * (1 + 0.003 * n))) for n in range(58, 69))
    assert abs(forecast.point - truth) / truth < Decimal("0.05")
    assert status.forecast_over_budget

    alerts = backend.costs.check_budgets("2026-10", as_of=AS_OF)
    assert [(a.signal, a.event_type) for a in alerts] == [("forecast", "budget.forecast_over")]
    incident = backend.incidents.open_incident(f"budget:{budget.id}:2026-10")
    assert incident is not None and incident.id == alerts[0].incident_id
    assert incident.model == "churn" and "budget" in incident.title

    # Checking again raises nothing new: one incident, one webhook.
    assert backend.costs.check_budgets("2026-10", as_of=AS_OF) == []
    now = datetime.now(UTC) + timedelta(seconds=1)
    run = backend.notifications.deliver_due(now=now)
    assert run.delivered == 1
    [got] = receiver.received
    assert got.headers["X-Keel-Event"] == "budget.forecast_over"
    assert verify(
        SECRET.encode(),
        got.headers["X-Keel-Timestamp"],
        got.body,
        got.headers["X-Keel-Signature"],
        now=now,
    )
    data = json.loads(got.body)["data"]
    assert data["target"] == "churn" and data["incident_id"] == incident.id
    assert Decimal(data["forecast"]) == forecast.point
    assert backend.notifications.deliver_due(now=now).attempted == 0
    [again] = backend.costs.budget_status("2026-10", as_of=AS_OF)
    assert again.alerts == ("forecast",)


def test_a_team_budget_forecast_over_opens_one_incident_and_one_webhook_across_replicas(
    backend: Backend, receiver: Receiver
) -> None:
    # A model of the team that spends nothing (and comes first by name): the incident goes to
    # the team's biggest spender, churn.
    backend.registry.create_model(ADMIN, Model(name="aaa-idle", team="risk", owner="ivo"))
    backend.notifications.subscribe(ADMIN, url=receiver.url, events=["budget.*"], secret=SECRET)
    budget = backend.costs.set_budget(APPROVER, "team", "risk", "3000", [100])

    replica = Backend.open(backend.settings)
    results: list[list[Any]] = []
    start = threading.Barrier(2)

    def check(on: Backend) -> None:
        start.wait()
        results.append(on.costs.check_budgets("2026-10", as_of=AS_OF))

    try:
        threads = [threading.Thread(target=check, args=(b,)) for b in (backend, replica)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 2
        assert replica.costs.check_budgets("2026-10", as_of=AS_OF) == []
    finally:
        replica.close()

    [alert] = [a for r in results for a in r]
    assert (alert.signal, alert.event_type) == ("forecast", "budget.forecast_over")
    incident = backend.incidents.open_incident(f"budget:{budget.id}:2026-10")
    assert incident is not None and incident.id == alert.incident_id
    assert incident.model == "churn"
    assert incident.labels["team"] == "risk" and incident.labels["budget_scope"] == "team"
    assert "team risk's 2026-10 budget" in incident.title
    assert len(backend.incidents.list(team="risk")) == 1

    now = datetime.now(UTC) + timedelta(seconds=1)
    assert backend.notifications.deliver_due(now=now).delivered == 1
    [got] = receiver.received
    assert got.headers["X-Keel-Event"] == "budget.forecast_over"
    assert verify(
        SECRET.encode(),
        got.headers["X-Keel-Timestamp"],
        got.body,
        got.headers["X-Keel-Signature"],
        now=now,
    )
    data = json.loads(got.body)["data"]
    assert (data["scope"], data["target"], data["incident_id"]) == ("team", "risk", incident.id)


def test_crossing_a_threshold_alerts_for_the_highest_one_crossed(backend: Backend) -> None:
    backend.costs.set_budget(ADMIN, "portfolio", None, "2000", [50, 80, 100])
    [status] = backend.costs.budget_status("2026-10", as_of=AS_OF)
    assert status.thresholds_crossed == (50, 80, 100)
    alerts = backend.costs.check_budgets("2026-10", as_of=AS_OF)
    # A portfolio has no model to open an incident on: the webhooks alone tell.
    assert {(a.signal, a.incident_id) for a in alerts} == {
        ("threshold:100", None),
        ("forecast", None),
    }


@pytest.mark.parametrize(
    ("who", "kwargs", "error", "field"),
    [
        (APPROVER, {"scope": "model", "target": "churn", "amount": "-5"}, InvalidInput, "amount"),
        (APPROVER, {"scope": "model", "target": "churn", "amount": "lots"}, InvalidInput, "amount"),
        (APPROVER, {"scope": "galaxy", "target": "churn", "amount": "5"}, InvalidInput, "scope"),
        (
            APPROVER,
            {"scope": "model", "target": "churn", "amount": "5", "thresholds": [0]},
            InvalidInput,
            "thresholds",
        ),
        (APPROVER, {"scope": "model", "target": "nope", "amount": "5"}, NotFound, None),
        (APPROVER, {"scope": "portfolio", "target": None, "amount": "5"}, PermissionDenied, None),
        (CONTRIBUTOR, {"scope": "model", "target": "churn", "amount": "5"}, PermissionDenied, None),
        (
            OTHER_APPROVER,
            {"scope": "team", "target": "risk", "amount": "5"},
            PermissionDenied,
            None,
        ),
    ],
    ids=[
        "negative",
        "not-a-number",
        "scope",
        "threshold",
        "unknown-model",
        "portfolio-needs-admin",
        "contributor",
        "other-team",
    ],
)
def test_a_bad_budget_is_refused_and_writes_nothing(
    backend: Backend,
    who: Principal,
    kwargs: dict[str, Any],
    error: type[Exception],
    field: str | None,
) -> None:
    with pytest.raises(error) as refused:
        backend.costs.set_budget(who, **kwargs)
    if field is not None:
        assert refused.value.details["field"] == field  # type: ignore[attr-defined]
    assert backend.costs.budgets() == []


def test_the_worker_checks_this_months_budgets_and_alerts_once(backend: Backend) -> None:
    backend.costs.set_budget(ADMIN, "portfolio", None, "2000", [100])
    job = budget_job(backend.costs, clock=lambda: datetime(2026, 10, 20, 12, tzinfo=UTC))
    worker = Worker(jobs=[job])
    assert worker.run_once(0.0) == ["budget-checks"]
    assert worker.run_once(10_000.0) == ["budget-checks"]
    [budget] = backend.costs.budgets()
    assert backend.costs.store.alerts_sent("2026-10") == {budget.id: ["threshold:100", "forecast"]}
